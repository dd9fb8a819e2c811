#!/usr/bin/env bash
# Restarting the host process: every damselfly-fed invocation is a new host process, and it
# re-adopts the running VMs from the state directory (same pids, Running). A VM whose agent
# was killed reads Failed, never Running, and a reboot heals it; a reboot whose start fails
# exits 1 and leaves the VM Failed; a recorded pid whose start time no longer matches (a
# reused pid) is not adopted and its process is not touched.
# Bad input (specs, drivers, commands, options) gives clear errors and exit 2 or 1, never a
# crash.
. "$(dirname "$0")/lib.sh"

FED="$DSF_BUILD/federation/damselfly-fed"
[ -x "$FED" ] || fail "$FED is missing: build the tree first"
[ -x "$AGENT" ] || fail "$AGENT is missing: build the tree first"

start_mosquitto
STATE="$WORK/state"
fed() {
    "$FED" --state-dir "$STATE" --driver local --log-level warn \
        --set local.mqtt_url="$MQTT_URL" --set local.interval=1s \
        --set local.agent_binary="$AGENT" \
        --set local.install_script="$DSF_SRC/deploy/install-agent.sh" "$@"
}
status_json() { fed status --json ns1 m1; }
vmfield() {
    status_json | python3 -c '
import json, sys
m = json.load(sys.stdin)
vm, key = sys.argv[1], sys.argv[2]
for v in m["vm"]:
    if v["id"] == vm:
        d = v["driver"] if key.startswith("driver.") else v
        print(d.get(key.split(".")[-1], ""))
        sys.exit(0)
sys.exit(1)' "$1" "$2"
}
mci_status() { status_json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }
gone() { ! ps -o pid= -p "$1" >/dev/null 2>&1; }
# expect_fail CODE PATTERN COMMAND...: the command exits with CODE and says PATTERN.
expect_fail() {
    local code=$1 pattern=$2 rc=0
    shift 2
    "$@" >"$WORK/out" 2>&1 || rc=$?
    [ "$rc" -eq "$code" ] || fail "'$*' exited $rc, want $code: $(cat "$WORK/out")"
    grep -qF -- "$pattern" "$WORK/out" || fail "'$*' does not say '$pattern': $(cat "$WORK/out")"
}

cat >"$WORK/spec.json" <<'EOF'
{"vm": [{"name": "web", "subGroupSize": 2, "csp": "local", "region": "r1",
         "workload": ["sleep", "600"]}]}
EOF
log "create 2 VMs"
fed create-mci ns1 m1 --spec "$WORK/spec.json" >"$WORK/create.out" 2>&1 ||
    fail "create-mci failed: $(cat "$WORK/create.out")"
pid1=$(vmfield web-1 driver.pid)
wpid1=$(vmfield web-1 driver.wpid)
pid2=$(vmfield web-2 driver.pid)
start2=$(vmfield web-2 driver.start)
[ "$start2" = "$(awk '{print $22}' "/proc/$pid2/stat")" ] || fail "recorded start time of $pid2 is not field 22"

log "a new host process re-adopts them"
"$FED" --state-dir "$STATE" --set local.agent_binary="$AGENT" \
    --set local.install_script="$DSF_SRC/deploy/install-agent.sh" status ns1 m1 >"$WORK/st.out" 2>&1 ||
    fail "status failed: $(cat "$WORK/st.out")"
grep -q "re-adopted 2 running VMs" "$WORK/st.out" || fail "no re-adoption reported: $(cat "$WORK/st.out")"
[ "$(vmfield web-1 driver.pid)" = "$pid1" ] || fail "web-1's pid changed"
[ "$(vmfield web-2 driver.pid)" = "$pid2" ] || fail "web-2's pid changed"
[ "$(mci_status)" = "Running:2 (R:2/2)" ] || fail "MCI status '$(mci_status)'"
fed vm suspend ns1 m1 web-2 >"$WORK/out" 2>&1 || fail "suspend of an adopted VM failed: $(cat "$WORK/out")"
[ "$(mci_status)" = "Partial-Suspended:1 (R:1/2)" ] || fail "MCI status '$(mci_status)'"
fed vm resume ns1 m1 web-2 >"$WORK/out" 2>&1 || fail "resume of an adopted VM failed: $(cat "$WORK/out")"

