#!/usr/bin/env bash
# The README's two commands share one build: scripts/run.sh and scripts/test.sh both build build/
# through scripts/build.sh, which configures it one way whatever it is given; after a build,
# building again does nothing (no step that runs every time, no output that stays out of date),
# so the tests after the main job rebuild nothing. Runs build.sh as each script does (without the
# sanitizer build, which goes to build-sanitize/) on the build/ this test belongs to, which ctest
# runs after that build is complete.
# usage: shared_build_test.sh SOURCE_DIR
set -euo pipefail
source=$1
cd "$source"
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

grep -qx '\./scripts/build\.sh' scripts/run.sh || fail "scripts/run.sh does not run ./scripts/build.sh"
grep -qE '^\./scripts/build\.sh --tests --sanitize$' scripts/test.sh ||
  fail "scripts/test.sh does not run ./scripts/build.sh --tests --sanitize"
for args in "" "--tests"; do
  # shellcheck disable=SC2086
  out=$(./scripts/build.sh $args 2>&1) || { echo "$out"; fail "scripts/build.sh $args"; }
  last=$(tail -1 <<<"$out")
  [[ $last == "ninja: no work to do." ]] ||
    { echo "$out"; fail "scripts/build.sh $args built again what was built"; }
  grep -qx 'ENOKI_BUILD_TESTS:BOOL=ON' build/CMakeCache.txt ||
    fail "scripts/build.sh $args configured build/ without the tests"
done
out=$(cmake --build build 2>&1)
[[ $(tail -1 <<<"$out") == "ninja: no work to do." ]] || { echo "$out"; fail "a second build"; }
echo "PASS"
