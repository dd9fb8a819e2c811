#!/usr/bin/env bash
# Restart the engine while an alarm fires, once with SIGTERM and once with kill -9: the alarm
# is still firing afterwards with its original start, a sample that keeps it over the
# threshold publishes no second "firing" event, the webhook receiver gets no second firing
# notification, and the sample that clears it resolves it (one resolved notification).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"

start_mosquitto
rule hot '{"name":"hot","select":{"measurement":"cpu","field":"usage_user"},"crit":90,
  "annotations":{"summary":"{{vm}} at {{value}}%"}}'
capture_events
bg sink python3 "$DSF_SRC/tests/tools/notify_sink.py" "$WORK/hook.port" "$WORK/hook.jsonl"
wait_for 10 test -s "$WORK/hook.port" || fail "the webhook sink did not start"
cat >"$WORK/notify.json" <<JSON
{"route": {"receiver": "hook", "group_by": ["alertname", "vm"], "group_wait": "0s",
           "group_interval": "1s", "repeat_interval": "1h"},
 "receivers": [{"name": "hook",
   "webhook_configs": [{"url": "http://127.0.0.1:$(cat "$WORK/hook.port")/hook"}]}]}
JSON
NOTIFY=(--set notify.config="$WORK/notify.json" --set notify.resend=1s)
start_alarm "${NOTIFY[@]}"
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
    start_alarm "${NOTIFY[@]}"
    state_is hot firing || fail "after SIG$how the alarm is $(alarm_state hot), not firing"
    again=$(curl -sf "$API/api/v1/alarms" | python3 -c 'import json,sys; print(json.load(sys.stdin)["alarms"][0]["starts_at"])')
    [ "$again" = "$starts" ] || fail "after SIG$how starts_at moved from $starts to $again"
    t=$((t + 1000000000))
    send vm1 "cpu,cpu=cpu-total usage_user=97 $t"
    sleep 2.5 # beyond the resend interval: the notifier sees the alert again
    [ "$(events hot firing)" = 1 ] || fail "after SIG$how: $(events hot firing) firing events, want 1"
    notified=$(grep -c '\\"status\\":\\"firing\\"' "$WORK/hook.jsonl" || true)
    [ "$notified" = 1 ] || fail "after SIG$how: $notified firing notifications, want 1"
done
grep -q '"summary":"vm1 at 95%"' "$WORK/sub-events.log" || fail "the annotation was not rendered"
send vm1 "cpu,cpu=cpu-total usage_user=10 $((t + 1000000000))"
wait_for 5 state_is hot none || fail "the alarm did not resolve after the restarts"
sleep 0.5
[ "$(events hot resolved)" = 1 ] || fail "$(events hot resolved) resolved events, want 1"
wait_for 5 grep -q '\\"status\\":\\"resolved\\"' "$WORK/hook.jsonl" || fail "no resolved notification"
python3 - "$WORK/hook.jsonl" <<'PY' || fail "the webhook did not get exactly one firing and one resolved notification"
import json, sys
statuses = [json.loads(json.loads(l)["body"])["status"] for l in open(sys.argv[1])]
assert statuses == ["firing", "resolved"], statuses
print("webhook across two restarts:", statuses)
PY
check_event_schema
log "ok: one firing and one resolved event across two restarts"
