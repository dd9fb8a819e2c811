#!/usr/bin/env bash
# Forged status. Another client publishes a retained {"status":"offline"} (with the agent's
# own boot), clears the retained status, or publishes an online status of another run on a
# healthy agent's status topic: within seconds the retained status is the agent's own online
# status again, each overwrite is counted, and the agent does not loop on its own status. The
# alarm engine, running deploy/alarm.d's agent_down rule (its "for" cut to 2 s), never fires.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"

start_mosquitto
python3 - "$DSF_SRC/deploy/alarm.d/agent_down.json" "$WORK/rules/agent_down.json" <<'PY'
import json, sys
rule = json.load(open(sys.argv[1]))
rule["for"] = "2s"
json.dump(rule, open(sys.argv[2], "w"))
PY
capture_events
start_alarm
TOPIC=dsf/a/ns1/mci1/vm1/status
bg sub-status mosquitto_sub -V 5 -p "$MQTT_PORT" -t "$TOPIC" -F '%r|%p'
HTTP=$(free_port)
M="http://127.0.0.1:$HTTP/metrics"
bg agent "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm=vm1 \
    --set interval=60s --set mqtt.url="$MQTT_URL" --set http.listen="127.0.0.1:$HTTP" \
    --set privileges.drop=false
# retained: the status a new subscriber (the alarm engine after a restart, a console) reads.
retained() { mosquitto_sub -V 5 -p "$MQTT_PORT" -t "$TOPIC" -C 1 -W 5; }
wait_for 10 sh -c "mosquitto_sub -p $MQTT_PORT -t $TOPIC -C 1 -W 1 | grep -q '\"online\"'" ||
    fail "the agent published no online status"
own=$(retained)
boot=$(printf '%s' "$own" | python3 -c 'import json, sys; print(json.load(sys.stdin)["boot"])')
log "the agent's status: $own"
is_own() { [ "$(retained)" = "$own" ]; }
overwritten() { metric "$M" damselfly_agent_status_overwritten_total || echo 0; }
counted_above() { [ "$(overwritten)" -gt "$1" ]; }

forge() { # DESCRIPTION MOSQUITTO_PUB_ARGS...
    local what=$1 before
    shift
    before=$(overwritten)
    mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -r -t "$TOPIC" "$@"
    wait_for 5 is_own || fail "after $what the retained status is $(retained)"
    wait_for 5 counted_above "$before" || fail "$what was not counted"
    log "$what: the agent's status is back, $(overwritten) overwrites counted"
}
forge "a retained offline status" -m "{\"status\":\"offline\",\"ns\":\"ns1\",\"mci\":\"mci1\",\"vm\":\"vm1\",\"boot\":\"$boot\",\"version\":\"x\",\"address\":\"\",\"interval_ms\":60000}"
forge "a cleared status" -n
forge "another run's online status" -m '{"status":"online","ns":"ns1","mci":"mci1","vm":"vm1","boot":"0000000000000000","version":"x","address":"10.0.0.66:9100","interval_ms":60000}'
grep -q "another client published an offline status on $TOPIC" "$WORK/agent.log" ||
    fail "no warning about the forged status"

# No loop on its own status: the counter and the status topic stay quiet.
count=$(overwritten)
lines=$(wc -l <"$WORK/sub-status.log")
sleep 3
[ "$(overwritten)" = "$count" ] || fail "the overwrite counter kept rising: $count, then $(overwritten)"
[ "$(wc -l <"$WORK/sub-status.log")" = "$lines" ] || fail "the agent kept publishing its status"
[ "$lines" -le 8 ] || fail "$lines status messages for 3 forgeries"

state_is agent_down none || fail "agent_down is $(alarm_state agent_down) for a healthy agent"
[ "$(events agent_down firing)" = 0 ] || fail "agent_down fired for a healthy agent"
log "ok"
