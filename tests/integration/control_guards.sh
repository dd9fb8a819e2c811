#!/usr/bin/env bash
# The guards between a decision and an action, one case per ctest (control_guard_<case>),
# each counting the calls the local driver really made (a VM's agent pid changes only when it
# was rebooted) beside the controller's own count:
#   cooldown  a second occurrence on the same VM within the policy's cooldown is blocked
#   fraction  two VMs of an MCI of 4 at once: one acted on, the other blocked (34 %, at least 1)
#   rate      guards.rate_per_hour=2: the third action within the hour is blocked
#   dry_run   decided and audited, no call
#   approval  nothing until POST .../approve, then one call
#   pause     POST /api/v1/pause: blocked; after resume the next occurrence acts
# Alarm events are published as the alarm engine publishes them (principal alarm.a1, the
# contract's JSON) on a real broker with the trust model; the VMs are real local VMs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"

CASE=${1:?usage: control_guards.sh cooldown|fraction|rate|dry_run|approval|pause}

ctl_light_up 4
POLICY='"match": {"rule": "agent_down", "state": "firing"}, "steps": [{"action": "reboot"}],
 "verify_timeout": "20s", "hold": "0s"'
case $CASE in
    cooldown) ctl_policy p "{\"name\": \"p\", $POLICY, \"cooldown\": \"1h\"}" ;;
    dry_run) ctl_policy p "{\"name\": \"p\", $POLICY, \"cooldown\": \"0s\", \"dry_run\": true}" ;;
    approval) ctl_policy p "{\"name\": \"p\", $POLICY, \"cooldown\": \"0s\", \"approval\": true}" ;;
    *) ctl_policy p "{\"name\": \"p\", $POLICY, \"cooldown\": \"0s\"}" ;;
esac
extra=()
[ "$CASE" = rate ] && extra=(--set guards.rate_per_hour=2 --set guards.mci_fraction=1
    --set guards.max_concurrent_per_mci=10)
ctl_start "${extra[@]}"

declare -A PID0
for vm in "${CTL_VMS[@]}"; do PID0[$vm]=$(vm_field "$vm" pid); done
rebooted() { [ "$(vm_field "$1" pid)" != "${PID0[$1]}" ]; }
reboots() {
    local n=0 vm
    for vm in "${CTL_VMS[@]}"; do rebooted "$vm" && n=$((n + 1)); done
    echo "$n"
}
blocked_by() { ctl_audit_count "r[\"event\"]==\"decision\" and r.get(\"guard\")==\"$1\""; }
expect_calls() { # N WHY
    local c
    c=$(ctl_calls reboot)
    [ "$c" = "$1" ] || fail "$2: the controller counts $c reboots, expected $1"
    [ "$(reboots)" = "$1" ] || fail "$2: $(reboots) VMs were rebooted, expected $1"
}
settle() { sleep 2; }

case $CASE in
    cooldown)
        fire g-1 1
        wait_for 30 rebooted g-1 || fail "g-1 was not rebooted"
        resolve g-1 1
        wait_for 30 ctl_audit_has 'r["event"]=="end" and r["outcome"]=="healed"' ||
            fail "the first action did not end healed"
        PID0[g-1]=$(vm_field g-1 pid)
        fire g-1 2
        wait_for 10 ctl_audit_has 'r["event"]=="decision" and r.get("guard")=="cooldown"' ||
            fail "the second occurrence was not blocked by the cooldown"
        settle
        [ "$(ctl_calls reboot)" = 1 ] || fail "a second reboot was called within the cooldown"
        rebooted g-1 && fail "g-1 was rebooted again within the cooldown"
        ;;
    fraction)
        fire g-1 1
        fire g-2 1
        wait_for 10 ctl_audit_has 'r["event"]=="decision" and r.get("guard")=="fraction"' ||
            fail "no decision was blocked by the fraction guard"
        settle
        expect_calls 1 "2 of 4 VMs at once"
        ;;
    rate)
        fire g-1 1
        fire g-2 1
        fire g-3 1
        wait_for 10 ctl_audit_has 'r["event"]=="decision" and r.get("guard")=="rate"' ||
            fail "no decision was blocked by the rate guard"
        settle
        expect_calls 2 "rate 2 per hour"
        ;;
    dry_run)
        fire g-1 1
        wait_for 10 ctl_audit_has 'r["event"]=="decision" and r["verdict"]=="dry_run"' ||
            fail "no dry-run decision was audited"
        ctl_audit_has 'r["event"]=="end" and r["outcome"]=="dry_run"' || fail "no dry-run end"
        settle
        expect_calls 0 "dry run"
        ;;
    approval)
        fire g-1 1
        wait_for 10 ctl_audit_has 'r["event"]=="decision" and r["verdict"]=="approval"' ||
            fail "no decision waits for approval"
        sleep 3
        expect_calls 0 "before approval"
        id=$(ctl_api GET "/api/v1/actions?phase=approval" | "$CTL_PY" -c \
            'import json,sys; print(json.load(sys.stdin)["actions"][0]["id"])') ||
            fail "GET /api/v1/actions lists no action waiting for approval"
        ctl_api POST "/api/v1/actions/$id/approve" >/dev/null
        [ "$CTL_STATUS" = 200 ] || fail "approve answered $CTL_STATUS"
        wait_for 30 rebooted g-1 || fail "g-1 was not rebooted after approval"
        expect_calls 1 "after approval"
        ctl_audit_has 'r["event"]=="operator" and r["op"]=="approve"' || fail "approval not audited"
        ;;
    pause)
        ctl_api POST /api/v1/pause >/dev/null
        [ "$CTL_STATUS" = 200 ] || fail "pause answered $CTL_STATUS"
        fire g-1 1
        wait_for 10 ctl_audit_has 'r["event"]=="decision" and r.get("guard")=="paused"' ||
            fail "the decision was not blocked while paused"
        settle
        expect_calls 0 "paused"
        ctl_api POST /api/v1/resume >/dev/null
        [ "$CTL_STATUS" = 200 ] || fail "resume answered $CTL_STATUS"
        fire g-1 2
        wait_for 30 rebooted g-1 || fail "g-1 was not rebooted after resume"
        expect_calls 1 "after resume"
        ;;
    *) fail "unknown case '$CASE'" ;;
esac
ctl_audit_verify
log "PASS ($CASE)"
