#!/usr/bin/env bash
# A member that beats but never applies its assignment (x1, heartbeats by hand, epoch 0):
# the buckets given to it stay with their old owner meanwhile (given before taken), and after
# move.timeout they are its no more: nothing was ever unowned, c1 keeps all 64, and x1's
# retained assignment is emptied.
. "$(dirname "$0")/balancer_lib.sh"

bal_start_stack
start_collector c1
start_balancer b1 --set move.timeout=3s
wait_for 15 owned c1 || fail "c1 does not own every bucket"
(while :; do
    mosquitto_pub -p "$MQTT_PORT" -t dsf/c/x1/hb -m '{"id":"x1","status":"online","epoch":0}'
    sleep 1
done) &
BEATS=$!
DSF_PIDS+=("$BEATS")
wait_for 10 grep -q '/x1/assign {"epoch":[0-9]*,"buckets":\[[0-9]' "$WORK/sub-bus.log" || fail "x1 was given nothing"
log "x1 was given buckets; it never confirms"
wait_for 10 grep -q "member x1 has not confirmed" "$WORK"/balancer-b1-*.log || fail "x1 not found unresponsive"
wait_for 5 grep -q '/x1/assign {"epoch":[0-9]*,"buckets":\[\]}' "$WORK/sub-bus.log" || fail "x1's assignment not emptied"
kill "$BEATS"
given=$(grep -c '/c1/assign ' "$WORK/sub-bus.log")
owned c1 || fail "c1 does not hold every bucket alone"
[ "$given" = 1 ] || fail "c1's assignment changed $given times: a bucket was taken from it before x1 confirmed"
n=$(bal_metric b1 damselfly_balancer_moves_total 'reason="timeout"')
[ "$n" -ge 1 ] || fail "moves_total{timeout} is $n"
log "x1 unresponsive after move.timeout: $n buckets back to c1, which never lost one"
log "ok"
