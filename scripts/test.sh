#!/usr/bin/env bash
# Sets up a fresh machine (with the test tools), builds, and runs every test (unit, integration
# and packaging) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh --tests
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
