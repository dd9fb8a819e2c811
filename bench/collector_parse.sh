#!/usr/bin/env bash
# The collector's intake on one core: lines per CPU second when forwarding (parse + validate +
# batch into a null writer) and when aggregating (numbers converted, 10 s windows), beside a
# naive byte-by-byte line-protocol validator in the same run, on agent-like cpu lines (6 tags,
# 4 float fields, a timestamp). Targets: >= 5,000,000 forwarding, >= 2,000,000 aggregating.
# The runs alternate for ROUNDS rounds (default 3); each figure is the best of its rounds.
# Usage: bench/collector_parse.sh [SECONDS-PER-RUN]   (default 3; environment BUILD=dir to reuse)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$SRC/build-bench}
echo "building collector_parse (Release) in $BUILD..." >&2
mkdir -p "$BUILD"
if ! { cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DDAMSELFLY_TESTS=ON \
    -DDAMSELFLY_SANITIZE=OFF -DDAMSELFLY_FUZZ=OFF &&
    cmake --build "$BUILD" -j "$(nproc)" --target collector_parse; } >"$BUILD/bench-build.log" 2>&1; then
    grep -i -m5 error "$BUILD/bench-build.log" >&2
    exit 1
fi
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
"$BUILD/bench/collector_parse" "${1:-3}"
