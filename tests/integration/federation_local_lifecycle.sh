#!/usr/bin/env bash
# The local driver end to end with a real mosquitto and the real agent, driven through
# damselfly-fed: an MCI of 3 VMs in two regions runs and reports; a suspended VM is frozen
# (cgroup.freeze, or state T under SIGSTOP), stops reporting and the MCI reads
# Partial-Suspended; it reports again after resume; reboot gives new processes; migrate to the
# other region has the new VM reporting before the old one goes; scale out 2 and in 2;
# terminate leaves no process behind; a Terminated VM refuses to be suspended.
. "$(dirname "$0")/lib.sh"

FED="$DSF_BUILD/federation/damselfly-fed"
[ -x "$FED" ] || fail "$FED is missing: build the tree first"
[ -x "$AGENT" ] || fail "$AGENT is missing: build the tree first"
command -v mosquitto_sub >/dev/null || fail "mosquitto_sub is needed (apt-get install mosquitto-clients)"

start_mosquitto
STATE="$WORK/state"
fed() {
    "$FED" --state-dir "$STATE" --driver local --log-level warn \
        --set local.mqtt_url="$MQTT_URL" --set local.interval=1s \
        --set local.agent_binary="$AGENT" \
        --set local.install_script="$DSF_SRC/deploy/install-agent.sh" "$@"
}

# Every metrics batch and status change, with the time it arrived:
# unix-time|topic|retained|properties|hex payload.
bg sub mosquitto_sub -p "$MQTT_PORT" -V 5 -t 'dsf/m/#' -t 'dsf/a/+/+/+/status' \
    -F '%U|%t|%r|%P|%x'
sleep 0.3

# status_json: the MCI as the store holds it after a refresh from the processes.
status_json() { fed status --json ns1 m1; }
# jq-like access to the status JSON: vmfield VM KEY (KEY in the VM object, or driver.KEY).
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

# count_msgs VM SINCE [UNTIL]: metrics messages of VM that arrived in the window.
count_msgs() {
    python3 - "$WORK/sub.log" "$1" "$2" "${3:-9e18}" <<'PY'
import sys
log, vm, since, until = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
n = 0
for line in open(log, errors="replace"):
    p = line.rstrip("\n").split("|")
    if len(p) >= 5 and p[1].startswith("dsf/m/") and p[1].endswith("/ns1/m1/" + vm):
        if since < float(p[0]) <= until:
            n += 1
print(n)
PY
}
now() { python3 -c 'import time; print("%.3f" % time.time())'; }
reporting() { [ "$(count_msgs "$1" "$2")" -ge "${3:-1}" ]; }
gone() { ! ps -o pid= -p "$1" >/dev/null 2>&1; }
join() {
    local IFS=,
    echo "$*"
}
all_gone() {
    local p
    for p in "$@"; do gone "$p" || return 1; done
}

cat >"$WORK/spec.json" <<'EOF'
{"name": "m1",
 "vm": [{"name": "web", "subGroupSize": "2", "commonSpec": "local+r1+small",
         "label": {"tier": "web"}, "workload": ["sleep", "600"]},
        {"name": "api", "subGroupSize": 1, "csp": "local", "region": "r2"}]}
EOF

log "create an MCI of 3 VMs in regions r1 and r2"
fed create-mci ns1 m1 --spec "$WORK/spec.json" >"$WORK/create.out" 2>&1 ||
    fail "create-mci failed: $(cat "$WORK/create.out")"
[ "$(mci_status)" = "Running:3 (R:3/3)" ] || fail "MCI status '$(mci_status)', want Running:3 (R:3/3)"
[ "$(vmfield web-1 spec | grep -c "'region': 'r1'")" = 1 ] || fail "web-1 not in r1"
[ "$(vmfield api-1 spec | grep -c "'region': 'r2'")" = 1 ] || fail "api-1 not in r2"
t0=$(python3 -c 'import time; print(time.time() - 30)')
ALL_PIDS=()
for vm in web-1 web-2 api-1; do
    pid=$(vmfield "$vm" driver.pid)
    [ -n "$pid" ] && [ "$pid" -gt 0 ] || fail "$vm has no agent pid"
    ps -o args= -p "$pid" | grep -q damselfly-agent || fail "$vm: pid $pid is not a damselfly-agent"
    ALL_PIDS+=("$pid")
    wpid=$(vmfield "$vm" driver.wpid)
    [ "$wpid" -gt 0 ] && ALL_PIDS+=("$wpid")
    wait_for 20 reporting "$vm" "$t0" 2 || fail "$vm does not report on dsf/m/#"
done
for vm in web-1 web-2 api-1; do
    st=$(mosquitto_sub -p "$MQTT_PORT" -V 5 -t "dsf/a/ns1/m1/$vm/status" -C 1 -W 5 -F '%r|%p' 2>&1) ||
        fail "no retained status of $vm"
    case $st in 1\|*online*) ;; *) fail "retained status of $vm is '$st', not online" ;; esac
