#!/usr/bin/env bash
# Three real agents -> mosquitto -> collector -> real InfluxDB: every sample is stored with
# the agent's timestamp, tags and values (queried back and compared with what the agents
# sent), and the agents receive end-to-end acks for it. Request bodies are gzipped.
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
start_mosquitto
start_influxd
CPORT=$(free_port)
bg sub mosquitto_sub -V 5 -p "$MQTT_PORT" -t 'dsf/m/#' -F '%t|%r|%P|%x'
bg collector "$COLLECTOR" --set id=c1 --set mqtt.url="$MQTT_URL" --set output.url="$INFLUX_URL" \
    --set output.db=dsf --set batch.interval=200ms --set http.listen="127.0.0.1:$CPORT" \
    --set output.gzip=true # on loopback "auto" would not compress: this test covers gzip
wait_for 10 curl -sf "http://127.0.0.1:$CPORT/healthz" || fail "collector did not start"
influx_create_db dsf
ports=()
agents=()
for vm in vm1 vm2 vm3; do
    p=$(free_port)
    ports+=("$p")
    bg "agent-$vm" "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm=$vm \
        --set identity.region=r1 --set interval=1s --set mqtt.url="$MQTT_URL" \
        --set buffer.ack=collector --set http.listen="127.0.0.1:$p" --set privileges.drop=false \
        --set inputs.processes.enabled=false
    agents+=("$BG_PID")
done
sleep 8
for p in "${ports[@]}"; do
    acks=$(metric "http://127.0.0.1:$p/metrics" damselfly_agent_acks_total)
    held=$(metric "http://127.0.0.1:$p/metrics" damselfly_agent_buffer_messages)
    log "agent on $p: $acks acks, $held messages held"
    [ "${acks%.*}" -ge 3 ] || fail "an agent got no end-to-end acks"
    [ "${held%.*}" -le 2 ] || fail "an agent still holds $held messages: acks do not release them"
done
for pid in "${agents[@]}"; do stop_pid "$pid"; done
sleep 1.5
curl -sf "http://127.0.0.1:$CPORT/metrics" >"$WORK/collector.metrics"
grep -E '^damselfly_collector_(points|messages|acks|dlq)' "$WORK/collector.metrics"
promtool check metrics <"$WORK/collector.metrics" || fail "promtool rejects the collector's /metrics"
# Every stored point is in the age histogram, and the agents' samples were stored within
# seconds of being taken (batch.interval 200 ms, interval 1 s).
python3 - "$WORK/collector.metrics" <<'PY' || fail "sample age histogram"
import re, sys
text = open(sys.argv[1]).read()
num = lambda name: float(re.search(r"^" + name + r"(?:\{[^}]*\})? (\S+)$", text, re.M).group(1))
out, count = num("damselfly_collector_points_out_total"), num("damselfly_collector_sample_age_seconds_count")
within5 = float(re.search(r'^damselfly_collector_sample_age_seconds_bucket\{le="5"\} (\S+)$', text, re.M).group(1))
print(f"points out {out:.0f}, in the age histogram {count:.0f}, of them within 5 s {within5:.0f}")
sys.exit(0 if count == out and within5 == count else 1)
PY
python3 "$DSF_SRC/tests/integration/check_store.py" "$INFLUX_URL" dsf "$WORK/sub.log" ||
    fail "the store does not hold exactly what the agents sent"
log "ok"
