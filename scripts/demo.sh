#!/usr/bin/env bash
# Sets up a fresh machine, builds, and runs the main job: the three-node demo on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
exec build/cli/enoki demo "$@"
