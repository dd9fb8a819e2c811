#!/usr/bin/env bash
# Acceptance: burn CPU in the VMs -> scale_out by 1 up to max, the new VM reports; a further
# occurrence at max fails the step without a call; stop the burn -> after a while below the
# low mark, scale_in by 1, never below min (an occurrence at min fails without a call too).
#
# What the alarm sees. The local VMs share the host's CPU and their agents' cpu input reads
# the host-wide /proc/stat, so cpu usage_idle cannot tell one VM's burn from another's, nor
# from the other builds on the machine (the stack's cpu_avg_hot fires on a busy host by
# itself). The VMs' own CPU is still measured honestly, per VM, by each VM's agent: the
# user data (run like cloud-init's, before the agent starts) turns on the agent's procstat
# input for the pid file of the VM's workload, and the workload burns CPU itself - 500 ms
# busy, 500 ms asleep - while the file "burn" exists in its VM directory. The group rules
# (group_by [] = ns, mci) average procstat cpu_usage over the MCI's VMs:
#   burn_hot   avg > 6 % (reset 4 %) for 2 s     -> policy burn-scale-out (by 1, max 3)
#   burn_cold  avg < 2 % (reset 3 %) for 8 s     -> policy idle-scale-in (by 1, min 2)
# The marks are low because the host is shared: with a load of 6 on 2 cores a burner gets
# about a third of its busy half second (~15 %), while an idle workload stays under 1 %.
# A scale out is verified when burn_hot resolves (the test stops the burn once the new VM
# reports); a scale in by the subgroup having shrunk (an idle alarm does not end by removing
# a VM).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"

MIN=2
MAX=3
# The burner runs in the workload's own process (bash builtins only: no child takes the CPU
# where procstat, reading the pid file, would not see it).
CTL_WORKLOAD=$("$CTL_PY" -c 'import json, sys; print(json.dumps(["bash", "-c", sys.argv[1]]))' '
echo $$ >wl.pid
while :; do
    if [ -f burn ]; then
        t=$((${EPOCHREALTIME/./} + 500000))
        while [ "${EPOCHREALTIME/./}" -lt "$t" ]; do :; done
        sleep 0.5
    else
        sleep 0.5
    fi
done')
CTL_USER_DATA=$("$CTL_PY" -c 'import json, sys; print(json.dumps(sys.argv[1]))' '#!/bin/sh
exec python3 - "$DSF_VM_DIR" <<EOF
import json, os, sys
d = sys.argv[1]
p = os.path.join(d, "etc/damselfly/agent.json")
c = json.load(open(p))
c.setdefault("inputs", {})["procstat"] = {"enabled": True, "pid_files": [os.path.join(d, "wl.pid")]}
with open(p, "r+") as f:  # r+: the file keeps its owner and mode 0600
    f.truncate(0)
    json.dump(c, f)
EOF
')
mkdir -p "$WORK/rules"
burn_rule() { # NAME OP THRESHOLD RESET FOR
    cat >"$WORK/rules/$1.json" <<EOF
{"name": "$1", "select": {"measurement": "procstat", "field": "cpu_usage"},
 "group_by": [], "window": "3s", "reduce": "avg", "op": "$2",
 "crit": {"threshold": $3, "reset": $4}, "for": "$5",
 "annotations": {"summary": "{{mci}}: its VMs' own CPU at {{value}}% on average"}}
EOF
}
burn_rule burn_hot '>' 6 4 2s
burn_rule burn_cold '<' 2 3 8s

t0=$SECONDS
ctl_stack_up "$MIN"
log "the idle VMs: burn_cold fires"
wait_for 40 alarm_event_seen burn_cold firing || fail "burn_cold did not fire on idle VMs"

ctl_policy burn-scale-out '{"name": "burn-scale-out", "match": {"rule": "burn_hot"},
 "steps": [{"action": "scale_out", "by": 1, "max": '$MAX'}],
 "verify_timeout": "40s", "cooldown": "2s", "hold": "0s"}'
ctl_policy idle-scale-in '{"name": "idle-scale-in", "match": {"rule": "burn_cold"},
 "steps": [{"action": "scale_in", "by": 1, "min": '$MIN'}],
 "verify_timeout": "10s", "cooldown": "15s", "hold": "0s"}'
ctl_start

# The VM count as the federation's model has it, sampled all along.
(while :; do ctl_vm_count >>"$WORK/counts" 2>/dev/null; sleep 0.5; done) &
SAMPLER=$!
fed_count() {
    ctl_fed status --json "$CTL_NS" "$CTL_MCI" | "$CTL_PY" -c '
import json, sys
print(sum(1 for v in json.load(sys.stdin)["vm"] if v["status"] != "Terminated"))'
}
# step_end POLICY OK: step end records of POLICY's actions with ok OK (True/False).
step_end() { echo "r[\"event\"]==\"step\" and r[\"phase\"]==\"end\" and r[\"policy\"]==\"$1\" and r[\"ok\"] is $2"; }
burn() { for vm in "$@"; do touch "$(vm_dir "$vm")/burn"; done; }
unburn() { rm -f "$(vm_dir g-1)/burn" "$(vm_dir g-2)/burn" "$(vm_dir g-3)/burn"; }
expect() { # WHAT GOT WANT
    [ "$2" = "$3" ] || fail "$1: $2, expected $3"
}

