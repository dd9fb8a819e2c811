#!/usr/bin/env bash
# A fifth collector joins four: at most ceil(64/5)+1 = 14 buckets move, all to it, and the
# others keep theirs; each moved bucket is given before it is taken (never unowned). A
# collector stopped cleanly leaves: only its buckets move.
. "$(dirname "$0")/balancer_lib.sh"

bal_start_stack
for c in c1 c2 c3 c4; do start_collector $c; done
start_balancer b1
wait_for 15 owned "c1 c2 c3 c4" || fail "not every bucket owned once by c1-c4"
cp "$WORK/owners.json" "$WORK/four.json"

start_collector c5
wait_for 15 owned "c1 c2 c3 c4 c5" || fail "c5 got no share: $(owners_now "c1 c2 c3 c4 c5" || true)"
sleep 2 # nothing more moves
owned "c1 c2 c3 c4 c5" || fail "ownership changed after the join settled"
cp "$WORK/owners.json" "$WORK/five.json"
read -r n pairs <<<"$(moved "$WORK/four.json" "$WORK/five.json")"
log "join: $n buckets moved ($pairs)"
[ "$n" -ge 12 ] && [ "$n" -le 14 ] || fail "$n buckets moved on the join, expected 12-14"
for p in $pairs; do [ "${p#*->}" = c5 ] || fail "a bucket moved $p: only moves to c5 are expected"; done
$CHECK doubles "$WORK/sub-bus.log" 3 >/dev/null || fail "a bucket stayed in two assignments: $($CHECK doubles "$WORK/sub-bus.log" 3)"
# Give before take: at no moment after the first assignment was a bucket in no assignment.
python3 - "$WORK/sub-bus.log" <<'PY' || fail "a bucket was unassigned during the join"
import json, sys
assign, full = {}, False
for line in open(sys.argv[1]):
    t, topic, payload = line.rstrip("\n").split(" ", 2)
    if not topic.endswith("/assign"):
        continue
    o = json.loads(payload)
    assign[topic.split("/")[2]] = set(o["buckets"])
    held = set().union(*assign.values())
    if len(held) == 64:
        full = True
    elif full:
        sys.exit(f"at {t} buckets {sorted(set(range(64)) - held)} were in no assignment")
PY
[ "$(bal_metric b1 damselfly_balancer_moves_total 'reason="join"')" = "$n" ] || fail "moves_total{join} is not $n"

t0=$(date +%s.%N)
stop_pid "${COLLECTOR_PID[c2]}"
wait_for 10 owned "c1 c3 c4 c5" || fail "c2's buckets not reassigned after its clean stop"
cp "$WORK/owners.json" "$WORK/after.json"
read -r n pairs <<<"$(moved "$WORK/five.json" "$WORK/after.json")"
log "leave: $n buckets moved ($pairs)"
for p in $pairs; do [ "${p%->*}" = c2 ] || fail "a bucket moved $p: only c2's are expected to"; done
[ "$n" = "$(python3 -c 'import json; print(list(json.load(open("'"$WORK"'/five.json")).values()).count("c2"))')" ] ||
    fail "$n buckets moved, not all of c2's"
log "ok"
