#!/usr/bin/env bash
# A removed VM's alarms go away: with a real mosquitto that refuses anonymous clients (the
# files of `damselfly bus-acl`), the real alarm engine (an agent_offline rule, for 0s) and an
# MCI of 2 local VMs whose agents log in with their own broker users. Both agents are
# terminated, so both fire agent_down. `damselfly-fed vm delete` of web-1 with mqtt.url and
# the operator's credentials clears web-1's retained status (the broker keeps none), and the
# engine forgets web-1's alarm within seconds (API, state file, and
# damselfly_alarm_series_forgotten_total) while web-2's status and alarm stay. Deleting web-2
# without mqtt.url leaves its status and its alarm and prints a warning naming the topic and
# the mosquitto_pub command that clears it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"

FED="$DSF_BUILD/federation/damselfly-fed"
[ -x "$FED" ] || fail "$FED is missing: build the tree first"
[ -x "$AGENT" ] || fail "$AGENT is missing: build the tree first"
for t in mosquitto_passwd mosquitto_sub mosquitto_pub; do
    command -v $t >/dev/null || fail "$t is needed (apt-get install mosquitto mosquitto-clients)"
done

start_mosquitto_auth --alarm a1
echo "$MOSQUITTO_PID" >"$WORK/mosquitto.pid" # damselfly-fed reloads it after adding agents
OP_PW=$(mqtt_creds operator)

rule agent_down '{"name": "agent_down", "signal": "agent_offline", "for": "0s",
  "severity": "crit"}'
start_alarm --set mqtt.username=alarm.a1 --set mqtt.password="$(mqtt_creds alarm.a1)"

STATE="$WORK/state-fed"
fed() {
    "$FED" --state-dir "$STATE" --driver local \
        --set local.mqtt_url="$MQTT_URL" --set local.interval=1s \
        --set local.agent_binary="$AGENT" \
        --set local.install_script="$DSF_SRC/deploy/install-agent.sh" \
        --set bus.password_file="$MQTT_ACL_DIR/passwd" \
        --set bus.broker_pid_file="$WORK/mosquitto.pid" "$@"
}
# The operator's broker connection, in a file of its own (the password stays off argv).
(umask 077 && printf '{"mqtt": {"url": "%s", "username": "operator", "password": "%s"}}\n' \
    "$MQTT_URL" "$OP_PW" >"$WORK/fed-bus.json")

# retained VM: the payload of VM's retained status, "" when the broker holds none.
retained() {
    mosquitto_sub -p "$MQTT_PORT" -V 5 -u operator -P "$OP_PW" -t "dsf/a/ns1/m1/$1/status" \
        -C 1 -W 2 -F '%p' 2>/dev/null || true
}
# alarm_of VM: the state of agent_down for VM in the engine's API, or "none".
alarm_of() {
    curl -sf "$API/api/v1/alarms" | python3 -c '
import json, sys
a = [x for x in json.load(sys.stdin)["alarms"]
     if x["rule"] == "agent_down" and x["group"].get("vm") == sys.argv[1]
     and x["group"]["mci"] == "m1"]
print(a[0]["state"] if a else "none")' "$1"
}
alarm_is() { [ "$(alarm_of "$1")" = "$2" ]; }
# in_state_file VM: the engine's state file holds an alarm of VM.
in_state_file() {
    python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["series"]
sys.exit(0 if any(x["group"].split("\x1f")[1:] == ["m1", sys.argv[2]] for x in s) else 1)' \
        "$WORK/state/alarm-state.json" "$1"
}
forgotten() { metric "$API/metrics" damselfly_alarm_series_forgotten_total; }

cat >"$WORK/spec.json" <<'EOF'
{"vm": [{"name": "web", "subGroupSize": 2, "csp": "local", "region": "r1"}]}
EOF
log "an MCI of 2 local VMs; their agents report online"
fed create-mci ns1 m1 --spec "$WORK/spec.json" >"$WORK/fed.out" 2>&1 ||
    fail "create-mci failed: $(cat "$WORK/fed.out")"
