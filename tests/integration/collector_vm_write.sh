#!/usr/bin/env bash
# Two real agents -> mosquitto -> collector (output.api=vm) -> real VictoriaMetrics: every
# numeric field the agents sent is stored with its tags and the sample's timestamp, queried
# back through VictoriaMetrics' export API.
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
command -v victoria-metrics >/dev/null || fail "victoria-metrics is missing: scripts/install-deps.sh test"
start_mosquitto
VM_PORT=$(free_port)
VM_URL="http://127.0.0.1:$VM_PORT"
bg victoria-metrics victoria-metrics -httpListenAddr="127.0.0.1:$VM_PORT" \
    -storageDataPath="$WORK/vm" -retentionPeriod=100y
wait_for 30 curl -sf "$VM_URL/health" || fail "victoria-metrics did not start"
CPORT=$(free_port)
bg sub mosquitto_sub -V 5 -p "$MQTT_PORT" -t 'dsf/m/#' -F '%t|%r|%P|%x'
bg collector "$COLLECTOR" --set id=c1 --set mqtt.url="$MQTT_URL" --set output.api=vm \
    --set output.url="$VM_URL" --set batch.interval=200ms --set http.listen="127.0.0.1:$CPORT"
wait_for 10 curl -sf "http://127.0.0.1:$CPORT/healthz" || fail "collector did not start"
agents=()
for vm in vm1 vm2; do
    bg "agent-$vm" "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm=$vm \
        --set interval=1s --set mqtt.url="$MQTT_URL" --set buffer.ack=collector \
        --set http.listen= --set privileges.drop=false --set inputs.processes.enabled=false
    agents+=("$BG_PID")
done
sleep 6
for pid in "${agents[@]}"; do stop_pid "$pid"; done
sleep 1.5
curl -sf "$VM_URL/internal/force_flush" >/dev/null || true # make the latest rows searchable
sleep 1
python3 "$DSF_SRC/tests/integration/check_store.py" "$VM_URL" - "$WORK/sub.log" --vm \
    --measurements cpu,mem,system,net,disk ||
    fail "VictoriaMetrics does not hold exactly what the agents sent"
log "ok"
