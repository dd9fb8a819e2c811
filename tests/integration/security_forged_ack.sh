#!/usr/bin/env bash
# Forged end-to-end acks. An agent with buffer.ack=collector and no collector running holds
# every message. Acks that another client publishes on its ack topic, with its real boot (read
# from its retained status) but naming seqs it never published (everything up to 2^64-1, a
# prefix longer than what it sent, the next messages before they exist, a real seq beside an
# unsent one), release nothing and are counted. When a collector and InfluxDB come up, every
# point of every message the agent had published is stored.
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
start_mosquitto
# Every message the agent publishes (first copies and resends): what must reach the store.
bg sub mosquitto_sub -V 5 -p "$MQTT_PORT" -t 'dsf/m/#' -F '%t|%r|%P|%x'
sleep 0.5
HTTP=$(free_port)
M="http://127.0.0.1:$HTTP/metrics"
bg agent "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm=vm1 \
    --set interval=1s --set mqtt.url="$MQTT_URL" --set buffer.ack=collector \
    --set buffer.ack_timeout=2s --set http.listen="127.0.0.1:$HTTP" --set privileges.drop=false \
    --set inputs.processes.enabled=false --set inputs.container.enabled=false
value() { metric "$M" "$@" | cut -d. -f1; }
at_least() { [ "$(value "$1" "${3:-}")" -ge "$2" ]; }
wait_for 20 at_least damselfly_agent_seq 4 || fail "the agent took no samples"
status=$(mosquitto_sub -V 5 -p "$MQTT_PORT" -t dsf/a/ns1/mci1/vm1/status -C 1 -W 5) ||
    fail "no retained status"
boot=$(printf '%s' "$status" | python3 -c 'import json, sys; print(json.load(sys.stdin)["boot"])')
sent=$(value damselfly_agent_seq)
log "agent boot $boot has published up to seq $sent; publishing forged acks"
forge() {
    mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -t dsf/a/ns1/mci1/vm1/ack \
        -m "{\"boot\":\"$boot\",\"ranges\":$1}"
}
forge '[[0,18446744073709551615]]'
forge '[[0,9223372036854775807]]'
forge '[[1,1000000]]'
forge "[[$((sent + 1)),$((sent + 1000))]]"
forge "[[1,1],[2,2],[$((sent + 5)),$((sent + 5))]]"
refused() { at_least damselfly_agent_acks_rejected_total "$1" 'reason="unsent"'; }
sleep 1
held=$(value damselfly_agent_buffer_messages)
[ "$held" -ge "$sent" ] || fail "forged acks released messages: $held held, $sent published"
wait_for 5 refused 5 || fail "the forged acks were not counted as refused (reason unsent)"
grep -q 'refused an ack on dsf/a/ns1/mci1/vm1/ack' "$WORK/agent.log" || fail "no warning logged"
[ "$(value damselfly_agent_acks_total)" = 0 ] || fail "a forged ack counted as applied"
log "held $held messages; $(value damselfly_agent_acks_rejected_total 'reason="unsent"') acks refused"

log "starting InfluxDB and a collector"
start_influxd
influx_create_db dsf
CPORT=$(free_port)
bg collector "$COLLECTOR" --set id=c1 --set mqtt.url="$MQTT_URL" --set output.url="$INFLUX_URL" \
    --set output.db=dsf --set batch.interval=200ms --set http.listen="127.0.0.1:$CPORT"
caught_up() { at_least damselfly_agent_acks_total 1 && [ "$(value damselfly_agent_buffer_messages)" -le 2 ]; }
wait_for 40 caught_up || fail "the agent's messages were not acked once a collector ran"
upto=$(value damselfly_agent_seq)
for reason in buffer_full spool_full; do
    [ "$(value damselfly_agent_dropped_messages_total "reason=\"$reason\"")" = 0 ] ||
        fail "the agent dropped messages ($reason)"
done

# Every point of seqs 1..upto, as the subscriber saw them, must be in the store.
stored() {
    python3 - "$DSF_SRC/tests/integration" "$INFLUX_URL" "$WORK/sub.log" "$upto" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from check_store import parse_line, query
url, capture, upto = sys.argv[2], sys.argv[3], int(sys.argv[4])
want, seqs = {}, set()
for raw in open(capture, encoding="utf-8", errors="replace"):
    if not raw.startswith("dsf/m/"):
        continue
    _topic, _retained, props, payload = raw.rstrip("\n").split("|", 3)
    seq = int(dict(kv.split(":", 1) for kv in props.split(" ") if ":" in kv)["seq"])
    if seq > upto:
        continue
    seqs.add(seq)
    for line in bytes.fromhex(payload).decode().split("\n"):
        if line:
            meas, tags, ts, _fields = parse_line(line)
            want[(meas, tags, ts)] = seq
assert seqs == set(range(1, upto + 1)), f"the subscriber missed seqs: {sorted(set(range(1, upto + 1)) - seqs)}"
got = set()
for meas in {k[0] for k in want}:
    for s in query(url, "dsf", f'SELECT * FROM "{meas}" GROUP BY *'):
        tags = tuple(sorted((k, v) for k, v in s.get("tags", {}).items() if v != ""))
        got.update((meas, tags, row[0]) for row in s["values"])
missing = sorted({seq for key, seq in want.items() if key not in got})
print(f"seqs 1-{upto}: {len(want)} points sent, {len(want) - sum(k not in got for k in want)} stored;"
      f" seqs with points missing: {missing[:20]}")
sys.exit(1 if missing else 0)
PY
}
wait_for 20 stored || { stored || true; fail "points the agent published are missing from the store"; }
stored
log "ok"