done
# The identity tags come from install-agent.sh's config: csp and region of the subgroup.
python3 - "$WORK/sub.log" <<'PY' || fail "api-1's metrics do not carry csp=local,region=r2"
import sys
for line in open(sys.argv[1], errors="replace"):
    p = line.rstrip("\n").split("|")
    if len(p) >= 5 and p[1].endswith("/ns1/m1/api-1") and p[1].startswith("dsf/m/"):
        body = bytes.fromhex(p[4]).decode(errors="replace")
        if "csp=local" in body and "region=r2" in body:
            sys.exit(0)
sys.exit(1)
PY
log "all Running and reporting: $(mci_status)"

log "suspend web-2"
pid2=$(vmfield web-2 driver.pid)
fed vm suspend ns1 m1 web-2 >"$WORK/op.out" 2>&1 || fail "suspend failed: $(cat "$WORK/op.out")"
cg=$(vmfield web-2 driver.cgroup)
if [ -n "$cg" ]; then
    grep -qx "frozen 1" "$cg/cgroup.events" || fail "web-2's cgroup $cg is not frozen"
    [ "$(cat "$cg/cgroup.freeze")" = 1 ] || fail "cgroup.freeze of web-2 is not 1"
    grep -qx "$pid2" "$cg/cgroup.procs" || fail "agent pid $pid2 is not in $cg"
    log "web-2 frozen: $cg/cgroup.events says frozen 1 (agent State: $(awk '/^State/ {print $2}' /proc/$pid2/status))"
else
    grep -q "^State:.*T" "/proc/$pid2/status" || fail "agent $pid2 of web-2 is not stopped"
    log "web-2 stopped: $(grep ^State "/proc/$pid2/status")"
fi
[ "$(vmfield web-2 status)" = Suspended ] || fail "web-2 is $(vmfield web-2 status), not Suspended"
[ "$(mci_status)" = "Partial-Suspended:1 (R:2/3)" ] ||
    fail "MCI status '$(mci_status)', want Partial-Suspended:1 (R:2/3)"
# Whatever was in flight arrives within a moment; after that, nothing from web-2.
t1=$(now)
sleep 4
t1b=$(python3 -c "print($t1 + 1)")
n_sus=$(count_msgs web-2 "$t1b")
n_run=$(count_msgs web-1 "$t1b")
[ "$n_sus" -eq 0 ] || fail "suspended web-2 still published $n_sus messages"
[ "$n_run" -ge 2 ] || fail "web-1 published only $n_run messages meanwhile"
log "while suspended: web-2 sent $n_sus messages, web-1 sent $n_run"

log "resume web-2"
fed vm resume ns1 m1 web-2 >"$WORK/op.out" 2>&1 || fail "resume failed: $(cat "$WORK/op.out")"
t2=$(now)
[ -z "$cg" ] || grep -qx "frozen 0" "$cg/cgroup.events" || fail "web-2 still frozen"
wait_for 15 reporting web-2 "$t2" 2 || fail "web-2 does not report after resume"
[ "$(mci_status)" = "Running:3 (R:3/3)" ] || fail "MCI status '$(mci_status)' after resume"
[ "$(vmfield web-2 driver.pid)" = "$pid2" ] || fail "resume changed web-2's agent pid"

log "reboot web-2"
fed vm reboot ns1 m1 web-2 >"$WORK/op.out" 2>&1 || fail "reboot failed: $(cat "$WORK/op.out")"
t3=$(now)
pid2b=$(vmfield web-2 driver.pid)
[ "$pid2b" != "$pid2" ] || fail "reboot kept agent pid $pid2"
wait_for 10 gone "$pid2" || fail "the old agent $pid2 of web-2 survived the reboot"
ALL_PIDS+=("$pid2b" "$(vmfield web-2 driver.wpid)")
wait_for 15 reporting web-2 "$t3" 2 || fail "web-2 does not report after reboot"
[ "$(vmfield web-2 status)" = Running ] || fail "web-2 is $(vmfield web-2 status) after reboot"

