#!/usr/bin/env bash
# Seq poisoning: a real agent -> mosquitto -> collector (mem aggregated into 2 s windows, the
# rest stored as it comes) -> InfluxDB. One message on the agent's topic with the agent's own
# boot and seq 2^64-1 used to carry the collector's seq tracking there for the rest of the
# agent's run: every later message counted as a duplicate, so no window was written any
# more, and the gaps counter jumped by 1.8e19. Now that message is stored but counted as
# suspect (not acked: the collector cannot vouch for that seq) and does not move the
# tracking: every later sample is stored, every window written, gaps stay near zero. Messages whose seq or boot property is not one (seq -1, which was read
# as 2^64-1, seq abc, a boot that is not 16 hex digits) are refused: on the DLQ with a
# reason, counted, not stored.
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
SEND="$DSF_BUILD/tests/tools/dsf-bus-send"
[ -x "$SEND" ] || fail "$SEND is missing (build with DAMSELFLY_KAFKA=ON)"
start_mosquitto
start_influxd
influx_create_db dsf
CPORT=$(free_port)
APORT=$(free_port)
B=$(bucket ns1/mci1/vm1 64)
TOPIC="dsf/m/$B/ns1/mci1/vm1"
bg sub-sent mosquitto_sub -V 5 -p "$MQTT_PORT" -q 1 -t "$TOPIC" -F '%p'
bg dlq mosquitto_sub -V 5 -p "$MQTT_PORT" -t dsf/dlq -F '%p'
bg collector "$COLLECTOR" --set id=c1 --set mqtt.url="$MQTT_URL" --set output.url="$INFLUX_URL" \
    --set output.db=dsf --set batch.interval=200ms --set http.listen="127.0.0.1:$CPORT" \
    --set 'aggregate.rules=mem window=2s' --set aggregate.grace=1s
COLLECTOR_PID=$BG_PID
connected() { curl -sf "http://127.0.0.1:$CPORT/healthz" | grep -q '"connected":true'; }
wait_for 10 connected || fail "collector did not connect"
sleep 0.5 # its subscriptions
bg agent "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm=vm1 \
    --set interval=1s --set mqtt.url="$MQTT_URL" --set buffer.ack=collector \
    --set buffer.ack_timeout=30s --set http.listen="127.0.0.1:$APORT" \
    --set privileges.drop=false --set inputs.processes.enabled=false
AGENT_PID=$BG_PID
M="http://127.0.0.1:$CPORT/metrics"
count() { # MEASUREMENT -> points stored
    influx_query dsf "SELECT count(*) FROM $1" | python3 -c '
import json, sys
s = json.load(sys.stdin)["results"][0].get("series")
print(max(s[0]["values"][0][1:]) if s else 0)'
}
some_stored() { [ "$(count system)" -ge 3 ]; }
wait_for 20 some_stored || fail "the agent's samples are not stored"

BOOT=$(timeout 5 mosquitto_sub -V 5 -p "$MQTT_PORT" -t dsf/a/ns1/mci1/vm1/status -C 1 |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["boot"])') || fail "no agent status"
log "agent boot $BOOT; injecting seq 2^64-1 with it"
"$SEND" --mqtt "$MQTT_URL" --topic "$TOPIC" --seq 18446744073709551615 --boot "$BOOT" --fmt lp \
    "forged,ns=ns1,mci=mci1,vm=vm1 x=1i $(date +%s%N)" || fail "injecting failed"
