#!/usr/bin/env bash
# Four collectors and a balancer: every bucket is in exactly one retained assignment, 16 each,
# each collector applied its own; one line to each bucket is consumed once (64 lines in over
# the four); the API, the metrics and state.dir/epoch.json (epochs reserved up to a second
# ahead) agree with what was published.
. "$(dirname "$0")/balancer_lib.sh"

bal_start_stack
for c in c1 c2 c3 c4; do start_collector $c; done
start_balancer b1
wait_for 15 owned "c1 c2 c3 c4" || fail "not every bucket owned once by c1-c4: $(tail -n 5 "$WORK/sub-bus.log")"
counts=$(python3 -c 'import json,collections; print(sorted(collections.Counter(json.load(open("'"$WORK"'/owners.json")).values()).values()))')
[ "$counts" = "[16, 16, 16, 16]" ] || fail "buckets per collector: $counts, expected 16 each"
log "64 buckets, 16 per collector, each assignment applied"

send_each "$(seq -s ' ' 0 63)" basic
wait_for 10 stored_is basic 64 || fail "$(stored basic) of 64 lines stored"
sleep 1
[ "$(points_in "c1 c2 c3 c4")" = 64 ] || fail "the collectors took in $(points_in "c1 c2 c3 c4") lines, expected 64 (one per bucket)"
log "one line per bucket: consumed once, stored"

leading b1 || fail "b1 does not lead"
pool=$(bal_get b1 /api/v1/pool) || fail "GET /api/v1/pool failed"
python3 - "$pool" <<'PY' || fail "GET /api/v1/pool: $pool"
import json, sys
p = json.loads(sys.argv[1])
assert p["leading"] and p["leader"] == "b1", p
d = [x for x in p["pools"] if x["name"] == "default"][0]
m = {x["id"]: x for x in d["members"]}
assert sorted(m) == ["c1", "c2", "c3", "c4"], m
assert all(x["alive"] and len(x["buckets"]) == 16 and x["moves_in_flight"] == 0 for x in m.values()), m
PY
for c in c1 c2 c3 c4; do
    [ "$(bal_metric b1 damselfly_balancer_buckets "member=\"$c\",role=\"collector\"")" = 16 ] || fail "damselfly_balancer_buckets{member=$c} is not 16"
done
[ "$(bal_metric b1 damselfly_balancer_members 'pool="default",state="alive"')" = 4 ] || fail "members{alive} is not 4"
reserved=$(python3 -c 'import json; print(json.load(open("'"$WORK"'/bal-b1/epoch.json"))["epoch"])')
last=$(grep '/assign ' "$WORK/sub-bus.log" | grep -o '"epoch":[0-9]*' | cut -d: -f2 | sort -n | tail -n 1)
[ "$(bal_metric b1 damselfly_balancer_epoch)" = "$last" ] || fail "epoch metric $(bal_metric b1 damselfly_balancer_epoch) is not the last published $last"
[ "$reserved" -ge "$last" ] && [ "$reserved" -le $((last + 1000)) ] ||
    fail "epoch.json reserves up to $reserved, not within a second above the last published $last"
log "API, metrics and epoch.json agree"
log "ok"
