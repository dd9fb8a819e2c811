#!/usr/bin/env bash
# Pulled VMs of the local driver, from their spec's labels: an exporter VM (no agent; its
# workload is the real prometheus-node-exporter on the VM's port) answers /metrics on its
# address, stops answering while suspended and answers again after resume and reboot; a
# pull VM's agent serves /api/v1/snapshot?format=lp only with the pull token of the state
# directory and never pushes (nothing of it reaches the broker, nothing delivered). A bad
# monitoring label is refused before anything starts. Terminate leaves no process.
. "$(dirname "$0")/lib.sh"

FED="$DSF_BUILD/federation/damselfly-fed"
EXPORTER=/usr/bin/prometheus-node-exporter
[ -x "$FED" ] || fail "$FED is missing: build the tree first"
[ -x "$AGENT" ] || fail "$AGENT is missing: build the tree first"
[ -x "$EXPORTER" ] || fail "$EXPORTER is needed (apt-get install prometheus-node-exporter)"

start_mosquitto
STATE="$WORK/state"
fed() {
    "$FED" --state-dir "$STATE" --driver local --log-level warn \
        --set local.mqtt_url="$MQTT_URL" --set local.interval=1s \
        --set local.agent_binary="$AGENT" \
        --set local.install_script="$DSF_SRC/deploy/install-agent.sh" "$@"
}
# vmfield VM KEY: KEY of the VM object, or of its driver data.
vmfield() {
    fed status --json ns1 m1 | python3 -c '
import json, sys
for v in json.load(sys.stdin)["vm"]:
    if v["id"] == sys.argv[1]:
        print(v["driver"].get(sys.argv[2], v.get(sys.argv[2], "")))' "$1" "$2"
}
gone() { ! ps -o pid= -p "$1" >/dev/null 2>&1; }
# The VMs outlive damselfly-fed: stop them with the test's other processes if it fails.
track() {
    local p
    for p in $(vmfield "$1" pid) $(vmfield "$1" wpid); do [ "$p" = 0 ] || DSF_PIDS+=("$p"); done
}
exporter_answers() { curl -sf --max-time 2 "http://$EXP_ADDR/metrics" | grep -q '^node_exporter_build_info'; }
bg sub mosquitto_sub -p "$MQTT_PORT" -V 5 -t 'dsf/#' -F '%t'

log "a bad monitoring label is refused"
cat >"$WORK/bad.json" <<'JSON'
{"vm": [{"name": "x", "csp": "local", "region": "r1",
         "label": {"damselfly.monitoring": "agentless"}, "workload": ["sleep", "60"]}]}
JSON
if fed create-mci ns1 bad --spec "$WORK/bad.json" >"$WORK/out" 2>&1; then
    fail "create-mci took damselfly.monitoring=agentless"
fi
grep -q "damselfly.monitoring 'agentless'" "$WORK/out" || fail "the refusal does not say why: $(cat "$WORK/out")"
[ ! -d "$STATE/local/vms/ns1/bad" ] || fail "the refused MCI left a VM directory"

cat >"$WORK/spec.json" <<'JSON'
{"vm": [{"name": "exp", "csp": "local", "region": "r1",
         "label": {"damselfly.monitoring": "exporter"},
         "workload": ["prometheus-node-exporter", "--web.listen-address=127.0.0.1:{port}",
                      "--collector.disable-defaults", "--collector.loadavg"]},
        {"name": "pull", "csp": "local", "region": "r1",
         "label": {"damselfly.monitoring": "pull"}, "workload": ["sleep", "600"]}]}
JSON
fed create-mci ns1 m1 --spec "$WORK/spec.json" >"$WORK/out" 2>&1 || fail "create-mci failed: $(cat "$WORK/out")"
track exp-1
track pull-1
EXP_ADDR=$(vmfield exp-1 address)
PULL_ADDR=$(vmfield pull-1 address)
exp_pid=$(vmfield exp-1 pid)
[ "$(readlink "/proc/$exp_pid/exe")" = "$EXPORTER" ] || fail "exp-1's process $exp_pid is $(readlink "/proc/$exp_pid/exe"), not the exporter"
[ ! -e "$STATE/local/vms/ns1/m1/exp-1/usr/local/bin/damselfly-agent" ] || fail "an agent was installed on the exporter VM"
exporter_answers || fail "the exporter does not answer on $EXP_ADDR"

