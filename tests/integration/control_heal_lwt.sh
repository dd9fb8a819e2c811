#!/usr/bin/env bash
# Healing a dead VM end to end: an MCI of 4 local VMs, the policy "reboot, then notify" on
# agent_down (the agent's Last Will). kill -9 of g-2's process group: the controller reboots
# it through the federation layer, once, and g-2's first new cpu point is taken within 3 s of
# the kill; the audit trail records the decision, the step that worked and the healed end,
# and verifies; the notify step reached the webhook.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"

ctl_stack_up 4
ctl_policy heal '{"name": "heal", "match": {"rule": "agent_down", "state": "firing"},
  "steps": [{"action": "reboot"}, {"action": "notify"}],
  "verify_timeout": "20s", "cooldown": "30s", "hold": "10m"}'
ctl_start
sleep 2
[ "$(ctl_calls)" = 0 ] || fail "the controller called the federation layer on a healthy MCI"

old_pid=$(vm_field g-2 pid)
vm_kill9 g-2
t0=$VM_SIGNAL_MS
log "killed g-2 (agent $old_pid)"
delay=$(first_point_after g-2 "$t0" 30) || fail "g-2 never reported again"
log "g-2's first new point taken $delay ms after the kill"
[ "$delay" -le 3000 ] || fail "g-2 reported again $delay ms after the kill, more than 3000"
new_pid=$(vm_field g-2 pid)
[ "$new_pid" != "$old_pid" ] || fail "g-2 still has agent $old_pid: it was not rebooted"
[ "$(vm_state g-2)" = Running ] || fail "g-2 is $(vm_state g-2) after the healing"

wait_for 25 ctl_audit_has "$AUDIT_HEALED" || fail "no healed end in the audit"
sleep 3 # a second, late action would show now
[ "$(ctl_calls reboot)" = 1 ] || fail "$(ctl_calls reboot) reboot calls, want exactly 1"
[ "$(ctl_audit_count "$AUDIT_RUN")" = 1 ] || fail "$(ctl_audit_count "$AUDIT_RUN") decisions to run, want 1"
ctl_audit_has "$AUDIT_STEP_OK" || fail "no step ended ok in the audit"
[ "$(ctl_audit_count "$AUDIT_HEALED")" = 1 ] || fail "more than one healed end"
ctl_audit_verify
wait_for 10 webhook_seen g-2 || fail "no webhook about g-2 arrived"
for vm in g-1 g-3 g-4; do
    [ "$(vm_state $vm)" = Running ] || fail "$vm is $(vm_state $vm): healing g-2 touched it"
done
ctl_stop
log "ok"
