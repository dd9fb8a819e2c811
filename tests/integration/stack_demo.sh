#!/usr/bin/env bash
# The whole product as a user meets it: `damselfly up` (nothing written into the source tree:
# a rule PUT through the alarm API lands in the state directory), `status` healthy within
# 60 s with the alarms firing listed, `damselfly demo` heals the VM it broke (kill -9) and the
# storm breaker holds while most of the MCI is frozen, with the timeline printed and the
# audit agreeing; a second demo within the guards' window is refused with a message; after a
# crash of two parts (the balancer with its collectors left behind, the alarm engine) and a
# stale pid file, `down` leaves no process of the stack: no pid, no child, no VM.
. "$(dirname "$0")/lib.sh"

stack_env
STATE=$DAMSELFLY_STATE
# On failure too, nothing of the stack may outlive the test.
trap '"$LAUNCHER" down >/dev/null 2>&1 || true; cleanup' EXIT

"$LAUNCHER" demo --help >"$WORK/help.out" || fail "demo --help exited $?"
grep -q 'kill -9' "$WORK/help.out" && grep -qi 'breaker' "$WORK/help.out" ||
    fail "demo --help does not say what the demo does: $(cat "$WORK/help.out")"

touch "$WORK/before-up"
sleep 1
"$LAUNCHER" up >"$WORK/up.log" 2>&1 || fail "damselfly up: $(cat "$WORK/up.log")"
healthy() {
    "$LAUNCHER" status >"$WORK/status.out" 2>&1 && stack_healthy "$WORK/status.out" &&
        ! grep -q 'no answer' "$WORK/status.out" && grep -q '^alarms firing: [0-9]' "$WORK/status.out"
}
wait_for 60 healthy || fail "status not healthy 60 s after up: $(cat "$WORK/status.out")"
cat "$WORK/status.out"

changed=$(find "$DSF_SRC/deploy" -newer "$WORK/before-up")
[ -z "$changed" ] || fail "up wrote into the source tree: $changed"
[ "$(ls "$STATE/alarm.d"/*.json | wc -l)" = "$(ls "$DSF_SRC"/deploy/alarm.d/*.json | wc -l)" ] ||
    fail "the starter rules were not copied to $STATE/alarm.d"
auth=(-H "Authorization: Bearer $(cat "$STATE/alarm/http.token")")
curl -sf "${auth[@]}" -XPUT "http://$DAMSELFLY_ALARM_HTTP/api/v1/rules/disk_nearly_full" \
    -d '{"select": {"measurement": "disk", "field": "used_percent"}, "reduce": "last",
         "op": ">", "warn": {"threshold": 99}, "group_by": ["vm", "path"]}' >/dev/null ||
    fail "PUT of a rule refused"
[ -f "$STATE/alarm.d/disk_nearly_full.json" ] || fail "the PUT rule is not in $STATE/alarm.d"
[ ! -e "$DSF_SRC/deploy/alarm.d/disk_nearly_full.json" ] || fail "the PUT rule went into deploy/"

before=$(stack_agent_pid demo-1) || fail "no pid for demo-1"
log "damselfly demo"
t_demo=$(date +%s)
"$LAUNCHER" demo 2>&1 | tee "$WORK/demo.out"
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || fail "damselfly demo exited $rc"
log "the demo took $(($(date +%s) - t_demo)) s"
# The timeline, in the order things happen.
python3 - "$WORK/demo.out" <<'PY' || fail "the timeline lacks a step or has them out of order"
import re, sys
lines = open(sys.argv[1]).read().splitlines()
steps = [r"kill -9 of demo-1's agent", r"demo-1: alarm agent_down firing",
         r"demo-1: guard decision run", r"demo-1: action reboot begin",
         r"demo-1: action ended: healed", r"demo-1: reporting again",
         r"SIGSTOP of the agents of demo-2, demo-3(, demo-\d+)* \(\d+ of \d+ VMs\)",
         r"breaker default/demo OPENED",
         r"demo-[23]: guard decision blocked by guard breaker", r"SIGCONT",
         r"breaker default/demo CLOSED", r"demo done"]
at = 0
for s in steps:
    hit = [i for i, l in enumerate(lines) if i >= at and re.search(s, l)]
    if not hit:
        sys.exit("no line '%s' after line %d" % (s, at))
    at = hit[0]
PY
[ "$(stack_agent_pid demo-1)" != "$before" ] || fail "demo-1 was not rebooted: its agent is still pid $before"
# The audit, as a user would check it: one action, on demo-1, healed; the breaker opened
# and closed; nothing began on demo-2 or demo-3.
python3 - "$STATE/control/audit.jsonl" <<'PY' || fail "the audit does not match the timeline"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
ends = [r for r in recs if r["event"] == "end" and r.get("mci") == "demo"]
assert any(r["target"] == "demo-1" and r["outcome"] == "healed" for r in ends), ends
began = [r for r in recs if r["event"] == "step" and r.get("target") in ("demo-2", "demo-3")]
assert not began, began
brk = [r["open"] for r in recs if r["event"] == "breaker" and r["scope"] == "default/demo"]
assert brk[:2] == [True, False], brk
PY
out=$("$LAUNCHER" demo 2>&1) && fail "a second demo within the guards' window ran: $out"
grep -q 'guards' <<<"$out" || fail "a second demo was refused without saying why: $out"

# Crash two parts, leave a stale pid file, then `down`.
pids="$(cat "$STATE"/*.pid) $(python3 -c 'import json,sys; print(" ".join(str(c["pid"]) for c in json.load(open(sys.argv[1]))["children"]))' "$STATE/collectors/children.json")"
vm_pids=$(for p in /proc/[0-9]*; do
    grep -qz "^DSF_VM_DIR=$STATE/" "$p/environ" 2>/dev/null && echo "${p#/proc/}"
done) || true
[ "$(wc -w <<<"$vm_pids")" -ge 6 ] || fail "expected an agent and a workload per VM, found: $vm_pids"
kill -9 "$(cat "$STATE/balancer.pid")" "$(cat "$STATE/alarm.pid")"
# The alarm engine's pid file now names a pid that something else took since.
sleep infinity &
stale=$!
echo "$stale" >"$STATE/alarm.pid"
"$LAUNCHER" down >"$WORK/down.log" 2>&1 || fail "damselfly down: $(cat "$WORK/down.log")"
cat "$WORK/down.log"
kill -0 "$stale" 2>/dev/null || fail "down killed pid $stale, which is none of the stack's"
kill "$stale"
for pid in $pids $vm_pids; do
    kill -0 "$pid" 2>/dev/null && fail "pid $pid ($(tr '\0' ' ' </proc/$pid/cmdline)) runs after down"
done
left=$(for p in /proc/[0-9]*; do
    { tr '\0' '\n' <"$p/cmdline"; tr '\0' '\n' <"$p/environ" | grep '^DSF_VM_DIR='; } 2>/dev/null |
        grep -q "$STATE" &&
        [ "${p#/proc/}" != $$ ] && echo "${p#/proc/} $(tr '\0' ' ' <"$p/cmdline")"
done) || true
[ -z "$left" ] || fail "processes of the stack left after down: $left"
log "ok"
