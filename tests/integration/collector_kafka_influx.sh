#!/usr/bin/env bash
# Three real agents -> Kafka (librdkafka's mock cluster) -> collector in the dsf-collectors
# group -> real InfluxDB: every sample stored with the agent's timestamp, tags and values;
# the collector commits offsets only for what the store accepted.
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
start_kafka_mock kafka --topic dsf.metrics:64
start_influxd
influx_create_db dsf
CPORT=$(free_port)
bg collector "$COLLECTOR" --set id=k1 --set input=kafka --set kafka.brokers="$BOOTSTRAP" \
    --set output.url="$INFLUX_URL" --set output.db=dsf --set batch.interval=200ms \
    --set http.listen="127.0.0.1:$CPORT"
FIRST=$BG_PID
wait_for 10 curl -sf "http://127.0.0.1:$CPORT/healthz" || fail "collector did not start"
agents=()
for vm in vm1 vm2 vm3; do
    bg "agent-$vm" "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm=$vm \
        --set interval=1s --set push.mode=kafka --set kafka.brokers="$BOOTSTRAP" \
        --set http.listen= --set privileges.drop=false --set inputs.processes.enabled=false
    agents+=("$BG_PID")
done
sleep 10
for pid in "${agents[@]}"; do stop_pid "$pid"; done
stored() { [ "$(metric "http://127.0.0.1:$CPORT/metrics" damselfly_collector_messages_total)" -ge 20 ]; }
wait_for 20 stored || fail "the collector did not get the agents' messages"
sleep 2
# What the agents sent, read back independently from Kafka.
timeout 30 kcat -b "$BOOTSTRAP" -C -t dsf.metrics -o beginning -e -q -f '%s\n' >"$WORK/sent.lp" ||
    fail "kcat"
python3 "$DSF_SRC/tests/integration/check_store.py" "$INFLUX_URL" dsf "$WORK/sent.lp" --lp ||
    fail "the store does not hold exactly what the agents sent"
lag=$(metric "http://127.0.0.1:$CPORT/metrics" damselfly_collector_kafka_lag_messages)
[ "$lag" = 0 ] || fail "the collector reports a Kafka lag of $lag after consuming everything"
log "a restarted collector in the same group resumes after the committed offsets"
stop_pid "$FIRST"
CPORT2=$(free_port)
bg collector2 "$COLLECTOR" --set id=k2 --set input=kafka --set kafka.brokers="$BOOTSTRAP" \
    --set output.url="$INFLUX_URL" --set output.db=dsf --set http.listen="127.0.0.1:$CPORT2"
wait_for 10 curl -sf "http://127.0.0.1:$CPORT2/healthz" || fail "second collector did not start"
sleep 8 # time to join the group and fetch
again=$(metric "http://127.0.0.1:$CPORT2/metrics" damselfly_collector_messages_total)
[ "$again" = 0 ] || fail "the second collector consumed $again messages again: offsets not committed"
log "ok"
