#!/usr/bin/env bash
# The local driver where no cgroup freezer is used (local.freezer=signal): suspend stops the
# VM's process group (agent and workload in state T), it stops reporting, resume continues
# it, and terminate (SIGTERM to stopped processes, then SIGKILL) leaves nothing behind.
. "$(dirname "$0")/lib.sh"

FED="$DSF_BUILD/federation/damselfly-fed"
[ -x "$FED" ] || fail "$FED is missing: build the tree first"
[ -x "$AGENT" ] || fail "$AGENT is missing: build the tree first"

start_mosquitto
STATE="$WORK/state"
fed() {
    "$FED" --state-dir "$STATE" --driver local --log-level warn --set local.freezer=signal \
        --set local.mqtt_url="$MQTT_URL" --set local.interval=1s \
        --set local.agent_binary="$AGENT" \
        --set local.install_script="$DSF_SRC/deploy/install-agent.sh" "$@"
}
field() {
    fed status --json ns1 m1 | python3 -c '
import json, sys
m = json.load(sys.stdin)
if sys.argv[1] == "mci":
    print(m["status"])
else:
    print(m["vm"][0]["driver"].get(sys.argv[1], m["vm"][0].get(sys.argv[1], "")))' "$1"
}
state_of() { awk '/^State/ {print $2}' "/proc/$1/status" 2>/dev/null; }
gone() { ! ps -o pid= -p "$1" >/dev/null 2>&1; }
bg sub mosquitto_sub -p "$MQTT_PORT" -V 5 -t 'dsf/m/#' -F '%t'
msgs() { grep -c "/ns1/m1/solo-1$" "$WORK/sub.log" || true; }
more_than() { [ "$(msgs)" -gt "$1" ]; }

echo '{"vm": [{"name": "solo", "csp": "local", "region": "r1", "workload": ["sleep", "600"]}]}' >"$WORK/spec.json"
fed create-mci ns1 m1 --spec "$WORK/spec.json" >"$WORK/out" 2>&1 || fail "create-mci failed: $(cat "$WORK/out")"
pid=$(field pid)
wpid=$(field wpid)
[ -z "$(field cgroup)" ] || fail "freezer=signal still made a cgroup"
wait_for 15 more_than 0 || fail "solo-1 does not report"

log "suspend: SIGSTOP to the process group"
fed vm suspend ns1 m1 solo-1 >"$WORK/out" 2>&1 || fail "suspend failed: $(cat "$WORK/out")"
[ "$(state_of "$pid")" = T ] || fail "agent $pid is in state $(state_of "$pid"), not T"
[ "$(state_of "$wpid")" = T ] || fail "workload $wpid is in state $(state_of "$wpid"), not T"
[ "$(field mci)" = "Suspended:1 (R:0/1)" ] || fail "MCI status '$(field mci)'"
sleep 1
n=$(msgs)
sleep 3
[ "$(msgs)" = "$n" ] || fail "the stopped agent kept reporting"

log "resume: SIGCONT"
fed vm resume ns1 m1 solo-1 >"$WORK/out" 2>&1 || fail "resume failed: $(cat "$WORK/out")"
[ "$(state_of "$pid")" != T ] || fail "agent $pid still stopped"
[ "$(state_of "$wpid")" != T ] || fail "workload $wpid still stopped"
wait_for 15 more_than "$n" || fail "solo-1 does not report after resume"

log "terminate while suspended"
fed vm suspend ns1 m1 solo-1 >"$WORK/out" 2>&1 || fail "suspend failed: $(cat "$WORK/out")"
fed vm terminate ns1 m1 solo-1 >"$WORK/out" 2>&1 || fail "terminate failed: $(cat "$WORK/out")"
wait_for 15 gone "$pid" || fail "agent $pid left behind"
wait_for 15 gone "$wpid" || fail "workload $wpid left behind"
[ "$(field mci)" = "Terminated:1 (R:0/1)" ] || fail "MCI status '$(field mci)'"
log "PASS"
