#!/usr/bin/env bash
# An alarm that fired while the controller was down is acted on at its start, once: the
# whole stack with the real alarm engine (alarm.engines), an MCI of 3 local VMs running
# CTL_FRAGILE_WORKLOAD. With the controller stopped, g-2 is broken (it dies after every
# start, so agent_down keeps firing as the same occurrence) and killed; the engine fires
# agent_down. The controller starts, reads the engine's GET /api/v1/alarms and reboots g-2:
# one call, one start on the driver. Restarted again while the alarm still fires, it finds
# that occurrence in its audit and does nothing: no decision, no call, no start. The policy
# has neither cooldown nor hold, so only the occurrence's key can keep it from acting twice.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"
CTL_WORKLOAD=$CTL_FRAGILE_WORKLOAD

ctl_stack_up 3
ctl_policy reboot '{"name": "reboot", "match": {"rule": "agent_down", "state": "firing"},
  "steps": [{"action": "reboot"}], "verify_timeout": "5s", "cooldown": "0s", "hold": "0s"}'
ctl_start
sleep 1
[ "$(ctl_calls)" = 0 ] || fail "the controller called the federation layer on a healthy MCI"
ctl_stop

vm_break g-2
vm_kill9 g-2
engine_fires() {
    curl -sf "$ALARM_URL/api/v1/alarms" | "$CTL_PY" -c '
import json, sys
d = json.load(sys.stdin)
items = d["alarms"] if isinstance(d, dict) else d
sys.exit(not any(a.get("rule") == "agent_down" and a.get("state") == "firing"
                 and a.get("group", {}).get("vm") == "g-2" for a in items))'
}
wait_for 15 engine_fires || fail "the alarm engine does not list agent_down firing for g-2"
log "agent_down fires for g-2 while the controller is down"
[ "$(vm_starts g-2)" = 1 ] || fail "g-2 was started $(vm_starts g-2) times before the controller"

ctl_start
wait_for 20 ctl_audit_has 'r["event"] == "end"' || fail "no action ended after the start"
[ "$(ctl_calls reboot)" = 1 ] || fail "$(ctl_calls reboot) reboot calls at the start, want 1"
[ "$(vm_starts g-2)" = 2 ] || fail "g-2 was started $(vm_starts g-2) times, want 2 (create, reboot)"
[ "$(ctl_metric damselfly_control_events_total 'input="reconcile"')" -ge 1 ] ||
    fail "no event came from the start-up reconcile"
[ "$(ctl_audit_count "$AUDIT_RUN")" = 1 ] || fail "not one decision to run"
key=$(ctl_audit_field "$AUDIT_RUN" alarm | "$CTL_PY" -c 'import ast, sys; print(ast.literal_eval(sys.stdin.read())["key"])')
log "acted on $key: $(ctl_audit_field 'r["event"] == "end"' outcome)"
sleep 2
[ "$(ctl_calls reboot)" = 1 ] || fail "a second reboot followed"
engine_fires || fail "agent_down no longer fires for g-2: the restart would prove nothing"

seq_before=$(ctl_audit_seq)
ctl_stop
ctl_start
duplicate_seen() { [ "$(ctl_metric damselfly_control_duplicate_events_total)" -ge 1 ]; }
wait_for 10 duplicate_seen ||
    fail "the restarted controller did not see the occurrence again as a duplicate"
sleep 2
[ "$(ctl_calls)" = 0 ] || fail "the restarted controller made $(ctl_calls) federation calls"
[ "$(vm_starts g-2)" = 2 ] || fail "g-2 was started again after the restart"
[ "$(ctl_audit_count "r['seq'] > $seq_before and r['event'] == 'decision'")" = 0 ] ||
    fail "the restarted controller decided on the occurrence again"
engine_fires || fail "agent_down no longer fires for g-2"
ctl_audit_verify
ctl_stop
log "ok"
