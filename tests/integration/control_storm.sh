#!/usr/bin/env bash
# The storm breaker: when most of an MCI goes bad at once, or the controller's own view (the
# bus) goes away, healing would make things worse, so nothing is done. SIGSTOP of 3 of 4 VMs
# at once: no federation call in 15 s, the breaker's opening is published on dsf/action/...,
# recorded in the audit and notified; after SIGCONT it closes, no sooner than breaker.hold
# (5 s) later. Then the broker stops for 20 s and comes back on the same port: no federation
# call in the 15 s after, while every agent and alarm comes back at once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"

ctl_stack_up 4
ctl_policy heal '{"name": "heal", "match": {"rule": "agent_down", "state": "firing"},
  "steps": [{"action": "reboot"}, {"action": "notify"}],
  "verify_timeout": "20s", "cooldown": "30s", "hold": "10m"}'
ctl_policy silent '{"name": "silent", "match": {"rule": "'"$CTL_NODATA_RULE"'", "state": "nodata"},
  "steps": [{"action": "reboot"}, {"action": "notify"}],
  "verify_timeout": "20s", "cooldown": "30s", "hold": "10m"}'
ctl_start --set breaker.hold=5s
sleep 2
[ "$(ctl_calls)" = 0 ] || fail "the controller called the federation layer on a healthy MCI"

log "SIGSTOP g-1, g-2, g-3 at once"
for vm in g-1 g-2 g-3; do pg[${vm#g-}]=$(vm_pgid $vm); done
for i in 1 2 3; do kill -STOP -- "-${pg[$i]}"; done
sleep 15
for vm in g-1 g-2 g-3; do
    [ "$(alarm_event_count "$CTL_NODATA_RULE" nodata $vm)" -ge 1 ] || fail "$vm never went nodata"
done
[ "$(ctl_calls)" = 0 ] || fail "$(ctl_calls) federation calls during the storm, want 0"
[ "$(bus_count '^[0-9.]+ dsf/action/[^ ]* .*"open":true')" -ge 1 ] ||
    fail "no breaker opening on dsf/action/..."
ctl_audit_has "$AUDIT_BREAKER_OPEN" || fail "the breaker's opening is not in the audit"
wait_for 10 webhook_seen breaker || fail "no webhook about the breaker"

log "SIGCONT: the breaker closes after its hold"
t_cont=$(now_ms)
for i in 1 2 3; do kill -CONT -- "-${pg[$i]}"; done
wait_for 40 ctl_audit_has "$AUDIT_BREAKER_CLOSED" || fail "the breaker did not close"
python3 - "$CTL_AUDIT" "$t_cont" <<'PY' || fail "the breaker closed before its hold of 5 s"
import datetime, json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("event") == "breaker" and r.get("open") is False:
        t = datetime.datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp() * 1000
        print("breaker closed %d ms after SIGCONT" % (t - int(sys.argv[2])))
        sys.exit(0 if t - int(sys.argv[2]) >= 5000 else 1)
sys.exit(1)
PY
[ "$(ctl_calls)" = 0 ] || fail "$(ctl_calls) federation calls after the storm, want 0"
ctl_audit_verify

log "the broker goes away for 20 s"
calls=$(ctl_calls)
ctl_broker_stop
sleep 20
ctl_broker_start "$MQTT_PORT"
log "the broker is back on $MQTT_PORT"
sleep 15
[ "$(ctl_calls)" = "$calls" ] || fail "$(($(ctl_calls) - calls)) federation calls after the broker came back, want 0"
[ "$(ctl_audit_count 'r["event"] == "breaker" and r["open"] is True and r["scope"] == "observer:bus"')" -ge 1 ] ||
    fail "the lost bus did not open the observer breaker"
ctl_audit_verify
ctl_stop
log "ok"
