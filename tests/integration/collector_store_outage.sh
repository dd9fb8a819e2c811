#!/usr/bin/env bash
# InfluxDB stopped under load (2 agents x 1,000 points/s over MQTT), then started again on the
# same port and data. The mode (first argument) says where unstored data waits meanwhile:
#   memory     no spool: the collector retries with backoff and does not ack, so the agents
#              keep every message (30 s outage): zero points missing;
#   spool      spool.dir set: failed batches go to disk and are acked, the agents' buffers
#              empty, the spool is replayed once the store is back (30 s): zero points missing;
#   spool_cap  the spool is far too small for the outage (10 s): the oldest spooled batches
#              are dropped, and damselfly_collector_spool_dropped_points_total equals the
#              number of points missing in the store;
#   kafka      the agents push to Kafka and batch.max_pending is small (30 s): the collector
#              pauses fetching instead of refusing messages, refuses none, and resumes once
#              the store is back: zero points missing.
. "$(dirname "$0")/lib.sh"

MODE=${1:-memory}
COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
OUTAGE=30
spool_args=()
case "$MODE" in
memory) ;;
spool) spool_args=(--set spool.dir="$WORK/spool") ;;
spool_cap)
    OUTAGE=10
    spool_args=(--set spool.dir="$WORK/spool" --set spool.max_bytes=1MiB --set spool.fsync=false)
    ;;
kafka) ;;
*) fail "unknown mode $MODE" ;;
esac
if [ "$MODE" = kafka ]; then
    start_kafka_mock kafka --topic dsf.metrics:64
    input_args=(--set input=kafka --set kafka.brokers="$BOOTSTRAP" --set batch.max_pending=2MiB)
    push_args=(--set push.mode=kafka --set kafka.brokers="$BOOTSTRAP")
else
    start_mosquitto
    input_args=(--set mqtt.url="$MQTT_URL")
    push_args=(--set mqtt.url="$MQTT_URL" --set buffer.ack=collector)
fi
start_influxd
influx_create_db dsf
CPORT=$(free_port)
CMETRICS="http://127.0.0.1:$CPORT/metrics"
bg collector "$COLLECTOR" --set id=c1 "${input_args[@]}" --set output.url="$INFLUX_URL" \
    --set output.db=dsf --set batch.interval=200ms --set batch.lines=1000 \
    --set output.max_backoff=2s --set http.listen="127.0.0.1:$CPORT" "${spool_args[@]}"
wait_for 10 curl -sf "http://127.0.0.1:$CPORT/healthz" || fail "collector did not start"
ports=()
agents=()
for vm in load1 load2; do
    p=$(free_port)
    ports+=("$p")
    bg "agent-$vm" "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm=$vm \
        --set interval=1s "${push_args[@]}" \
        --set http.listen="127.0.0.1:$p" --set privileges.drop=false \
        --set inputs.synthetic.enabled=true --set inputs.synthetic.series=1000 \
        --set inputs.cpu.enabled=false --set inputs.mem.enabled=false \
        --set inputs.swap.enabled=false --set inputs.disk.enabled=false \
        --set inputs.diskio.enabled=false --set inputs.net.enabled=false \
        --set inputs.system.enabled=false --set inputs.processes.enabled=false \
        --set inputs.container.enabled=false
    agents+=("$BG_PID")
done
agent_held() {
    local total=0 p
    for p in "${ports[@]}"; do
        total=$((total + $(metric "http://127.0.0.1:$p/metrics" damselfly_agent_buffer_messages)))
    done
    echo "$total"
}
sleep 4
if [ "$MODE" = spool_cap ]; then
    # A store stopped in the middle of a write may keep what it answers as failed: that batch
    # is then spooled, dropped and counted although it is stored. To check the counter
    # exactly, the store is stopped between writes: agents paused, nothing pending.
    for pid in "${agents[@]}"; do kill -STOP "$pid"; done
    nothing_pending() { [ "$(metric "$CMETRICS" damselfly_collector_pending_bytes)" = 0 ]; }
    wait_for 10 nothing_pending || fail "the collector still has writes pending"
