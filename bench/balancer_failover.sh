#!/usr/bin/env bash
# damselfly-balancer's failover and movement for N = 4, 8, 12, 16 collectors (no load: only
# ownership is measured), on real mosquitto and collectors following its assignments
# (tests/integration/balancer_lib.sh). For each N, from the capture of every retained
# assignment and heartbeat (check_assign.py):
#   failover   kill -9 one of N -> every bucket assigned again / applied again (the new
#              owners' heartbeats show the epoch)
#   join       buckets moved when an (N+1)th collector joins N
#   leave      buckets moved when one of N stops cleanly
# beside what a re-chunk of all topics moves (CB-Dragonfly: the B topics split into N
# contiguous chunks, bucket b in chunk floor(b*N/B); on a leave the last collector goes, the
# re-chunk's best case) and the bound ceil(B/N')+1 of the balancer (N' collectors after).
# Usage: bench/balancer_failover.sh [N...]  (default 4 8 12 16); BUILD=dir reuses a build.
# Runtime: about 3 minutes.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
SIZES=${*:-4 8 12 16}
B=64
BUILD_GIVEN=${BUILD:-}
BUILD=${BUILD:-$SRC/build-bench/release}
for tool in mosquitto mosquitto_sub mosquitto_pub influxd curl python3; do
    command -v $tool >/dev/null || { echo "missing $tool: run scripts/install-deps.sh" >&2; exit 2; }
done
# A build dir given by BUILD keeps its configuration (a test build stays one).
if [ -z "$BUILD_GIVEN" ] || [ ! -f "$BUILD/CMakeCache.txt" ]; then
    echo "configuring (Release) in $BUILD..." >&2
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DDAMSELFLY_TESTS=ON >/dev/null ||
        { echo "configure failed" >&2; exit 1; }
fi
echo "building in $BUILD..." >&2
cmake --build "$BUILD" -j "$(nproc)" --target damselfly-collector damselfly-balancer >/dev/null ||
    { echo "build failed" >&2; exit 1; }
export DSF_BUILD=$BUILD DSF_SRC=$SRC
. "$SRC/tests/integration/balancer_lib.sh"
RESULTS="$WORK/results.txt"
: >"$RESULTS"

# rechunk FROM TO: buckets whose contiguous chunk index changes between FROM and TO chunks.
rechunk() {
    python3 -c 'import sys; b, f, t = map(int, sys.argv[1:]); print(sum(x * f // b != x * t // b for x in range(b)))' \
        "$B" "$1" "$2"
}

# settle IDS: every bucket owned by IDS and nothing moving for 2 s; owners in $WORK/owners.json.
settle() {
    wait_for 60 owned "$1" || fail "not every bucket owned once by $1"
    sleep 2
    wait_for 10 owned "$1" || fail "ownership by $1 did not settle"
}

round() { # N
    local n=$1 i ids="" rest join leave took applied
    for i in $(seq 1 "$n"); do ids+="r$n-c$i "; done
    ids=${ids% }
    for i in $ids; do start_collector "$i" --set log.level=warn; done
    start_balancer b1 --set log.level=warn
    settle "$ids"
    cp "$WORK/owners.json" "$WORK/n.json"

    start_collector "r$n-cx" --set log.level=warn
    settle "$ids r$n-cx"
    join=$(moved "$WORK/n.json" "$WORK/owners.json" | cut -d' ' -f1)
    stop_collector "r$n-cx"
    settle "$ids"
    cp "$WORK/owners.json" "$WORK/n.json"

    rest=${ids#"r$n-c1 "}
    stop_collector "r$n-c1"
    settle "$rest"
    leave=$(moved "$WORK/n.json" "$WORK/owners.json" | cut -d' ' -f1)

    restart_collector "r$n-c1"
    settle "$ids"
    local t0
    t0=$(date +%s.%N)
    kill_collector "r$n-c2"
    rest=${ids/"r$n-c2 "/}
    settle "$rest"
    took=$($CHECK assigned_at "$WORK/sub-bus.log" "$rest" "$t0")
    applied=$($CHECK owned_at "$WORK/sub-bus.log" "$rest" "$t0")
    echo "$n $took $applied $join $(rechunk "$n" $((n + 1))) $leave $(rechunk "$n" $((n - 1)))" >>"$RESULTS"
    log "N=$n: failover $took s (applied $applied s), join $join, leave $leave"

    # The next round starts from an empty broker state: no member, no retained assignment.
    for i in $rest; do stop_collector "$i"; done
    stop_pid "${BPID[b1]}"
    for i in $ids "r$n-cx"; do mosquitto_pub -p "$MQTT_PORT" -r -n -t "dsf/c/$i/assign"; done
    mosquitto_pub -p "$MQTT_PORT" -r -n -t dsf/b/leader
}

bal_start_stack
for n in $SIZES; do round "$n"; done

echo
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD/CMakeCache.txt")
echo "damselfly-balancer, B = $B buckets, collectors with heartbeat 1s, $btype build, $(nproc) cores"
python3 - "$RESULTS" "$B" <<'PY'
import math, sys
b = int(sys.argv[2])
print(f"| N | failover: assigned (s) | applied (s) | join N->N+1: moved | bound | re-chunk | leave N->N-1: moved | re-chunk |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for line in open(sys.argv[1]):
    n, took, applied, join, rj, leave, rl = line.split()
    bound = math.ceil(b / (int(n) + 1)) + 1
    print(f"| {n} | {took} | {applied} | {join} | <= {bound} | {rj} | {leave} | {rl} |")
PY
