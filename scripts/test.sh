#!/usr/bin/env bash
# Sets up a fresh machine (with the test tools), builds, and runs every test (unit, integration
# and packaging) with ctest. Then the sanitizer build (build-sanitize/, docs/testing.md): the unit
# tests and the integration tests labelled `integration-sanitized` under ASan and UBSan, and each
# fuzzer for 30 s. Arguments go to both test runs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh --tests --sanitize
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
# Under the sanitizers: the unit tests, and the integration tests that feed the binary what a
# network client may send (label `integration-sanitized`). Not every integration test: with all of
# them the sanitizer build and tests took 17 and 13 minutes on a 2-core machine, which CI's budget
# does not hold (docs/testing.md runs them all). ShaperFidelityTest measures the user-space
# shaper's timing to a tenth of a millisecond, which ASan's slowdown spoils.
ctest --test-dir build-sanitize --output-on-failure -j "$(nproc)" -L 'unit|sanitized' \
  -E '^ShaperFidelityTest\.' "$@"
ctest --test-dir build-sanitize --output-on-failure -j "$(nproc)" -L fuzz
