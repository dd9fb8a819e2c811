#!/usr/bin/env bash
# Builds Damselfly twice and runs every test under ctest against each build:
#   sanitize: clang, Debug, AddressSanitizer + UBSan, libFuzzer targets (build-test)
#   release:  gcc -O2, Release, as users get it (build-release)
# Independent tests run in parallel (ctest -j); tests that measure rates or build whole
# binaries are marked to run alone (tests/CMakeLists.txt).
# Usage: scripts/test.sh [ctest arguments, e.g. -R agent]; as root, or as a user with sudo.
# Environment: BUILDS (default "sanitize release"), JOBS (build jobs, default: cores),
# TEST_JOBS (parallel tests, default: cores + 1), BUILD_DIR / RELEASE_DIR (build directories).
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests need root (cgroups, the privilege-drop checks): as a user, through sudo.
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null ||
        { echo "test.sh: the tests need root (cgroups, privilege drop) and sudo is not installed: run $0 as root" >&2; exit 1; }
    exec sudo --preserve-env=BUILDS,JOBS,TEST_JOBS,BUILD_DIR,RELEASE_DIR,CC,RELEASE_CC,ASAN_OPTIONS,UBSAN_OPTIONS \
        bash "$PWD/scripts/test.sh" "$@"
fi
# It asks for root (sudo when not root) only when a package is missing or a daemon enabled.
bash scripts/install-deps.sh all
BUILDS=${BUILDS:-sanitize release}
JOBS=${JOBS:-$(nproc)}
TEST_JOBS=${TEST_JOBS:-$(($(nproc) + 1))}

build() { # MODE DIR
    case $1 in
    sanitize)
        CC=${CC:-clang} cmake -S . -B "$2" -DCMAKE_BUILD_TYPE=Debug -DDAMSELFLY_SANITIZE=ON \
            -DDAMSELFLY_FUZZ=ON ;;
    release)
        CC=${RELEASE_CC:-gcc} cmake -S . -B "$2" -DCMAKE_BUILD_TYPE=Release \
            -DDAMSELFLY_SANITIZE=OFF -DDAMSELFLY_FUZZ=OFF ;;
    *) echo "test.sh: unknown build '$1' (sanitize or release)" >&2; exit 2 ;;
    esac
    cmake --build "$2" -j "$JOBS"
}

dir_of() { [ "$1" = sanitize ] && echo "${BUILD_DIR:-build-test}" || echo "${RELEASE_DIR:-build-release}"; }

for mode in $BUILDS; do
    build "$mode" "$(dir_of "$mode")"
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for mode in $BUILDS; do
    echo "test.sh: running the tests against the $mode build"
    (cd "$(dir_of "$mode")" && ctest --output-on-failure --timeout 900 -j "$TEST_JOBS" "$@") ||
        failed+=("$mode")
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "test.sh: tests failed in the ${failed[*]} build(s)" >&2
    exit 1
fi
echo "test.sh: every test passed in the $BUILDS build(s)"
