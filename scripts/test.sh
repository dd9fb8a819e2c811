#!/usr/bin/env bash
# Builds Damselfly with AddressSanitizer + UBSan and the libFuzzer targets (clang), then runs
# every test under ctest. Usage: scripts/test.sh [ctest arguments, e.g. -R agent]
# Environment: BUILD_DIR (default build-test), JOBS (default: number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null; then
    bash scripts/install-deps.sh all
fi
BUILD_DIR=${BUILD_DIR:-build-test}
JOBS=${JOBS:-$(nproc)}
CC=${CC:-clang} cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Debug -DDAMSELFLY_SANITIZE=ON \
    -DDAMSELFLY_FUZZ=ON
cmake --build "$BUILD_DIR" -j "$JOBS"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 900 "$@"
