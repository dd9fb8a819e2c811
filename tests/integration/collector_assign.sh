#!/usr/bin/env bash
# Bucket assignments: a collector with mqtt.follow_assign consumes the buckets given by the
# retained assignment on dsf/c/{id}/assign. A newer epoch moves it to the new buckets (a
# bucket in both epochs keeps flowing: no message of a steady stream is lost across the
# change); a stale epoch, a malformed assignment and one naming a bucket out of range are
# refused with a warning and counted; after a restart the retained assignment applies again.
# The heartbeat reports the epoch and the number of buckets.
. "$(dirname "$0")/lib.sh"

follower_stack
assign() { # RETAIN(-r or "") PAYLOAD
    mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 $1 -t dsf/c/c1/assign -m "$2"
}
# The newest heartbeat (after line HB_FROM of the capture) says epoch $1 with $2 buckets.
HB_FROM=0
heartbeat_is() { follower_hb_is "$1" "$2" "$HB_FROM"; }
# vm_in BUCKET NAME: NAME-N, the first whose bucket (ns1/m1/NAME-N) is BUCKET: collectors
# refuse a message on another bucket than its agent's.
vm_in() {
    python3 -c '
import sys, itertools
for i in itertools.count():
    h = 2166136261
    for b in f"ns1/m1/{sys.argv[2]}-{i}".encode():
        h = ((h ^ b) * 16777619) & 0xffffffff
    if h % 64 == int(sys.argv[1]):
        print(f"{sys.argv[2]}-{i}"); break' "$1" "$2"
}
VA=$(vm_in 3 vm-a) VB=$(vm_in 5 vm-b) VS=$(vm_in 5 vm-s) VC=$(vm_in 6 vm-c)
n=0
send() { # BUCKET VM: one line, x = a running number
    n=$((n + 1))
    printf 'assign,vm=%s x=%di %s\n' "$2" "$n" "$(date +%s%N)" |
        mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -t "dsf/m/$1/ns1/m1/$2" -s -D publish user-property fmt lp
}
stored() { # VM -> number of points stored for it
    influx_query dsf "SELECT count(x) FROM assign WHERE vm='$1'" |
        python3 -c 'import json,sys; s=json.load(sys.stdin)["results"][0].get("series"); print(s[0]["values"][0][1] if s else 0)'
}
stored_is() { [ "$(stored "$1")" = "$2" ]; }
expect_stored() { # VM COUNT
    wait_for 10 stored_is "$1" "$2" || fail "$1: $(stored "$1") points stored, expected $2"
}

start_follower --set mqtt.buckets=none
wait_for 5 heartbeat_is 0 0 || fail "no heartbeat with epoch 0 and no bucket before any assignment"
assign -r '{"epoch":1,"buckets":[3]}'
wait_for 5 heartbeat_is 1 1 || fail "epoch 1 not applied: $(tail -n 1 "$WORK/hb.log")"
send 3 "$VA"
send 5 "$VB"
expect_stored "$VA" 1
sleep 1
[ "$(stored "$VB")" = 0 ] || fail "bucket 5 was consumed under epoch 1"
log "epoch 1: bucket 3 consumed, bucket 5 not"

assign -r '{"epoch":2,"buckets":[5]}'
wait_for 5 heartbeat_is 2 1 || fail "epoch 2 not applied"
send 3 "$VA"
send 5 "$VB"
expect_stored "$VB" 1
sleep 1
[ "$(stored "$VA")" = 1 ] || fail "bucket 3 still consumed under epoch 2"
log "epoch 2: moved to bucket 5"

assign "" '{"epoch":1,"buckets":[3]}'
assign "" '{"epoch":9,"buckets":[3,999]}'
assign "" 'not json'
sleep 1
heartbeat_is 2 1 || fail "a stale or bad assignment was applied: $(tail -n 1 "$WORK/hb.log")"
grep -q "malformed assignment" "$WORK"/collector-*.log || fail "no warning for the malformed assignment"
grep -q "bucket numbers outside" "$WORK"/collector-*.log || fail "no warning for bucket 999"
grep -q "refusing stale assignment epoch 1" "$WORK"/collector-*.log || fail "no warning for epoch 1"
refused() { metric "http://127.0.0.1:$CPORT/metrics" damselfly_collector_assign_refused_total "reason=\"$1\""; }
for reason in stale malformed range; do
    [ "$(refused $reason)" = 1 ] || fail "assign_refused_total{reason=$reason} is $(refused $reason), expected 1"
done
log "stale, malformed and out-of-range assignments refused with a warning, each counted"

# A steady stream on bucket 5 while epoch 3 adds bucket 6: nothing lost across the change.
(for i in $(seq 200); do
    printf 'assign,vm=%s x=%di %s\n' "$VS" "$i" "$(date +%s%N)"
    sleep 0.01
done) | mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -t "dsf/m/5/ns1/m1/$VS" -l -D publish user-property fmt lp &
STREAM=$!
sleep 0.5
assign -r '{"epoch":3,"buckets":[5,6]}'
wait "$STREAM"
wait_for 5 heartbeat_is 3 2 || fail "epoch 3 not applied"
expect_stored "$VS" 200
log "epoch 3: a stream on a bucket kept across epochs lost nothing"

stop_pid "$COLLECTOR_PID"
HB_FROM=$(wc -l <"$WORK/hb.log")
start_follower --set mqtt.buckets=none
wait_for 5 heartbeat_is 3 2 || fail "after a restart the retained assignment was not applied"
send 6 "$VC"
expect_stored "$VC" 1
log "restart: retained epoch 3 applied again"
log "ok"
