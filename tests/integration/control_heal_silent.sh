#!/usr/bin/env bash
# Healing a VM that went silent without dying: SIGSTOP of g-2's process group leaves its
# connection open (no Last Will for 1.5 x keepalive), so only the deadman sees it (nodata
# after 2 x interval). The policy on that nodata alarm reboots g-2 and g-2 reports again
# within 2 x interval + 3 s of the stop: one reboot call, a healed end in a verified audit
# trail, a webhook.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"

ctl_stack_up 4
ctl_policy silent '{"name": "silent", "match": {"rule": "'"$CTL_NODATA_RULE"'", "state": "nodata"},
  "steps": [{"action": "reboot"}, {"action": "notify"}],
  "verify_timeout": "20s", "cooldown": "30s", "hold": "10m"}'
ctl_start
sleep 2
[ "$(ctl_calls)" = 0 ] || fail "the controller called the federation layer on a healthy MCI"

old_pid=$(vm_agent_pid g-2)
vm_stop g-2
t0=$VM_SIGNAL_MS
log "stopped g-2 (agent $old_pid)"
limit=$((2 * CTL_INTERVAL_MS + 3000))
# The stopped agent, thawed by the reboot to take its SIGTERM, may send a last sample: what
# counts is the first one of the agent the reboot started.
rebooted() { # a pid, and not the old one (run.json is rewritten as the VM restarts)
    local p
    p=$(vm_agent_pid g-2 2>/dev/null) && [ -n "$p" ] && [ "$p" != "$old_pid" ]
}
wait_for 30 rebooted || fail "g-2 still has agent $old_pid: it was not rebooted"
new_pid=$(vm_agent_pid g-2)
t_new=$(proc_start_ms "$new_pid") || fail "cannot read the start time of agent $new_pid"
after=$(first_point_after g-2 "$t_new" 30) || fail "g-2 never reported again"
delay=$((t_new + after - t0))
log "g-2's first new point (agent $new_pid) taken $delay ms after SIGSTOP (limit $limit ms)"
[ "$delay" -le "$limit" ] || fail "g-2 reported again $delay ms after SIGSTOP, more than $limit"
# The deadman saw it first: an agent_down of g-2 may follow (the reboot stops the old agent,
# which says offline), but one before the nodata would mean its Last Will came first.
t_nodata=$(alarm_event_first_ms "$CTL_NODATA_RULE" nodata g-2 "$t0")
[ -n "$t_nodata" ] || fail "no $CTL_NODATA_RULE nodata event for g-2"
t_down=$(alarm_event_first_ms "$CTL_DOWN_RULE" firing g-2 "$t0")
[ -z "$t_down" ] || [ "$t_down" -gt "$t_nodata" ] ||
    fail "g-2's Last Will came before the nodata: the test no longer covers a silent VM"
[ "$(vm_state g-2)" = Running ] || fail "g-2 is $(vm_state g-2) after the healing"

wait_for 25 ctl_audit_has "$AUDIT_HEALED" || fail "no healed end in the audit"
sleep 3
[ "$(ctl_calls reboot)" = 1 ] || fail "$(ctl_calls reboot) reboot calls, want exactly 1"
[ "$(ctl_audit_count "$AUDIT_RUN")" = 1 ] || fail "$(ctl_audit_count "$AUDIT_RUN") decisions to run, want 1"
ctl_audit_has "$AUDIT_STEP_OK" || fail "no step ended ok in the audit"
ctl_audit_verify
wait_for 10 webhook_seen g-2 || fail "no webhook about g-2 arrived"
ctl_stop
log "ok"