log "the pull agent answers with the pull token only"
TOKEN_FILE="$STATE/local/pull.token"
[ "$(stat -c %a "$TOKEN_FILE")" = 600 ] || fail "$TOKEN_FILE is mode $(stat -c %a "$TOKEN_FILE"), not 600"
TOKEN=$(<"$TOKEN_FILE")
SNAP="http://$PULL_ADDR/api/v1/snapshot?format=lp"
refuses_strangers GET "$SNAP" "wrong-token-0123456789"
curl -sf -H "Authorization: Bearer $TOKEN" "$SNAP" >"$WORK/snap.lp" || fail "the snapshot with the token failed"
grep -q '^cpu,.*ns=ns1.*vm=pull-1' "$WORK/snap.lp" || fail "the snapshot has no cpu line of pull-1: $(head -c 300 "$WORK/snap.lp")"
grep -q '"push":false' <(curl -sf "http://$PULL_ADDR/healthz") || fail "the pull agent has push on: $(curl -s "http://$PULL_ADDR/healthz")"
# It had two collection intervals to push in: neither the broker nor the agent saw anything.
sleep 2
if grep -q '/pull-1' "$WORK/sub.log"; then fail "the pull agent published: $(grep '/pull-1' "$WORK/sub.log" | head -3)"; fi
delivered=$(METRIC_HEADER="Authorization: Bearer $TOKEN" metric "http://$PULL_ADDR/metrics" damselfly_agent_messages_delivered_total || echo 0)
[ "$delivered" = 0 ] || fail "the pull agent delivered $delivered messages"

log "suspend: the exporter stops answering; resume: it answers again"
fed vm suspend ns1 m1 exp-1 >"$WORK/out" 2>&1 || fail "suspend failed: $(cat "$WORK/out")"
[ "$(vmfield exp-1 status)" = Suspended ] || fail "exp-1 is $(vmfield exp-1 status), not Suspended"
if exporter_answers; then fail "the suspended exporter answered"; fi
fed vm resume ns1 m1 exp-1 >"$WORK/out" 2>&1 || fail "resume failed: $(cat "$WORK/out")"
wait_for 10 exporter_answers || fail "the exporter does not answer after resume"
fed vm suspend ns1 m1 pull-1 >"$WORK/out" 2>&1 || fail "suspend of pull-1 failed: $(cat "$WORK/out")"
fed vm resume ns1 m1 pull-1 >"$WORK/out" 2>&1 || fail "resume of pull-1 failed: $(cat "$WORK/out")"

log "reboot: a new exporter process on the same address"
fed vm reboot ns1 m1 exp-1 >"$WORK/out" 2>&1 || fail "reboot failed: $(cat "$WORK/out")"
track exp-1
new_pid=$(vmfield exp-1 pid)
[ "$new_pid" != "$exp_pid" ] || fail "reboot kept pid $exp_pid"
wait_for 10 gone "$exp_pid" || fail "the old exporter $exp_pid survived the reboot"
[ "$(vmfield exp-1 address)" = "$EXP_ADDR" ] || fail "the address moved to $(vmfield exp-1 address)"
exporter_answers || fail "the exporter does not answer after reboot"
fed vm reboot ns1 m1 pull-1 >"$WORK/out" 2>&1 || fail "reboot of pull-1 failed: $(cat "$WORK/out")"
track pull-1
curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" "$SNAP" || fail "the pull agent does not answer after reboot"

log "terminate leaves no process"
pull_pid=$(vmfield pull-1 pid)
pull_wpid=$(vmfield pull-1 wpid)
fed mci terminate ns1 m1 >"$WORK/out" 2>&1 || fail "terminate failed: $(cat "$WORK/out")"
for p in "$new_pid" "$pull_pid" "$pull_wpid"; do
    wait_for 10 gone "$p" || fail "process $p survived terminate"
done
if exporter_answers; then fail "something still answers on $EXP_ADDR"; fi
fed mci delete ns1 m1 >"$WORK/out" 2>&1 || fail "mci delete failed: $(cat "$WORK/out")"
log "PASS"