fi
log "stopping InfluxDB for $OUTAGE s ($MODE)"
stop_pid "$INFLUXD_PID"
[ "$MODE" != spool_cap ] || for pid in "${agents[@]}"; do kill -CONT "$pid"; done
sleep "$OUTAGE"
retries=$(metric "$CMETRICS" damselfly_collector_retries_total)
held=$(agent_held)
log "after the outage: $retries retries, agents hold $held unacknowledged messages"
if [ "$MODE" = memory ]; then
    [ "$retries" -gt 0 ] || fail "the collector did not retry while the store was away"
    [ "$held" -gt 10 ] || fail "the agents should hold the unstored messages, they hold $held"
elif [ "$MODE" = kafka ]; then
    [ "$(metric "$CMETRICS" damselfly_collector_input_pauses_total)" -gt 0 ] ||
        fail "the collector did not pause Kafka fetching while the store was away"
else
    spooled=$(metric "$CMETRICS" damselfly_collector_spooled_points_total)
    [ "$spooled" -gt 0 ] || fail "nothing was spooled while the store was away"
    # Spooled batches are acked: the agents hold at most the last few seconds' messages.
    [ "$held" -le 8 ] || fail "agents hold $held messages although the collector spools"
fi
bg influxd-again influxd run -config "$WORK/influxdb/influxdb.conf"
wait_for 30 curl -sf "$INFLUX_URL/ping" || fail "influxd did not come back"
# stop_agents: reads each agent's last seq and stops it between two cycles (ticks are
# aligned to the second), so no message goes out after its seq was read.
stop_agents() {
    until python3 -c 'import time,sys; sys.exit(not 0.2 < time.time() % 1 < 0.5)'; do sleep 0.05; done
    sent=()
    for p in "${ports[@]}"; do sent+=("$(metric "http://127.0.0.1:$p/metrics" damselfly_agent_seq)"); done
    for pid in "${agents[@]}"; do kill "$pid"; done
    for pid in "${agents[@]}"; do wait "$pid" 2>/dev/null || true; done
}
if [ "$MODE" = kafka ]; then
    sleep 5
    stop_agents
    all_stored() {
        [ "$(metric "$CMETRICS" damselfly_collector_points_out_total)" -ge $(((sent[0] + sent[1]) * 1000)) ]
    }
    wait_for 120 all_stored || fail "the collector did not catch up within 120 s"
    refused=$(metric "$CMETRICS" damselfly_collector_dropped_points_total 'reason="pending_full"')
    [ "$refused" = 0 ] || fail "the collector refused $refused Kafka points instead of pausing"
else
    drained() {
        [ "$(agent_held)" = 0 ] || return 1
        [ "$MODE" = memory ] || [ "$(metric "$CMETRICS" damselfly_collector_spool_batches)" = 0 ]
    }
    wait_for 90 drained || fail "data still waits (agents or spool) 90 s after the store returned"
    stop_agents
fi
sleep 1 # the last acked batches are stored before the acks go out; give the query a moment
dropped=0
case "$MODE" in spool*) dropped=$(metric "$CMETRICS" damselfly_collector_spool_dropped_points_total) ;; esac
[ "$MODE" = spool_cap ] && [ "$dropped" -eq 0 ] && fail "the small spool dropped nothing"
[ "$MODE" = spool ] && [ "$dropped" -ne 0 ] && fail "the spool dropped $dropped points"
python3 - "$INFLUX_URL" "$dropped" "${sent[@]}" <<'PY' || fail "points missing do not match"
import json, sys, urllib.parse, urllib.request
url, dropped = sys.argv[1], int(sys.argv[2])
sent = {"load1": int(sys.argv[3]), "load2": int(sys.argv[4])}
u = url + "/query?" + urllib.parse.urlencode(
    {"db": "dsf", "q": 'SELECT count(f0) FROM synthetic GROUP BY "vm", "series"'})
counts = {}
for s in json.load(urllib.request.urlopen(u))["results"][0]["series"]:
    counts.setdefault(s["tags"]["vm"], []).append(s["values"][0][1])
missing = 0
for vm, n in sent.items():
    got = counts.get(vm, [])
    assert len(got) == 1000, f"{vm}: {len(got)} series"
    missing += sum(n - c for c in got)
    print(f"{vm}: 1000 series, {n} points expected each; min {min(got)}; {sum(got)} stored")
print(f"points missing: {missing}; counted as dropped: {dropped}")
sys.exit(0 if missing == dropped else 1)
PY
log "ok: points missing equal the drop counter ($dropped)"
