#!/usr/bin/env bash
# Runs the tests of the netem link backend (they need root and a kernel with sch_netem, and skip
# elsewhere) inside a throw-away VM whose kernel has netem: the netem fidelity test, the emulation
# tests with --links netem and the netem-only ones (EmulateNetemTest). Usage:
# scripts/test-netem.sh [NETEM_VM]; NETEM_VM is the netem-vm tool (default: $NETEM_VM, else
# ../shared/tools/netem-vm). Builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
vm=${1:-${NETEM_VM:-../shared/tools/netem-vm}}
[[ -x $vm ]] || { echo "test-netem: no netem-vm tool at $vm (pass its path)" >&2; exit 2; }
./scripts/build.sh >/dev/null
exec "$vm" -- sh -c 'build/tests/adapters_netem_test && build/tests/integration_emulate_test --gtest_filter="*/netem:EmulateNetemTest.*"'
