#!/usr/bin/env bash
# A controller killed (kill -9) in the middle of a migrate: a manual migrate of g-1 to r2 in
# an MCI of 3 local VMs, the controller dies while the step runs. After a restart the step
# is reconciled, never run again: either finished (the replacement runs, g-1 is removed) or
# rolled back (the replacement is removed, g-1 untouched) - exactly one VM in g-1's place,
# none lost, none extra, no stray processes;
# the step's end is audited after the restart and the chain verifies. A second restart
# replays the finished action without acting: no new decision or step, no federation call.
# Two cases (control_crash_<case>), for the two ends:
#   creating  killed as soon as the step's begin is in the audit, before the replacement's
#             processes exist (it is not yet or just Creating in the model): rolled back;
#   started   the broker is not told of the replacement's login (the pid file the federation
#             sends SIGHUP to holds none), so the replacement runs but cannot report and the
#             migrate waits for it; the controller is killed once the replacement is Running,
#             the broker reloaded: at the restart the migrate is finished (g-1 removed).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"

CASE=${1:?usage: control_crash.sh creating|started}

ctl_light_up 3
ctl_start
g1_pid=$(vm_field g-1 pid)
[ "$CASE" = started ] && echo none >"$CTL_BROKER_PID_FILE"
ctl_api POST /api/v1/actions '{"action":"migrate","ns":"ns1","mci":"m1","vm":"g-1","region":"r2"}' >/dev/null
[ "$CTL_STATUS" = 202 ] || fail "POST /api/v1/actions answered $CTL_STATUS: $CTL_BODY"
begin='r["event"] == "step" and r["op"] == "migrate" and r["phase"] == "begin"'
ended='r["event"] == "step" and r["op"] == "migrate" and r["phase"] == "end"'
if [ "$CASE" = creating ]; then
    # At once (grep, not Python): before the replacement's processes are spawned.
    deadline=$((SECONDS + 10))
    until grep -q '"op":"migrate","phase":"begin"' "$CTL_AUDIT" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || fail "the migrate step did not begin"
        sleep 0.02
    done
    ctl_kill9
fi
new=$(ctl_audit_field "$begin" new_vm)
[ -n "$new" ] || fail "the migrate's begin names no new VM"
if [ "$CASE" = started ]; then
    wait_for 30 eval 'model_vms | grep -qx "$new Running r2"' || fail "$new did not start"
    agent_online "$new" && fail "$new reports although the broker does not know its login"
    ctl_audit_has "$ended" && fail "the migrate ended before the controller could be killed"
    ctl_kill9
fi
log "controller killed while $new was $(model_vms | awk -v v="$new" '$1 == v { print $2 }' | grep . || echo 'not in the model')"
seq_killed=$(ctl_audit_seq)
if [ "$CASE" = started ]; then
    echo "$MOSQUITTO_PID" >"$CTL_BROKER_PID_FILE"
    kill -HUP "$MOSQUITTO_PID"
fi
ctl_audit_has "$ended" && fail "the migrate's end was audited although the controller was killed"

ctl_start
wait_for 30 ctl_audit_has "r['seq'] > $seq_killed and $ended" ||
    fail "no end of the migrate step was audited after the restart"
wait_for 20 ctl_audit_has 'r["event"] == "end"' || fail "the action did not end after the restart"
ok=$(ctl_audit_field "$ended" ok)
log "after the restart: step ok=$ok, detail '$(ctl_audit_field "$ended" detail)$(
    ctl_audit_field "$ended" error)', outcome $(ctl_audit_field 'r["event"] == "end"' outcome)"
[ "$(ctl_calls)" = 0 ] || fail "the restarted controller made $(ctl_calls) federation calls"
[ "$(ctl_audit_count "$AUDIT_RUN")" = 1 ] || fail "more than one decision to run"
[ "$(ctl_audit_count "$begin")" = 1 ] || fail "the migrate step began again after the restart"

mapfile -t vms < <(model_vms | awk '{ print $1 }' | sort)
case $CASE/$ok in
    creating/False | started/True) ;;
    *) fail "case $CASE: the migrate's step ended with ok=$ok" ;;
esac
if [ "$ok" = True ]; then # finished
    want="g-2 g-3 $new"
    model_vms | grep -qx "$new Running r2" || fail "$new is not Running in r2"
    [ "$(vm_procs g-1)" = 0 ] || fail "processes of the replaced g-1 still run"
    wait_for 10 agent_online "$new" || fail "the agent of $new is not online"
else # rolled back
    want="g-1 g-2 g-3"
    [ "$(vm_field g-1 pid)" = "$g1_pid" ] || fail "g-1 was touched by the rolled-back migrate"
    [ "$(vm_procs "$new")" = 0 ] || fail "processes of the rolled-back $new still run"
fi
[ "${vms[*]}" = "$want" ] || fail "the MCI has VMs '${vms[*]}', want '$want'"
ctl_audit_verify

# A second restart: the action is finished; nothing is decided, begun or called again.
seq_before=$(ctl_audit_seq)
ctl_stop
ctl_start
sleep 3
[ "$(ctl_calls)" = 0 ] || fail "the second restart made $(ctl_calls) federation calls"
[ "$(ctl_audit_count "r['seq'] > $seq_before and r['event'] in ('decision', 'step', 'verify', 'end')")" = 0 ] ||
    fail "the second restart wrote decision, step, verify or end records"
mapfile -t vms2 < <(model_vms | awk '{ print $1 }' | sort)
[ "${vms2[*]}" = "$want" ] || fail "after the second restart the MCI has '${vms2[*]}'"
ctl_audit_verify
ctl_stop
log "ok"