online() { retained "$1" | grep -q '"status":"online"'; }
for vm in web-1 web-2; do
    wait_for 20 online $vm || fail "$vm's agent did not report online: '$(retained $vm)'"
done

log "both agents stop: agent_down fires for each"
for vm in web-1 web-2; do
    fed vm terminate ns1 m1 $vm >>"$WORK/fed.out" 2>&1 ||
        fail "terminate $vm failed: $(cat "$WORK/fed.out")"
done
for vm in web-1 web-2; do
    wait_for 10 alarm_is $vm firing || fail "agent_down is $(alarm_of $vm) for $vm, not firing"
    retained $vm | grep -q '"status":"offline"' || fail "$vm's retained status: '$(retained $vm)'"
done
wait_for 5 in_state_file web-1 || fail "web-1's alarm is not in the state file"
[ "$(forgotten)" = 0 ] || fail "series forgotten before any removal: $(forgotten)"

log "vm delete web-1 with the operator's broker credentials clears its status"
fed -c "$WORK/fed-bus.json" vm delete ns1 m1 web-1 >"$WORK/delete1.out" 2>&1 ||
    fail "vm delete web-1 failed: $(cat "$WORK/delete1.out")"
grep -q 'cleared its retained status on dsf/a/ns1/m1/web-1/status' "$WORK/delete1.out" ||
    fail "no clearing logged: $(cat "$WORK/delete1.out")"
grep -q 'mosquitto_pub' "$WORK/delete1.out" && fail "a warning with mqtt.url: $(cat "$WORK/delete1.out")"
grep -qF -- "$OP_PW" "$WORK/delete1.out" && fail "the operator's password was printed"
[ -z "$(retained web-1)" ] || fail "the broker still holds web-1's status: '$(retained web-1)'"

log "the engine forgets web-1's alarm; web-2's stays"
wait_for 5 alarm_is web-1 none || fail "agent_down for web-1 is still $(alarm_of web-1)"
alarm_is web-2 firing || fail "agent_down for web-2 is $(alarm_of web-2), not firing"
retained web-2 | grep -q '"status":"offline"' || fail "web-2's status changed: '$(retained web-2)'"
f=$(forgotten) || fail "no damselfly_alarm_series_forgotten_total on /metrics"
[ "${f%.*}" -ge 1 ] || fail "damselfly_alarm_series_forgotten_total is $f"
not_in_state_file() { ! in_state_file web-1; }
wait_for 5 not_in_state_file || fail "the state file still holds web-1: $(cat "$WORK/state/alarm-state.json")"
in_state_file web-2 || fail "the state file lost web-2: $(cat "$WORK/state/alarm-state.json")"
grep -q 'ns1/m1/web-1 removed (its status was cleared): forgot its 1 alarm series' \
    "$WORK"/alarm-*.log || fail "the engine did not log the removal"
# No resolved event: the VM is gone, it did not recover.
resolved() { curl -sf "$API/api/v1/history" | grep -q '"state":"resolved"'; }
resolved && fail "an event was published for the forgotten alarm: $(curl -sf "$API/api/v1/history")"

log "without mqtt.url the status stays, and a warning says how to clear it"
fed vm delete ns1 m1 web-2 >"$WORK/delete2.out" 2>&1 ||
    fail "vm delete web-2 failed: $(cat "$WORK/delete2.out")"
grep -q 'retained status on dsf/a/ns1/m1/web-2/status stays' "$WORK/delete2.out" ||
    fail "no warning naming the topic: $(cat "$WORK/delete2.out")"
grep -qF 'mosquitto_pub -r -n -t dsf/a/ns1/m1/web-2/status' "$WORK/delete2.out" ||
    fail "the warning does not say how to clear it: $(cat "$WORK/delete2.out")"
sleep 1
retained web-2 | grep -q '"status":"offline"' || fail "web-2's status changed: '$(retained web-2)'"
alarm_is web-2 firing || fail "agent_down for web-2 is $(alarm_of web-2) without a clear"
log "PASS"
