#!/usr/bin/env bash
# Sets up a fresh machine, builds, and runs the main job: the quick example scenario, emulated on
# this host (a cloud and an edge node, a client, shaped links, a workload and a link change; about
# 15 s; no root needed).
# Extra arguments go to `enoki emulate`, e.g. scripts/run.sh --duration 5.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
exec build/cli/enoki emulate scenarios/examples/quick.yaml "$@"
