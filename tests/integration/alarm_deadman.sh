#!/usr/bin/env bash
# kill -9 a real agent (interval 1 s): the deadman rule (nodata: 2s) raises its nodata alarm
# within 2 x interval + 1 s, and the agent's Last Will raises the agent_offline alarm; both
# resolve when the agent comes back.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"

start_mosquitto
rule deadman '{"name":"deadman","select":{"measurement":"cpu","field":"usage_idle",
  "tags":[{"tag":"cpu","op":"=","value":"cpu-total"}]},"nodata":"2s",
  "annotations":{"summary":"no samples from {{vm}}"}}'
rule down '{"name":"down","signal":"agent_offline","severity":"crit"}'
capture_events
start_alarm
agent_config "$WORK/agent.json" identity.ns=ns1 identity.mci=mci1 identity.vm=vm1 interval=1s \
    mqtt.url="$MQTT_URL" mqtt.keepalive:=2 http.listen=127.0.0.1:0 privileges.drop=false \
    inputs.processes.enabled=false
start_agent() {
    bg agent "$AGENT" --config "$WORK/agent.json"
    AGENT_PID=$BG_PID
}
start_agent
wait_for 10 sh -c "curl -sf '$API/healthz' | grep -q '\"series\":[1-9]'" ||
    fail "no samples from the agent reached the engine"
sleep 2
state_is deadman none || fail "the deadman fired while the agent was alive"
kill -9 "$AGENT_PID"
killed=$(date +%s.%N)
wait_for 10 state_is deadman nodata || fail "no nodata alarm within 10 s of kill -9"
seen=$(date +%s.%N)
took=$(python3 -c "print(round($seen - $killed, 2))")
log "nodata alarm $took s after kill -9"
python3 -c "import sys; sys.exit(0 if $seen - $killed <= 2 * 1 + 1 else 1)" ||
    fail "the nodata alarm took $took s, more than 2 x interval + 1 s"
grep -q '"severity":"nodata"' "$WORK/sub-events.log" || fail "no nodata event on the bus"
grep -q '"summary":"no samples from vm1"' "$WORK/sub-events.log" || fail "annotation not rendered"
wait_for 10 state_is down firing || fail "the Last Will did not raise the agent_offline alarm"
log "agent_offline alarm firing"
start_agent
wait_for 10 state_is deadman none || fail "the nodata alarm did not resolve when samples resumed"
wait_for 10 state_is down none || fail "the offline alarm did not resolve when the agent came back"
[ "$(events deadman nodata)" = 1 ] || fail "$(events deadman nodata) nodata events, want 1"
[ "$(events deadman resolved)" = 1 ] || fail "$(events deadman resolved) deadman resolved events"
[ "$(events down resolved)" = 1 ] || fail "$(events down resolved) offline resolved events"
check_event_schema
stop_alarm_clean
log "ok"
