#!/usr/bin/env bash
# Installs the dependencies (scripts/setup.sh) and builds everything into build/: the binary, the
# tests and the benchmarks, configured the same way whoever calls it, so that the README's two
# commands (scripts/run.sh, scripts/test.sh) share one build and the second rebuilds nothing the
# first built (tests/deploy/shared_build_test.sh checks it). `--tests` also installs the tools the
# tests run (scripts/setup.sh --tests). `--sanitize` (with those tools) also builds, in
# build-sanitize/, the unit and integration tests (and the binaries they run) and the fuzzers
# with clang, AddressSanitizer and UndefinedBehaviorSanitizer (docs/testing.md; what CI runs
# under them).
set -euo pipefail
cd "$(dirname "$0")/.."
setup=()
sanitize=false
for arg in "$@"; do
  case "$arg" in
    --tests) setup=(--tests) ;;
    --sanitize) sanitize=true setup=(--tests) ;;
    *) echo "usage: scripts/build.sh [--tests] [--sanitize]" >&2; exit 2 ;;
  esac
done
./scripts/setup.sh "${setup[@]}"
# Configures folder $1 with the options that follow. A new folder is configured twice: CMake's
# first configure puts a flag of libzmq's pkg-config entry (-isystem /usr/include/mit-krb5) among
# the include folders and every later one among the compile options, so without the second run
# the next configure would change every command line that uses ZeroMQ and rebuild it all.
configure() {
  local dir=$1 fresh=false
  shift
  [[ -f $dir/CMakeCache.txt ]] || fresh=true
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  if $fresh; then cmake -S . -B "$dir" -G Ninja "$@" >/dev/null; fi
}
configure build -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" -DENOKI_BUILD_TESTS=ON
cmake --build build
if $sanitize; then
  configure build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DENOKI_SANITIZE=ON -DENOKI_BUILD_TESTS=ON
  cmake --build build-sanitize --target unit_tests integration_tests fuzzers
fi
