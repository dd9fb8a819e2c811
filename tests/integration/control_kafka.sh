#!/usr/bin/env bash
# The Kafka path end to end: a sample on dsf.metrics fires a rule of the real alarm engine
# (input=kafka), its event on dsf.alarms reaches damselfly-control (input=kafka, group
# dsf-control), whose decision is audited and published on dsf.actions (keyed by its MCI).
# The VM is in no federation model here, so the decision is "blocked" by the target guard:
# what is checked is the path, not a heal.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"

CONTROL="$DSF_BUILD/control/damselfly-control"
[ -x "$CONTROL" ] || fail "$CONTROL is missing: build the tree first"
command -v kcat >/dev/null || fail "kcat is needed (apt-get install kcat)"

start_kafka_mock kafka --topic dsf.metrics:64 --topic dsf.alarms:1 --topic dsf.actions:1 \
    --topic dsf.agents:1
rule hot '{"name":"hot","select":{"measurement":"cpu","field":"usage_user"},"crit":90}'
ALARM_PORT=$(free_port)
API="http://127.0.0.1:$ALARM_PORT"
bg alarm "$ALARM" --set id=k1 --set input=kafka --set kafka.brokers="$BOOTSTRAP" \
    --set rules.dir="$WORK/rules" --set state.dir="$WORK/state" \
    --set http.listen="127.0.0.1:$ALARM_PORT"
wait_for 10 curl -sf "$API/healthz" || fail "the alarm engine did not start"

mkdir -p "$WORK/policies" "$WORK/control" "$WORK/fed"
cat >"$WORK/policies/hot.json" <<'EOF'
{"name": "hot-reboot", "match": {"rule": "hot", "state": "firing"},
 "steps": [{"action": "reboot"}], "cooldown": "0s"}
EOF
CTL_PORT=$(free_port)
bg control "$CONTROL" --set id=k1 --set input=kafka --set kafka.brokers="$BOOTSTRAP" \
    --set policies.dir="$WORK/policies" --set state.dir="$WORK/control" \
    --set federation.dir="$WORK/fed" --set http.listen="127.0.0.1:$CTL_PORT"
CTL_PID=$BG_PID
wait_for 10 curl -sf "http://127.0.0.1:$CTL_PORT/healthz" || fail "the controller did not start"
sleep 8 # both consumer groups join and get their partitions

audited() {
    python3 - "$WORK/control/audit.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if any(r["event"] == "decision" and r.get("alarm", {}).get("rule") == "hot"
                  and r["target"] == "vm1" for r in recs) else 1)
PY
}
t=$(date +%s%N)
"$BUS_SEND" --kafka "$BOOTSTRAP" --topic "dsf/m/$(bucket ns1/mci1/vm1 64)/ns1/mci1/vm1" \
    --key ns1/mci1/vm1 --fmt lp "cpu,cpu=cpu-total usage_user=95 $t" ||
    fail "dsf-bus-send --kafka failed"
wait_for 40 audited || fail "no decision on the alarm from dsf.alarms: $(cat "$WORK/control/audit.jsonl")"
python3 - "$WORK/control/audit.jsonl" <<'PY' || fail "the decision is not the one expected"
import json, sys
d = [json.loads(l) for l in open(sys.argv[1])]
d = [r for r in d if r["event"] == "decision"][0]
assert d["verdict"] == "blocked" and d["guard"] == "target", d
assert "not in the federation's model" in d["why"], d
assert d["ns"] == "ns1" and d["mci"] == "mci1", d
PY
timeout 30 kcat -b "$BOOTSTRAP" -C -t dsf.actions -o beginning -e -q -f '%k %s\n' \
    >"$WORK/actions.txt" || fail "kcat could not read dsf.actions"
grep -q '^ns1/mci1 .*"event":"decision"' "$WORK/actions.txt" ||
    fail "dsf.actions does not hold the decision keyed ns1/mci1: $(cat "$WORK/actions.txt")"
"$CONTROL" audit verify "$WORK/control/audit.jsonl" >/dev/null || fail "the audit does not verify"
stop_pid "$CTL_PID"
log "PASS"