bad() { # SEQ BOOT MEASUREMENT: one message with these properties
    printf '%s x=1i %s\n' "$3" "$(date +%s%N)" |
        mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -t "$TOPIC" -s -D publish user-property fmt lp \
            -D publish user-property seq "$1" -D publish user-property boot "$2"
}
sleep 8
held=$(metric "http://127.0.0.1:$APORT/metrics" damselfly_agent_buffer_messages)
curl -sf "$M" >"$WORK/metrics.txt" || fail "no metrics"
# Last, as a message of another boot resets the old tracking (and so undid the poisoning).
bad -1 "$BOOT" badseq
bad abc "$BOOT" badseq
bad 5 not-a-boot badboot
sleep 1
stop_pid "$AGENT_PID"
sleep 0.5
curl -sf "$M" >"$WORK/metrics-end.txt" || fail "no metrics"
stop_pid "$COLLECTOR_PID" # writes the windows still open
grep -E '^damselfly_collector_(seq|messages_rejected|agent_(gaps|duplicates))' "$WORK/metrics-end.txt"

python3 - "$INFLUX_URL" "$WORK/sub-sent.log" "$WORK/metrics.txt" "$WORK/metrics-end.txt" \
    "$WORK/dlq.log" "$held" <<'PY' ||
import json, sys, urllib.parse, urllib.request
url, sent, metrics, metrics_end, dlq, held = sys.argv[1:]
def query(q):
    u = url + "/query?" + urllib.parse.urlencode({"db": "dsf", "q": q, "epoch": "ns"})
    s = json.load(urllib.request.urlopen(u))["results"][0].get("series")
    return s[0]["values"] if s else []
ts = {"system": set(), "mem": set()}
forged_ts = None
for line in open(sent):
    name, _, rest = line.strip().partition(",")
    if name in ts:
        ts[name].add(int(rest.rsplit(" ", 1)[1]))
    elif name == "forged":
        forged_ts = int(line.split()[-1])
assert forged_ts, "the injected message was not seen on the topic"
after = sorted(t for t in ts["system"] if t > forged_ts)
assert len(after) >= 5, f"only {len(after)} cycles after the injection"
stored = {v[0] for v in query("SELECT * FROM system")}
missing = sorted(ts["system"] - stored)
assert not missing, f"{len(missing)} system samples missing, {len([t for t in missing if t > forged_ts])} after the injection"
windows = {t // 2_000_000_000 * 2_000_000_000 for t in ts["mem"]}
stored_windows = {v[0] for v in query("SELECT * FROM mem")}
late = sorted(w for w in windows - stored_windows if w > forged_ts)
assert not late, f"{len(late)} mem windows after the injection not written"
assert len(query("SELECT * FROM forged")) == 1, "the suspect message was not stored"
m = dict(l.rsplit(" ", 1) for l in open(metrics) if l[0] != "#")
gaps = float(m['damselfly_collector_agent_gaps_total{agent="ns1/mci1/vm1"}'])
assert gaps < 10, f"agent_gaps_total is {gaps}"
assert float(m["damselfly_collector_seq_suspect_total"]) == 1, m.get("damselfly_collector_seq_suspect_total")
assert float(held) <= 8, f"the agent holds {held} messages: acks stopped"
m = dict(l.rsplit(" ", 1) for l in open(metrics_end) if l[0] != "#")
assert float(m['damselfly_collector_messages_rejected_total{reason="bad_seq"}']) == 2
assert float(m['damselfly_collector_messages_rejected_total{reason="bad_boot"}']) == 1
assert not query("SELECT * FROM badseq") and not query("SELECT * FROM badboot"), "a refused message was stored"
reasons = [json.loads(l)["reason"] for l in open(dlq) if l.strip()]
assert sum("property seq" in r for r in reasons) == 2 and sum("property boot" in r for r in reasons) == 1, reasons
print(f"{len(after)} cycles after the injection, all stored; {len(windows)} mem windows written; "
      f"gaps {gaps:.0f}; 1 suspect; 3 bad properties refused; the agent holds {held}")
PY
    fail "seq poisoning"
# An ack naming 2^64-1 (beyond the agent's JSON integers) made the agent drop the whole ack.
! grep -q "malformed ack" "$WORK/agent.log" || fail "the agent got a malformed ack"
log "ok"
