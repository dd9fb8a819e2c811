#!/usr/bin/env bash
# InfluxDB stopped for 30 s under load (2 agents x 1,000 points/s over MQTT), then started
# again on the same port and data: zero points missing. The collector retries with backoff
# while the agents keep every message it has not acknowledged.
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
start_mosquitto
start_influxd
curl -sf -XPOST "$INFLUX_URL/query" --data-urlencode 'q=CREATE DATABASE dsf' >/dev/null
CPORT=$(free_port)
bg collector "$COLLECTOR" --set id=c1 --set mqtt.url="$MQTT_URL" --set output.url="$INFLUX_URL" \
    --set output.db=dsf --set batch.interval=200ms --set output.max_backoff=2s \
    --set http.listen="127.0.0.1:$CPORT"
wait_for 10 curl -sf "http://127.0.0.1:$CPORT/healthz" || fail "collector did not start"
ports=()
agents=()
for vm in load1 load2; do
    p=$(free_port)
    ports+=("$p")
    bg "agent-$vm" "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm=$vm \
        --set interval=1s --set mqtt.url="$MQTT_URL" --set buffer.ack=collector \
        --set http.listen="127.0.0.1:$p" --set privileges.drop=false \
        --set inputs.synthetic.enabled=true --set inputs.synthetic.series=1000 \
        --set inputs.cpu.enabled=false --set inputs.mem.enabled=false \
        --set inputs.swap.enabled=false --set inputs.disk.enabled=false \
        --set inputs.diskio.enabled=false --set inputs.net.enabled=false \
        --set inputs.system.enabled=false --set inputs.processes.enabled=false \
        --set inputs.container.enabled=false
    agents+=("$BG_PID")
done
sleep 4
log "stopping InfluxDB for 30 s"
stop_pid "$INFLUXD_PID"
sleep 30
retries=$(metric "http://127.0.0.1:$CPORT/metrics" damselfly_collector_retries_total)
[ "$retries" -gt 0 ] || fail "the collector did not retry while the store was away"
bg influxd-again influxd run -config "$WORK/influxdb/influxdb.conf"
wait_for 30 curl -sf "$INFLUX_URL/ping" || fail "influxd did not come back"
log "InfluxDB back after $retries retries"
drained() {
    for p in "${ports[@]}"; do
        [ "$(metric "http://127.0.0.1:$p/metrics" damselfly_agent_buffer_messages)" = 0 ] || return 1
    done
}
wait_for 90 drained || fail "agents still hold unacknowledged messages 90 s after the store returned"
sent=()
for p in "${ports[@]}"; do sent+=("$(metric "http://127.0.0.1:$p/metrics" damselfly_agent_seq)"); done
for pid in "${agents[@]}"; do stop_pid "$pid"; done
python3 - "$INFLUX_URL" "${sent[@]}" <<'PY' || fail "points missing after the outage"
import json, sys, urllib.parse, urllib.request
url, sent = sys.argv[1], {"load1": int(sys.argv[2]), "load2": int(sys.argv[3])}
u = url + "/query?" + urllib.parse.urlencode(
    {"db": "dsf", "q": 'SELECT count(f0) FROM synthetic GROUP BY "vm", "series"'})
counts = {}
for s in json.load(urllib.request.urlopen(u))["results"][0]["series"]:
    counts.setdefault(s["tags"]["vm"], []).append(s["values"][0][1])
short = 0
for vm, n in sent.items():
    got = counts.get(vm, [])
    assert len(got) == 1000, f"{vm}: {len(got)} series"
    short += sum(1 for c in got if c < n)
    print(f"{vm}: 1000 series, {n} points expected each; min {min(got)}; {sum(got)} stored")
sys.exit(1 if short else 0)
PY
log "ok: zero points missing"
