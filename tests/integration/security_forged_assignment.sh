#!/usr/bin/env bash
# Forged assignment: a retained {"epoch":9223372036854775807,"buckets":[]} on a collector's
# assign topic used to unsubscribe it from everything and, as no later epoch could be higher,
# lock the balancer out for good. Epochs are the balancer's wall-clock time in ms: one more
# than assign.max_ahead (10 min) ahead of the collector's clock is refused with a warning
# naming the epoch and the limit, and counted; the collector keeps its buckets (points are
# still stored), and the balancer's next assignment, epoch = now in ms, is applied.
. "$(dirname "$0")/lib.sh"

follower_stack
B=$(bucket ns1/mci1/vm1 64)
start_follower --set mqtt.buckets=none
assign() { mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -r -t dsf/c/c1/assign -m "$1"; }
n=0
send() {
    n=$((n + 1))
    printf 'assigned x=%di %s\n' "$n" "$(date +%s%N)" |
        mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -t "dsf/m/$B/ns1/mci1/vm1" -s -D publish user-property fmt lp
}
stored() {
    influx_query dsf "SELECT count(x) FROM assigned" |
        python3 -c 'import json,sys; s=json.load(sys.stdin)["results"][0].get("series"); print(s[0]["values"][0][1] if s else 0)'
}
stored_is() { [ "$(stored)" = "$1" ]; }
refused() { metric "http://127.0.0.1:$CPORT/metrics" damselfly_collector_assign_refused_total "reason=\"$1\""; }

assign "{\"epoch\":1,\"buckets\":[$B]}"
wait_for 5 follower_hb_is 1 1 || fail "epoch 1 not applied: $(tail -n 1 "$WORK/hb.log")"
send
wait_for 10 stored_is 1 || fail "$(stored) points stored under epoch 1, expected 1"

FORGED=9223372036854775807
assign "{\"epoch\":$FORGED,\"buckets\":[]}"
sleep 1
follower_hb_is 1 1 || fail "the forged assignment was applied: $(tail -n 1 "$WORK/hb.log")"
send
wait_for 10 stored_is 2 || fail "$(stored) points stored after the forged assignment, expected 2"
[ "$(refused ahead)" = 1 ] || fail "assign_refused_total{reason=ahead} is $(refused ahead), expected 1"
grep -q "refusing assignment epoch $FORGED: more than assign.max_ahead (600000 ms) ahead.*limit now [0-9]*" \
    "$WORK"/collector-*.log || fail "no warning naming the epoch and the limit"
log "epoch 2^63-1 refused and counted; bucket $B still consumed"

NOW_MS=$(date +%s%3N)
B2=$(((B + 1) % 64))
assign "{\"epoch\":$NOW_MS,\"buckets\":[$B,$B2]}"
wait_for 5 follower_hb_is "$NOW_MS" 2 || fail "the balancer's epoch $NOW_MS was not applied: $(tail -n 1 "$WORK/hb.log")"
send
wait_for 10 stored_is 3 || fail "$(stored) points stored under epoch $NOW_MS, expected 3"
[ "$(refused ahead)" = 1 ] && [ "$(refused stale)" = 0 ] || fail "refusals: ahead $(refused ahead), stale $(refused stale)"
log "epoch $NOW_MS (now, in ms) applied"
log "ok"