log "at min already (the alarm read from the engine at start): the step fails, no call"
wait_for 15 ctl_audit_has "$(step_end idle-scale-in False) and 'its min' in r['error']" ||
    fail "the scale in at min did not fail: $(tail -3 "$CTL_AUDIT")"
expect "scale_in calls at min" "$(ctl_calls scale_in)" 0
expect "VMs" "$(fed_count)" "$MIN"

log "burn in g-1 and g-2: burn_hot fires, one VM more"
burn g-1 g-2
wait_for 40 ctl_audit_has "$(step_end burn-scale-out True)" || fail "no scale out ended well"
expect "scale_out calls" "$(ctl_calls scale_out)" 1
expect "the scale out's record" \
    "$(ctl_audit_count "$(step_end burn-scale-out True) and r['detail']=='added 1 VMs (from 2)'")" 1
expect "scale out decisions" "$(ctl_audit_count "$AUDIT_RUN and r['policy']=='burn-scale-out'")" 1
expect "VMs after the scale out" "$(fed_count)" "$MAX"
expect "g-3" "$(vm_state g-3)" Running
wait_for 30 influx_has_points g-3 || fail "the new VM g-3 does not report: no cpu point in InfluxDB"

log "the burn stops: burn_hot resolves, the scale out is verified"
unburn
wait_for 30 ctl_audit_has "$AUDIT_HEALED and r['policy']=='burn-scale-out'" ||
    fail "the scale out did not end healed: $(tail -3 "$CTL_AUDIT")"

log "burn again, in all three: a further occurrence at max fails the step without a call"
burn g-1 g-2 g-3
wait_for 40 ctl_audit_has "$(step_end burn-scale-out False) and 'its max' in r['error']" ||
    fail "the occurrence at max did not fail its step: $(tail -3 "$CTL_AUDIT")"
expect "scale_out calls at max" "$(ctl_calls scale_out)" 1
expect "VMs at max" "$(fed_count)" "$MAX"
expect "steps begun at max" "$(ctl_audit_count 'r["event"]=="step" and r["phase"]=="begin" and r["op"]=="scale_out"')" 1

log "the burn stops: after 8 s below 2 % burn_cold fires, one VM less"
unburn
wait_for 40 ctl_audit_has "$(step_end idle-scale-in True)" || fail "no scale in ended well"
expect "scale_in calls" "$(ctl_calls scale_in)" 1
expect "the scale in's record" \
    "$(ctl_audit_count "$(step_end idle-scale-in True) and r['detail']=='removed 1 VMs (from 3)'")" 1
wait_for 10 ctl_audit_has "$AUDIT_HEALED and r['policy']=='idle-scale-in'" || fail "the scale in did not end healed"
expect "VMs after the scale in" "$(fed_count)" "$MIN"
vm_field g-3 status >/dev/null 2>&1 && [ "$(vm_state g-3)" != Terminated ] &&
    fail "the scale in removed another VM than the new g-3"

kill "$SAMPLER"
wait "$SAMPLER" 2>/dev/null || true
[ -s "$WORK/counts" ] || fail "no VM count was sampled"
out=$(sort -un "$WORK/counts" | tr '\n' ' ')
"$CTL_PY" - "$WORK/counts" "$MIN" "$MAX" <<'PY' || fail "the VM count left [$MIN, $MAX]: $out"
import sys
n = [int(l) for l in open(sys.argv[1]) if l.strip()]
sys.exit(not all(int(sys.argv[2]) <= x <= int(sys.argv[3]) for x in n))
PY
expect "VM counts seen" "$out" "2 3 "
# For the log: how far the alarms' values were from their marks on this host today.
"$CTL_PY" - "$WORK/bus.log" <<'PY'
import json
for line in open(__import__("sys").argv[1], errors="replace"):
    t, topic, payload = (line.rstrip("\n").split(" ", 2) + ["", ""])[:3]
    if topic.rsplit("/", 1)[-1] in ("burn_hot", "burn_cold"):
        e = json.loads(payload)
        if e["state"] in ("firing", "resolved"):
            print("%s %s %s at %.1f %%" % (t.split(".")[0], e["rule"], e["state"], e["value"]))
PY
ctl_audit_verify
ctl_stop
log "ok in $((SECONDS - t0)) s (stack ${CTL_STACK_SECONDS} s)"
