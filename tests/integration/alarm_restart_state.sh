#!/usr/bin/env bash
# Restart the engine while an alarm fires, once with SIGTERM and once with kill -9: the alarm
# is still firing afterwards with its original start, a sample that keeps it over the
# threshold publishes no second "firing" event, and the sample that clears it resolves it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"

start_mosquitto
rule hot '{"name":"hot","select":{"measurement":"cpu","field":"usage_user"},"crit":90,
  "annotations":{"summary":"{{vm}} at {{value}}%"}}'
capture_events
start_alarm
t=$(now_ns)
send vm1 "cpu,cpu=cpu-total usage_user=95 $t"
wait_for 5 state_is hot firing || fail "the alarm did not fire"
starts=$(curl -sf "$API/api/v1/alarms" | python3 -c 'import json,sys; print(json.load(sys.stdin)["alarms"][0]["starts_at"])')
sleep 0.5 # the state is written within 200 ms of a change
for how in TERM KILL; do
    kill -s $how "$ALARM_PID"
    rc=0
    wait "$ALARM_PID" 2>/dev/null || rc=$?
    # A clean stop exits 0 (the sanitizers' leak check included).
    [ $how = KILL ] || [ $rc = 0 ] || fail "the engine exited with $rc on SIGTERM"
    log "engine stopped with SIG$how"
    start_alarm
    state_is hot firing || fail "after SIG$how the alarm is $(alarm_state hot), not firing"
    again=$(curl -sf "$API/api/v1/alarms" | python3 -c 'import json,sys; print(json.load(sys.stdin)["alarms"][0]["starts_at"])')
    [ "$again" = "$starts" ] || fail "after SIG$how starts_at moved from $starts to $again"
    t=$((t + 1000000000))
    send vm1 "cpu,cpu=cpu-total usage_user=97 $t"
    sleep 1
    [ "$(events hot firing)" = 1 ] || fail "after SIG$how: $(events hot firing) firing events, want 1"
done
grep -q '"summary":"vm1 at 95%"' "$WORK/sub-events.log" || fail "the annotation was not rendered"
send vm1 "cpu,cpu=cpu-total usage_user=10 $((t + 1000000000))"
wait_for 5 state_is hot none || fail "the alarm did not resolve after the restarts"
sleep 0.5
[ "$(events hot resolved)" = 1 ] || fail "$(events hot resolved) resolved events, want 1"
check_event_schema
log "ok: one firing and one resolved event across two restarts"