log "kill web-1's agent: Failed, not Running"
kill -KILL "$pid1"
sleep 0.5
[ "$(vmfield web-1 status)" = Failed ] || fail "web-1 is $(vmfield web-1 status) after its agent was killed"
vmfield web-1 message | grep -q "the agent (pid $pid1) is gone" || fail "unclear message: $(vmfield web-1 message)"
[ "$(mci_status)" = "Partial-Failed:1 (R:1/2)" ] || fail "MCI status '$(mci_status)'"
expect_fail 1 "cannot suspend web-1: it is Failed (only reboot or terminate are allowed)" \
    fed vm suspend ns1 m1 web-1
log "reboot heals it"
fed vm reboot ns1 m1 web-1 >"$WORK/out" 2>&1 || fail "reboot of the Failed VM failed: $(cat "$WORK/out")"
[ "$(vmfield web-1 status)" = Running ] || fail "web-1 is $(vmfield web-1 status) after reboot"
[ "$(vmfield web-1 driver.pid)" != "$pid1" ] || fail "reboot kept the dead pid"
wait_for 10 gone "$wpid1" || fail "the old workload $wpid1 survived the reboot"

log "a reboot whose start fails: exit 1 and Failed, never Running"
bin="$STATE/local/vms/ns1/m1/web-1/usr/local/bin/damselfly-agent"
[ -x "$bin" ] || fail "no installed agent at $bin"
pid1b=$(vmfield web-1 driver.pid)
mv "$bin" "$bin.real"
printf '#!/bin/sh\necho "agent: cannot open config" >&2\nexit 3\n' >"$bin"
chmod +x "$bin"
expect_fail 1 "the agent (pid" fed vm reboot ns1 m1 web-1
grep -qF "exited during start" "$WORK/out" || fail "unclear reboot failure: $(cat "$WORK/out")"
grep -q "done" "$WORK/out" && fail "the failed reboot says done: $(cat "$WORK/out")"
[ "$(vmfield web-1 status)" = Failed ] || fail "web-1 is $(vmfield web-1 status) after a failed reboot"
[ "$(mci_status)" = "Partial-Failed:1 (R:1/2)" ] || fail "MCI status '$(mci_status)' after a failed reboot"
wait_for 10 gone "$pid1b" || fail "the agent $pid1b was not stopped by the reboot"
mv -f "$bin.real" "$bin"
fed vm reboot ns1 m1 web-1 >"$WORK/out" 2>&1 || fail "reboot after the repair failed: $(cat "$WORK/out")"
[ "$(vmfield web-1 status)" = Running ] || fail "web-1 is $(vmfield web-1 status) after the repair"

log "a reused pid is not adopted"
python3 - "$STATE/mci/ns1/m1.json" <<'PY'
import json, sys
p = sys.argv[1]
m = json.load(open(p))
for v in m["vm"]:
    if v["id"] == "web-2":
        v["driver"]["start"] += 12345
json.dump(m, open(p, "w"), indent=2)
PY
[ "$(vmfield web-2 status)" = Failed ] || fail "web-2 with a foreign start time is $(vmfield web-2 status)"
vmfield web-2 message | grep -q "not adopted" || fail "unclear message: $(vmfield web-2 message)"
state=$(awk '/^State/ {print $2}' "/proc/$pid2/status")
[ "$state" != T ] && ! gone "$pid2" || fail "the process $pid2 was touched (state $state)"
python3 - "$STATE/mci/ns1/m1.json" "$start2" <<'PY'
import json, sys
p = sys.argv[1]
m = json.load(open(p))
for v in m["vm"]:
    if v["id"] == "web-2":
        v["driver"]["start"] = int(sys.argv[2])
        v["status"] = "Running"
