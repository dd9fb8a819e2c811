#!/usr/bin/env bash
# Evaluation throughput of damselfly-alarm's engine: 1,000 rules over 100,000 series, one
# sample per series per round through the daemon's own intake and evaluation code, in
# process, on one core (bench/alarm_throughput.c).
# Usage: bench/alarm_throughput.sh [ROUNDS]  (default 30); BUILD=dir reuses a build.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build-bench/release}
echo "building (Release) in $BUILD..." >&2
{ cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DDAMSELFLY_TESTS=ON &&
    cmake --build "$BUILD" -j "$(nproc)" --target dsf-alarm-bench; } >/dev/null ||
    { echo "build failed" >&2; exit 1; }
"$BUILD/alarm/dsf-alarm-bench" "${1:-30}"
