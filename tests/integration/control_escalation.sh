#!/usr/bin/env bash
# Escalation and hold, with the real alarm engine's agent_down: an MCI of 4 local VMs whose
# workload kills its VM right after every start once the VM's directory holds `break`
# (CTL_FRAGILE_WORKLOAD), and also in region r9. g-1 and g-2 are broken and killed at once;
# each has a policy of its own (labels vm):
#   heal-g1  reboot, then migrate to r2: the reboot fails (or does not verify), the migrate's
#            replacement runs in r2 and reports, g-1 is removed (model and processes): healed;
#   heal-g2  reboot, then migrate to r9, then notify: every step fails (the migrate rolls its
#            replacement back), the chain ends exhausted with a hold and a notification; a new
#            occurrence on g-2 within the hold is blocked by it, and nothing more is called.
# Counted on the driver too: each start of a VM leaves a line in its directory.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"
CTL_WORKLOAD=$CTL_FRAGILE_WORKLOAD

ctl_stack_up 4
policy() { # NAME VM REGION [EXTRA STEP]
    ctl_policy "$1" "{\"name\": \"$1\",
      \"match\": {\"rule\": \"agent_down\", \"state\": \"firing\", \"labels\": {\"vm\": \"$2\"}},
      \"steps\": [{\"action\": \"reboot\"}, {\"action\": \"migrate\", \"region\": \"$3\"}${4:-}],
      \"verify_timeout\": \"8s\", \"cooldown\": \"1h\", \"hold\": \"10m\"}"
}
policy heal-g1 g-1 r2
policy heal-g2 g-2 "$CTL_BAD_REGION" ', {"action": "notify"}'
ctl_start --set guards.mci_fraction=1
sleep 1
[ "$(ctl_calls)" = 0 ] || fail "the controller called the federation layer on a healthy MCI"
for vm in g-1 g-2; do
    [ "$(vm_starts $vm)" = 1 ] || fail "$vm was started $(vm_starts $vm) times before the test"
done

vm_break g-1
vm_break g-2
vm_kill9 g-1
vm_kill9 g-2
t0=$VM_SIGNAL_MS
log "g-1 and g-2 broken and killed"

of() { echo "r.get(\"policy\") == \"$1\" and ($2)"; }
wait_for 60 ctl_audit_has "$(of heal-g1 'r["event"] == "end"')" || fail "heal-g1 did not end"
wait_for 30 ctl_audit_has "$(of heal-g2 'r["event"] == "end"')" || fail "heal-g2 did not end"
log "both chains ended after $(($(now_ms) - t0)) ms"

# heal-g1: reboot failed (its call or its verification), migrate ok, healed.
[ "$(ctl_audit_count "$(of heal-g1 "$AUDIT_RUN")")" = 1 ] || fail "heal-g1: not one decision to run"
ctl_audit_has "$(of heal-g1 '((r["event"] == "step" and r["op"] == "reboot" and r["phase"] == "end"
    and r["ok"] is False) or (r["event"] == "verify" and r["step"] == 0 and r["ok"] is False))')" ||
    fail "heal-g1: no failed reboot or failed verification of it in the audit"
ctl_audit_has "$(of heal-g1 'r["event"] == "step" and r["op"] == "migrate" and r["phase"] == "end"
    and r["ok"] is True')" || fail "heal-g1: no migrate ended ok"
ctl_audit_has "$(of heal-g1 "$AUDIT_HEALED")" || fail "heal-g1 did not end healed: $(
    ctl_audit_field "$(of heal-g1 'r["event"] == "end"')" error)"
new=$(ctl_audit_field "$(of heal-g1 'r["event"] == "step" and r["op"] == "migrate"
    and r["phase"] == "begin"')" new_vm)
[ -n "$new" ] || fail "heal-g1: the migrate's begin names no new VM"
log "g-1 replaced by $new"
model_vms | grep -qx "$new Running r2" || fail "$new is not Running in r2: $(model_vms | tr '\n' ';')"
! model_has g-1 || fail "g-1 is still in the model after its migrate"
[ "$(vm_procs g-1)" = 0 ] || fail "$(vm_procs g-1) processes of g-1 still run"
first_point_after "$new" "$t0" 20 >/dev/null || fail "$new never reported a cpu point"
wait_for 10 agent_online "$new" || fail "the agent of $new is not online"

# heal-g2: reboot failed, migrate to r9 failed and rolled back, notified, exhausted, held.
ctl_audit_has "$(of heal-g2 'r["event"] == "step" and r["op"] == "migrate" and r["phase"] == "end"
    and r["ok"] is False')" || fail "heal-g2: the migrate to $CTL_BAD_REGION did not fail"
ctl_audit_has "$(of heal-g2 'r["event"] == "step" and r["op"] == "notify"')" ||
    fail "heal-g2: the notify step did not run"
hold=$(ctl_audit_field "$(of heal-g2 'r["event"] == "end" and r["outcome"] == "exhausted"')" \
    hold_until_ms)
[ -n "$hold" ] || fail "heal-g2 did not end exhausted with hold_until_ms"
[ "$hold" -gt $(($(now_ms) + 500000)) ] || fail "heal-g2's hold ends at $hold: not the policy's 10m"
g2new=$(ctl_audit_field "$(of heal-g2 'r["event"] == "step" and r["op"] == "migrate"
    and r["phase"] == "begin"')" new_vm)
[ -n "$g2new" ] && [ "$g2new" != "$new" ] ||
    fail "the two migrates named replacements '$new' and '$g2new'"
! model_has "$g2new" || fail "the failed replacement $g2new is still in the model"
[ "$(vm_procs "$g2new")" = 0 ] || fail "processes of the rolled-back $g2new still run"
model_has g-2 || fail "g-2 left the model although its migrate failed"
wait_for 10 webhook_seen 'exhausted' || fail "no notification of the exhausted chain"
webhook_seen 'g-2' || fail "the notification does not name g-2"

# Each target: one reboot and one migrate, as the driver saw it (a start per create/reboot).
[ "$(ctl_calls reboot)" = 2 ] || fail "$(ctl_calls reboot) reboot calls, want 2"
[ "$(ctl_calls migrate)" = 2 ] || fail "$(ctl_calls migrate) migrate calls, want 2"
[ "$(vm_starts g-2)" = 2 ] || fail "g-2 was started $(vm_starts g-2) times, want 2 (create, reboot)"
[ "$(model_vms | wc -l)" = 4 ] || fail "the MCI has $(model_vms | wc -l) VMs, not 4: $(model_vms | tr '\n' ';')"

# Within the hold: a new occurrence on g-2 is blocked, nothing is called.
calls=$(ctl_calls)
fire g-2 99
wait_for 10 ctl_audit_has "$(of heal-g2 'r["event"] == "decision" and r.get("guard") == "hold"')" ||
    fail "the new occurrence on g-2 was not blocked by the hold"
sleep 3
[ "$(ctl_calls)" = "$calls" ] || fail "calls went from $calls to $(ctl_calls) during the hold"
[ "$(vm_starts g-2)" = 2 ] || fail "g-2 was started again during its hold"
[ "$(ctl_audit_count "$(of heal-g2 "$AUDIT_RUN")")" = 1 ] || fail "heal-g2 ran more than once"
for vm in g-3 g-4; do
    [ "$(vm_state $vm)" = Running ] || fail "$vm is $(vm_state $vm): healing touched it"
done
ctl_audit_verify
ctl_stop
log "ok"
