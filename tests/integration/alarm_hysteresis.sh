#!/usr/bin/env bash
# A flapping input that keeps crossing the crit threshold but never falls to its reset does
# not fire again: one firing and one resolved event, counted on the bus. The same input on a
# rule without a reset fires at every crossing, which is what hysteresis is for.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"

start_mosquitto
rule hyst '{"name":"hyst","select":{"measurement":"cpu","field":"usage_user"},
  "crit":{"threshold":90,"reset":70}}'
rule plain '{"name":"plain","select":{"measurement":"cpu","field":"usage_system"},"crit":90}'
capture_events
start_alarm
t=$(now_ns)
i=0
for v in 95 80 92 75 99 71 93; do
    i=$((i + 1))
    send vm1 "cpu,cpu=cpu-total usage_user=$v,usage_system=$v $((t + i * 1000000000))"
done
wait_for 5 state_is hyst firing || fail "the flapping input did not fire"
sleep 1
[ "$(events hyst firing)" = 1 ] || fail "hyst fired $(events hyst firing) times, want 1"
[ "$(events hyst resolved)" = 0 ] || fail "hyst resolved although the value stayed over 70"
[ "$(events plain firing)" = 4 ] || fail "plain fired $(events plain firing) times, want 4"
send vm1 "cpu,cpu=cpu-total usage_user=60,usage_system=60 $((t + 10 * 1000000000))"
wait_for 5 state_is hyst none || fail "hyst did not resolve under its reset"
sleep 0.5
[ "$(events hyst resolved)" = 1 ] || fail "hyst resolved $(events hyst resolved) times, want 1"
[ "$(events hyst firing)" = 1 ] || fail "hyst fired again"
log "hyst: $(events hyst firing) firing, $(events hyst resolved) resolved; plain: $(events plain firing) firing"
curl -sf "$API/api/v1/history?limit=2" | python3 -c '
import json, sys
ev = json.load(sys.stdin)["events"]
assert [(e["rule"], e["state"]) for e in ev] == [("hyst", "resolved"), ("plain", "resolved")], ev' ||
    fail "GET /api/v1/history does not end with the two resolved events"
check_event_schema
stop_alarm_clean
log "ok"