json.dump(m, open(p, "w"), indent=2)
PY
[ "$(vmfield web-2 status)" = Running ] || fail "web-2 is not re-adopted with its true start time"

log "bad input"
expect_fail 2 "unknown driver 'nope' (known: local, tumblebug, kubernetes)" \
    "$FED" --state-dir "$STATE" --driver nope status
expect_fail 2 "unknown command 'frobnicate'" fed frobnicate
expect_fail 2 "usage: damselfly-fed vm" fed vm suspend ns1
expect_fail 2 "unknown action 'explode'" fed vm explode ns1 m1 web-1
expect_fail 2 "N 'many' must be a positive integer" fed scale-out ns1 m1 web many
expect_fail 2 "unknown option '--bogus'" fed status --bogus
expect_fail 2 "migrate needs --region" fed migrate ns1 m1 web-1
expect_fail 2 "freezer 'sometimes'" fed --set local.freezer=sometimes status
expect_fail 2 "agent binary '/nonexistent/agent'" fed --set local.agent_binary=/nonexistent/agent status
echo '{"vm": [{"name": "x", "csp": "local"' >"$WORK/bad1.json"
expect_fail 2 "expected near end of file" fed create-mci ns1 m2 --spec "$WORK/bad1.json"
echo '{"vm": [{"name": "x", "csp": "local"}]}' >"$WORK/bad2.json"
expect_fail 2 "subgroup x: no region" fed create-mci ns1 m2 --spec "$WORK/bad2.json"
echo '{"vm": [{"name": "x", "csp": "local", "region": "r1", "subGroupSize": -1}]}' >"$WORK/bad3.json"
expect_fail 2 "outside 1..1000" fed create-mci ns1 m2 --spec "$WORK/bad3.json"
expect_fail 2 "--spec $WORK/none.json" fed create-mci ns1 m2 --spec "$WORK/none.json"
expect_fail 2 "namespace 'bad/ns'" fed create-mci bad/ns m2 --spec "$WORK/spec.json"
expect_fail 1 "no VM 'ghost' in MCI ns1/m1" fed vm suspend ns1 m1 ghost
expect_fail 1 "no MCI ns1/nope" fed vm suspend ns1 nope web-1
expect_fail 1 "driver local does not support cordon" fed node cordon worker-1
echo '{"vm": [{"name": "w", "csp": "local", "region": "r1", "workload": ["no-such-program-xyz"]}]}' >"$WORK/bad4.json"
expect_fail 1 "workload program 'no-such-program-xyz' not found" fed create-mci ns1 m2 --spec "$WORK/bad4.json"
fed mci delete ns1 m2 >"$WORK/out" 2>&1 || fail "deleting the failed MCI failed: $(cat "$WORK/out")"
"$FED" --help >"$WORK/help" || fail "--help failed"
for want in COMMANDS DRIVERS TRANSITIONS FILES create-mci migrate scale-in "vm status" "node drain" \
    local.mqtt_url tumblebug.url kubernetes.kubeconfig state.dir "EXIT STATUS" EXAMPLES; do
    grep -qF -- "$want" "$WORK/help" || fail "--help does not mention $want"
done

log "terminate all: nothing left"
pids=$(status_json | python3 -c '
import json, sys
for v in json.load(sys.stdin)["vm"]:
    for k in ("pid", "wpid"):
        if v["driver"].get(k):
            print(v["driver"][k])')
fed mci delete ns1 m1 >"$WORK/out" 2>&1 || fail "mci delete failed: $(cat "$WORK/out")"
for p in $pids; do
    wait_for 15 gone "$p" || fail "process $p left behind: $(ps -o pid,stat,args -p "$p")"
done
log "PASS"
