#!/usr/bin/env bash
# Kafka: the agent produces to dsf.metrics on a Kafka-protocol broker (librdkafka's mock
# cluster); kcat reads the messages keyed ns/mci/vm, on the bucket's partition, with the
# seq/boot/fmt headers, seq without gaps, and line protocol carrying the identity.
. "$(dirname "$0")/lib.sh"

command -v kcat >/dev/null || fail "kcat is not installed (apt-get install kcat)"
start_kafka_mock kafka --brokers 3 --topic dsf.metrics:64
log "mock cluster at $BOOTSTRAP"
PORT=$(free_port)
agent_config "$WORK/agent.json" identity.ns=ns1 identity.mci=mci1 identity.vm=vm7 interval=1s \
    push.mode=kafka kafka.brokers="$BOOTSTRAP" http.listen="127.0.0.1:$PORT" \
    privileges.drop=false
bg agent "$AGENT" --config "$WORK/agent.json"
AGENT_PID=$BG_PID
delivered() { [ "$(metric "http://127.0.0.1:$PORT/metrics" damselfly_agent_messages_delivered_total)" -ge 5 ]; }
wait_for 30 delivered || fail "the agent did not get 5 messages confirmed"
stop_pid "$AGENT_PID"

timeout 30 kcat -b "$BOOTSTRAP" -C -t dsf.metrics -o beginning -e -q \
    -f '%k|%p|%h|%s\n--end--\n' >"$WORK/kcat.out" 2>"$WORK/kcat.log" || fail "kcat -C failed"
want_partition=$(bucket ns1/mci1/vm7 64)
python3 - "$WORK/kcat.out" "$want_partition" <<'PY' || fail "messages read by kcat"
import sys
raw = open(sys.argv[1]).read()
want_partition = int(sys.argv[2])
msgs = [m for m in raw.split("\n--end--\n") if m.strip()]
assert len(msgs) >= 5, f"only {len(msgs)} messages"
seqs, boots = [], set()
for m in msgs:
    key, partition, headers, value = m.split("|", 3)
    assert key == "ns1/mci1/vm7", key
    assert int(partition) == want_partition, (partition, want_partition)
    h = dict(kv.split("=", 1) for kv in headers.split(","))
    assert h["fmt"] == "lp", h
    seqs.append(int(h["seq"]))
    boots.add(h["boot"])
    first = value.split("\n")[0]
    assert first.startswith("cpu,cpu=cpu-total,") and ",vm=vm7" in first, first
assert len(boots) == 1, boots
assert seqs == list(range(1, len(seqs) + 1)), seqs
print(f"{len(msgs)} messages, seq 1..{len(seqs)}, partition {want_partition}")
PY
log "ok"
