#!/usr/bin/env bash
# Builds Damselfly twice and runs every test under ctest against each build:
#   sanitize: clang, Debug, AddressSanitizer + UBSan, libFuzzer targets (build-test)
#   release:  gcc -O2, Release, as users get it (build-release)
# Independent tests run in parallel (ctest -j), the two builds' side by side; tests that bound
# a latency are labelled to run alone, after the others (tests/CMakeLists.txt).
# Usage: scripts/test.sh [ctest arguments, e.g. -R agent]; as root, or as a user with sudo.
# Environment: BUILDS (default "sanitize release"), JOBS (build jobs, default: cores),
# TEST_JOBS (parallel tests per build, default: cores when two builds' tests run side by side,
# else cores + 1), BUILD_DIR / RELEASE_DIR (build directories).
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
# run_ctest MODE ARGS...: ctest on MODE's build, each line prefixed with the mode.
run_ctest() {
    local mode=$1
    shift
    (cd "$(dir_of "$mode")" && ctest --output-on-failure --timeout 900 "$@") 2>&1 | sed -u "s/^/[$mode] /"
}
# failure MODE: remembers the tests that failed in MODE's last ctest run.
failure() {
    failed+=("$1: $(tr '\n' ' ' <"$(dir_of "$1")/Testing/Temporary/LastTestsFailed.log" 2>/dev/null)")
}

read -ra modes <<<"$BUILDS"
if [ ${#modes[@]} -gt 1 ]; then
    # The builds' tests run side by side (most of them wait on daemons, not on the CPU), except
    # those labelled "alone" (they bound a latency in seconds): those run afterwards, one at a time.
    TEST_JOBS=${TEST_JOBS:-$(nproc)}
    echo "test.sh: running the tests of the ${modes[*]} builds side by side ($TEST_JOBS at a time each)"
    pids=()
    for mode in "${modes[@]}"; do
        run_ctest "$mode" -LE alone -j "$TEST_JOBS" "$@" &
        pids+=($!)
    done
    for i in "${!modes[@]}"; do
        wait "${pids[$i]}" || failure "${modes[$i]}"
    done
    echo "test.sh: running the tests that need the machine to themselves"
    for mode in "${modes[@]}"; do
        run_ctest "$mode" -L alone "$@" || failure "$mode"
    done
else
    TEST_JOBS=${TEST_JOBS:-$(($(nproc) + 1))}
    for mode in "${modes[@]}"; do
        echo "test.sh: running the tests against the $mode build"
        run_ctest "$mode" -j "$TEST_JOBS" "$@" || failure "$mode"
    done
fi
if [ ${#failed[@]} -gt 0 ]; then
    printf 'test.sh: failed: %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "test.sh: every test passed in the $BUILDS build(s)"
