#!/usr/bin/env bash
# Installs the dependencies (scripts/setup.sh) and builds into build/. `--tests` also installs the
# test tools and builds the tests and benchmarks; without it a new build/ has only the binary
# (-DENOKI_BUILD_TESTS=OFF) and one that has tests keeps them.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=()
for arg in "$@"; do
  case "$arg" in
    --tests) tests=(-DENOKI_BUILD_TESTS=ON) ;;
    *) echo "usage: scripts/build.sh [--tests]" >&2; exit 2 ;;
  esac
done
./scripts/setup.sh "$@"
if [[ ${#tests[@]} -eq 0 && ! -f build/CMakeCache.txt ]]; then
  tests=(-DENOKI_BUILD_TESTS=OFF)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "${tests[@]}" >/dev/null
cmake --build build
