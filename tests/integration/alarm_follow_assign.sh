#!/usr/bin/env bash
# An engine with mqtt.follow_assign evaluates only the buckets of its retained assignment on
# dsf/e/a1/assign: a threshold rule fires for a VM of an owned bucket, not for one of another
# bucket; its heartbeat on dsf/e/a1/hb shows the epoch applied. A new epoch moves it to the
# other bucket: the VM there fires, the VM of the bucket it lost is forgotten and its samples
# raise nothing any more; a stale epoch is refused and counted. Restarted after its bucket
# moved again, the engine drops the restored alarm of the bucket it no longer owns.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"

start_mosquitto
b1=$(bucket ns1/mci1/vm1 64)
vm2=
for v in vm2 vm3 vm4 vm5 vm6; do
    [ "$(bucket "ns1/mci1/$v" 64)" = "$b1" ] || { vm2=$v; break; }
done
[ -n "$vm2" ] || fail "no VM name found in a bucket other than vm1's"
b2=$(bucket "ns1/mci1/$vm2" 64)
log "vm1 in bucket $b1, $vm2 in bucket $b2"
rule hot '{"name":"hot","select":{"measurement":"cpu","field":"usage_user"},"crit":90}'

# assign EPOCH BUCKET: the balancer's retained assignment of one bucket to a1.
assign() {
    mosquitto_pub -V 5 -p "$MQTT_PORT" -r -q 1 -t dsf/e/a1/assign \
        -m "{\"epoch\":$1,\"buckets\":[$2]}" || fail "could not publish the assignment"
}
# hb_shows EPOCH: the latest heartbeat is a1's, role alarm, online, with that epoch and 1 bucket.
hb_shows() {
    python3 - "$WORK/hb.log" "$1" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("{")]
hb = json.loads(lines[-1])
assert hb["id"] == "a1" and hb["role"] == "alarm" and hb["status"] == "online", hb
assert hb["epoch"] == int(sys.argv[2]) and hb["buckets"] == 1, hb
assert {"points_per_s", "cpu", "series", "pool"} <= set(hb), hb
PY
}
# firing_vms: the VMs the API lists a hot alarm for, sorted, comma-joined.
firing_vms() {
    curl -sf "$API/api/v1/alarms" | python3 -c '
import json, sys
print(",".join(sorted(a["group"]["vm"] for a in json.load(sys.stdin)["alarms"]
                      if a["rule"] == "hot" and a["state"] == "firing")))'
}
firing_is() { [ "$(firing_vms)" = "$1" ]; }
metric() { curl -sf "$API/metrics" | awk -v k="$1" '$1 == k {print $2}'; }

e1=$(($(date +%s%3N) - 1000))
assign "$e1" "$b1"
bg hb mosquitto_sub -V 5 -p "$MQTT_PORT" -t dsf/e/a1/hb
capture_events
start_alarm --set mqtt.follow_assign=true --set heartbeat=200ms
wait_for 10 hb_shows "$e1" || fail "no heartbeat with epoch $e1 and 1 bucket: $(tail -1 "$WORK/hb.log")"
t=$(now_ns)
send vm1 "cpu,cpu=cpu-total usage_user=95 $t"
send "$vm2" "cpu,cpu=cpu-total usage_user=95 $t"
wait_for 5 firing_is vm1 || fail "want hot firing for vm1 only, got '$(firing_vms)'"
sleep 0.5
firing_is vm1 || fail "after the samples settled, hot fires for '$(firing_vms)', want vm1 only"
log "epoch $e1 (bucket $b1): hot fires for vm1 only"

e2=$(date +%s%3N)
assign "$e2" "$b2"
wait_for 10 hb_shows "$e2" || fail "no heartbeat with epoch $e2: $(tail -1 "$WORK/hb.log")"
wait_for 5 firing_is "" || fail "vm1's alarm stayed after its bucket moved: '$(firing_vms)'"
[ "$(metric damselfly_alarm_series_moved_total)" = 1 ] ||
    fail "damselfly_alarm_series_moved_total is '$(metric damselfly_alarm_series_moved_total)', want 1"
t=$(now_ns)
send vm1 "cpu,cpu=cpu-total usage_user=97 $t"
send "$vm2" "cpu,cpu=cpu-total usage_user=97 $t"
wait_for 5 firing_is "$vm2" || fail "want hot firing for $vm2 only, got '$(firing_vms)'"
sleep 0.5
firing_is "$vm2" || fail "after the move, hot fires for '$(firing_vms)', want $vm2 only"
log "epoch $e2 (bucket $b2): hot fires for $vm2 only"

# The first epoch again, not retained (a replay): refused as stale, nothing moves.
mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -t dsf/e/a1/assign -m "{\"epoch\":$e1,\"buckets\":[$b1]}"
wait_for 5 sh -c "curl -sf '$API/metrics' | grep -q '^damselfly_alarm_assign_refused_total{reason=\"stale\"} 1'" ||
    fail "the replayed epoch $e1 was not refused as stale"
sleep 0.5
hb_shows "$e2" || fail "the stale assignment changed the engine: $(tail -1 "$WORK/hb.log")"
stop_alarm_clean
wait_for 5 sh -c "mosquitto_sub -V 5 -p $MQTT_PORT -t dsf/e/a1/hb -C 1 -W 2 | grep -q '\"status\":\"offline\"'" ||
    fail "a clean stop did not leave the retained offline status on dsf/e/a1/hb"

# Moved while it was away: the state file brings back $vm2's firing alarm, which the first
# assignment (bucket $b1 only) drops.
e3=$(date +%s%3N)
assign "$e3" "$b1"
start_alarm --set mqtt.follow_assign=true --set heartbeat=200ms
wait_for 10 hb_shows "$e3" || fail "no heartbeat with epoch $e3 after the restart"
firing_is "" || fail "after the restart on bucket $b1, hot fires for '$(firing_vms)', want none"
[ "$(metric damselfly_alarm_series_moved_total)" = 1 ] ||
    fail "the restarted engine did not count $vm2's series as moved away"
stop_alarm_clean
log "ok"
