#!/usr/bin/env bash
# Sets up a fresh machine (with the test tools), builds, and runs every test (unit, integration
# and packaging) with ctest. Then the sanitizer build (build-sanitize/, docs/testing.md): the unit
# tests under ASan and UBSan, and each fuzzer for 30 s. Arguments go to both test runs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh --tests --sanitize
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
# Only the unit test executables under the sanitizers: the integration tests (which start real
# node processes, ~10 more minutes of tests and ~5 of build under ASan) do not fit CI's budget;
# `ctest --test-dir build-sanitize -LE fuzz` runs them all. ShaperFidelityTest measures the
# user-space shaper's timing to a tenth of a millisecond, which ASan's slowdown spoils.
ctest --test-dir build-sanitize --output-on-failure -j "$(nproc)" -L unit -E '^ShaperFidelityTest\.' "$@"
ctest --test-dir build-sanitize --output-on-failure -j "$(nproc)" -L fuzz
