#!/usr/bin/env bash
# Installs the dependencies (scripts/setup.sh) and builds into build/. `--tests` also installs the
# test tools and builds the tests and benchmarks; without it a new build/ has only the binary
# (-DENOKI_BUILD_TESTS=OFF) and one that has tests keeps them. `--sanitize` (with the test tools)
# also builds, in build-sanitize/, the unit tests and the fuzzers with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer (docs/testing.md; what CI runs under them).
set -euo pipefail
cd "$(dirname "$0")/.."
tests=()
setup=()
sanitize=false
for arg in "$@"; do
  case "$arg" in
    --tests) tests=(-DENOKI_BUILD_TESTS=ON) setup=(--tests) ;;
    --sanitize) sanitize=true setup=(--tests) ;;
    *) echo "usage: scripts/build.sh [--tests] [--sanitize]" >&2; exit 2 ;;
  esac
done
./scripts/setup.sh "${setup[@]}"
if [[ ${#tests[@]} -eq 0 && ! -f build/CMakeCache.txt ]]; then
  tests=(-DENOKI_BUILD_TESTS=OFF)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "${tests[@]}" >/dev/null
cmake --build build
if $sanitize; then
  cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++ -DENOKI_SANITIZE=ON -DENOKI_BUILD_TESTS=ON >/dev/null
  cmake --build build-sanitize --target unit_tests fuzzers
fi
