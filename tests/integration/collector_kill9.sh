#!/usr/bin/env bash
# kill -9 of the collector during a steady stream of 5,000 points/s, then restart: zero
# points missing in InfluxDB. Per-series counts are compared with what the agents sent (each
# agent's message count). Usage: collector_kill9.sh mqtt|kafka
#   mqtt:  the agents keep every message until the collector's end-to-end ack says it is
#          stored, and resend what was not acked;
#   kafka: the collector commits offsets only for what is stored, so its next run (same
#          group) reads again from there.
. "$(dirname "$0")/lib.sh"
TRANSPORT=${1:-mqtt}

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
if [ "$TRANSPORT" = kafka ]; then
    start_kafka_mock kafka --topic dsf.metrics:64
    input=(--set input=kafka --set kafka.brokers="$BOOTSTRAP")
    push=(--set push.mode=kafka --set kafka.brokers="$BOOTSTRAP")
else
    start_mosquitto
    input=(--set mqtt.url="$MQTT_URL")
    push=(--set mqtt.url="$MQTT_URL" --set buffer.ack=collector --set buffer.ack_timeout=4s)
fi
start_influxd
influx_create_db dsf
CPORT=$(free_port)
collector() { # RUN BATCH-INTERVAL
    bg "collector-$1" "$COLLECTOR" --set id=c1 "${input[@]}" \
        --set output.url="$INFLUX_URL" --set output.db=dsf --set batch.interval="$2" \
        --set batch.lines=1000000 --set batch.bytes=64MiB \
        --set http.listen="127.0.0.1:$CPORT"
    COLLECTOR_PID=$BG_PID
    wait_for 10 curl -sf "http://127.0.0.1:$CPORT/healthz" || fail "collector did not start"
}
# The first run writes every 2 s, so the kill finds messages it took but had not stored.
collector 1 2s
ports=()
agents=()
for vm in load1 load2; do
    p=$(free_port)
    ports+=("$p")
    bg "agent-$vm" "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm=$vm \
        --set interval=1s "${push[@]}" --set http.listen="127.0.0.1:$p" --set privileges.drop=false \
        --set inputs.synthetic.enabled=true --set inputs.synthetic.series=2500 \
        --set inputs.cpu.enabled=false --set inputs.mem.enabled=false \
        --set inputs.swap.enabled=false --set inputs.disk.enabled=false \
        --set inputs.diskio.enabled=false --set inputs.net.enabled=false \
        --set inputs.system.enabled=false --set inputs.processes.enabled=false \
        --set inputs.container.enabled=false
    agents+=("$BG_PID")
done
sleep 5
# Kill when the collector holds points it has taken but not stored yet.
holding() {
    curl -sf "http://127.0.0.1:$CPORT/metrics" >"$WORK/before-kill.txt" &&
        awk '$1 == "damselfly_collector_points_in_total" { i = $2 }
             $1 == "damselfly_collector_points_out_total" { o = $2 }
             END { exit !(i > o) }' "$WORK/before-kill.txt"
}
wait_for 10 holding || fail "the collector never held unstored points"
kill -9 "$COLLECTOR_PID"
taken=$(awk '$1 == "damselfly_collector_points_in_total" { print $2 }' "$WORK/before-kill.txt")
stored=$(awk '$1 == "damselfly_collector_points_out_total" { print $2 }' "$WORK/before-kill.txt")
log "killed the collector with -9 after it took $taken points and stored $stored"
[ "$taken" -gt "$stored" ] || fail "nothing was pending in the collector: the kill proves nothing"
sleep 3
collector 2 200ms
sleep 6
# Stop the agents only once everything they sent is acknowledged (nothing left to resend).
drained() {
    for p in "${ports[@]}"; do
        [ "$(metric "http://127.0.0.1:$p/metrics" damselfly_agent_buffer_messages)" = 0 ] || return 1
    done
}
wait_for 60 drained || fail "agents still hold unacknowledged messages after 60 s"
sent=()
for p in "${ports[@]}"; do sent+=("$(metric "http://127.0.0.1:$p/metrics" damselfly_agent_seq)"); done
resent=0
for p in "${ports[@]}"; do
    resent=$((resent + $(metric "http://127.0.0.1:$p/metrics" damselfly_agent_resent_messages_total)))
done
for pid in "${agents[@]}"; do stop_pid "$pid"; done
log "agents sent ${sent[*]} messages of 2500 points; $resent resent after the kill"
python3 - "$INFLUX_URL" "${sent[@]}" <<'PY' || fail "points missing after kill -9"
import json, sys, time, urllib.parse, urllib.request
url, sent = sys.argv[1], {"load1": int(sys.argv[2]), "load2": int(sys.argv[3])}
def q(text):
    u = url + "/query?" + urllib.parse.urlencode({"db": "dsf", "q": text})
    return json.load(urllib.request.urlopen(u))["results"][0].get("series", [])
want = sum(sent.values()) * 2500
for _ in range(60):  # the collector may still be writing what it read again
    got = q("SELECT count(f0) FROM synthetic")
    if got and got[0]["values"][0][1] >= want:
        break
    time.sleep(1)
series = q('SELECT count(f0) FROM synthetic GROUP BY "vm", "series"')
counts = {}
for s in series:
    counts.setdefault(s["tags"]["vm"], []).append(s["values"][0][1])
bad = 0
for vm, n in sent.items():
    got = counts.get(vm, [])
    assert len(got) == 2500, f"{vm}: {len(got)} series stored, expected 2500"
    short = [c for c in got if c < n]
    bad += len(short)
    print(f"{vm}: 2500 series, each expected {n} points; {len(short)} series short, "
          f"min {min(got)}, max {max(got)}; total {sum(got)} of {n * 2500}")
sys.exit(1 if bad else 0)
PY
log "ok: zero points missing"