log "migrate web-1 to region r2"
pid1=$(vmfield web-1 driver.pid)
t4=$(now)
fed migrate ns1 m1 web-1 --region r2 >"$WORK/op.out" 2>&1 || fail "migrate failed: $(cat "$WORK/op.out")"
grep -q "migrated ns1/m1/web-1 to web-3" "$WORK/op.out" || fail "unexpected: $(cat "$WORK/op.out")"
vmfield web-1 id >/dev/null 2>&1 && fail "web-1 is still in the model"
[ "$(vmfield web-3 status)" = Running ] || fail "web-3 is $(vmfield web-3 status)"
vmfield web-3 spec | grep -q "'region': 'r2'" || fail "web-3 is not in r2: $(vmfield web-3 spec)"
vmfield web-3 spec | grep -q "local+r2+small" || fail "web-3's commonSpec was not moved to r2"
wait_for 10 gone "$pid1" || fail "old web-1 agent $pid1 still runs"
ALL_PIDS+=("$(vmfield web-3 driver.pid)" "$(vmfield web-3 driver.wpid)")
wait_for 15 reporting web-3 "$t4" 1 || fail "web-3 does not report"
# The new VM's first report came before the old VM's agent said offline.
python3 - "$WORK/sub.log" "$t4" <<'PY' || fail "web-3 did not report before web-1 went away"
import sys
first_new = offline_old = None
for line in open(sys.argv[1], errors="replace"):
    p = line.rstrip("\n").split("|")
    if len(p) < 5 or float(p[0]) < float(sys.argv[2]):
        continue
    t = float(p[0])
    if p[1].startswith("dsf/m/") and p[1].endswith("/ns1/m1/web-3") and first_new is None:
        first_new = t
    if p[1] == "dsf/a/ns1/m1/web-1/status" and "offline" in bytes.fromhex(p[4]).decode(errors="replace"):
        offline_old = offline_old or t
print("web-3 first report at %s, web-1 offline at %s" % (first_new, offline_old))
sys.exit(0 if first_new and offline_old and first_new < offline_old else 1)
PY
[ "$(mci_status)" = "Running:3 (R:3/3)" ] || fail "MCI status '$(mci_status)' after migrate"

log "scale out web by 2"
t5=$(now)
fed scale-out ns1 m1 web 2 >"$WORK/op.out" 2>&1 || fail "scale-out failed: $(cat "$WORK/op.out")"
[ "$(mci_status)" = "Running:5 (R:5/5)" ] || fail "MCI status '$(mci_status)' after scale-out"
NEW=()
for vm in web-4 web-5; do
    [ "$(vmfield "$vm" autogen)" = True ] || fail "$vm is not marked autogen"
    p=$(vmfield "$vm" driver.pid)
    NEW+=("$p" "$(vmfield "$vm" driver.wpid)")
    wait_for 15 reporting "$vm" "$t5" 1 || fail "$vm does not report"
done
ALL_PIDS+=("${NEW[@]}")

log "scale in web by 2: the autogen VMs go first"
fed scale-in ns1 m1 web 2 >"$WORK/op.out" 2>&1 || fail "scale-in failed: $(cat "$WORK/op.out")"
vmfield web-4 id >/dev/null 2>&1 && fail "web-4 (autogen) was kept"
vmfield web-5 id >/dev/null 2>&1 && fail "web-5 (autogen) was kept"
[ "$(vmfield web-2 status)" = Running ] || fail "web-2 was touched by scale-in"
wait_for 10 all_gone "${NEW[@]}" || fail "processes of the removed VMs remain: $(ps -o pid,stat,args -p "$(join "${NEW[@]}")")"
[ "$(mci_status)" = "Running:3 (R:3/3)" ] || fail "MCI status '$(mci_status)' after scale-in"

log "terminate all"
CGS=()
for vm in web-2 web-3 api-1; do
    c=$(vmfield "$vm" driver.cgroup)
    [ -z "$c" ] || CGS+=("$c")
done
fed mci terminate ns1 m1 >"$WORK/op.out" 2>&1 || fail "terminate failed: $(cat "$WORK/op.out")"
[ "$(mci_status)" = "Terminated:3 (R:0/3)" ] || fail "MCI status '$(mci_status)' after terminate"
# Zombies count as left behind until init has reaped them.
wait_for 15 all_gone "${ALL_PIDS[@]}" ||
    fail "processes left behind: $(ps -o pid,stat,args -p "$(join "${ALL_PIDS[@]}")")"
if ps -eo args | grep -F "$STATE/" | grep -v grep; then
    fail "processes running from the state directory remain"
fi
for c in "${CGS[@]}"; do
    [ ! -d "$c" ] || [ -z "$(cat "$c/cgroup.procs")" ] || fail "cgroup $c still has processes"
done
log "no process left behind (${#ALL_PIDS[@]} pids checked in the process table)"

log "transition rules"
if fed vm suspend ns1 m1 web-2 >"$WORK/op.out" 2>&1; then fail "suspending a Terminated VM succeeded"; fi
grep -q "cannot suspend web-2: it is Terminated" "$WORK/op.out" || fail "unclear error: $(cat "$WORK/op.out")"
fed mci delete ns1 m1 >"$WORK/op.out" 2>&1 || fail "mci delete failed: $(cat "$WORK/op.out")"
[ ! -e "$STATE/mci/ns1/m1.json" ] || fail "the MCI's state file remains after delete"
log "PASS"
