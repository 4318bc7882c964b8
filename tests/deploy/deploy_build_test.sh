#!/usr/bin/env bash
# The deploy build (docs/packaging.md): -DENOKI_BUILD_TESTS=OFF configures with GoogleTest and
# Google Benchmark out of reach, and its build has the binary and the package but no test or
# benchmark. Configures only (a second full build would cost CI minutes).
# usage: deploy_build_test.sh CMAKE GENERATOR SOURCE_DIR
set -euo pipefail
cmake=$1 generator=$2 source=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

"$cmake" -S "$source" -B "$tmp" -G "$generator" -DENOKI_BUILD_TESTS=OFF \
  -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON \
  -DGTest_DIR="$tmp/nowhere" -Dbenchmark_DIR="$tmp/nowhere" >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log"; fail "configure"; }
targets=$("$cmake" --build "$tmp" --target help)
grep -qE "^enoki(:| )" <<<"$targets" || fail "no target enoki: $targets"
grep -qE "^package(:| )" <<<"$targets" || fail "no target package"
for t in enoki-micro enoki-kvload core_test integration_cli_test; do
  ! grep -qE "^$t(:| )" <<<"$targets" || fail "the deploy build has $t"
done
[[ ! -e $tmp/tests && ! -e $tmp/bench ]] || fail "the deploy build configured tests/ or bench/"
echo "PASS"
