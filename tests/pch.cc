// Empty: enoki_test_pch compiles only its precompiled header (tests/CMakeLists.txt).
