#!/usr/bin/env bash
# Aggregation across a bucket move: collectors c1 and c2 fold the same agent's samples into
# 10 s windows; in the middle of a window its bucket moves from c1 to c2 as the balancer does
# it (give to c2, wait for c2's heartbeat with that epoch, take from c1). c1 discards its open
# windows and leaves their messages unacked, the agent resends them after its ack_timeout, c2
# holds the windows that started before it gained the bucket until they came. The store must
# hold exactly one point per window and series whose count is what the agent sent in that
# window (every sample the agent published, resends counted once): no window short, none
# doubled, none written twice.
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
start_mosquitto
start_influxd
influx_create_db dsf
VM=vm-h
B=$(bucket "ns1/mci1/$VM" 64)
# Every sample the agent publishes (resends included) as the reference.
bg sub mosquitto_sub -V 5 -p "$MQTT_PORT" -q 1 -t "dsf/m/$B/#" -F '%p'
declare -A CPORT
for id in c1 c2; do
    bg hb-$id mosquitto_sub -V 5 -p "$MQTT_PORT" -t "dsf/c/$id/hb" -F '%p'
    CPORT[$id]=$(free_port)
    bg "collector-$id" "$COLLECTOR" --set id=$id --set mqtt.url="$MQTT_URL" \
        --set mqtt.follow_assign=true --set heartbeat=300ms \
        --set output.url="$INFLUX_URL" --set output.db=dsf --set batch.interval=200ms \
        --set http.listen="127.0.0.1:${CPORT[$id]}" --set aggregate.grace=2s \
        --set aggregate.rules="synthetic window=10s f0=count f1=sum"
    eval "PID_$id=$BG_PID"
    wait_for 10 curl -sf "http://127.0.0.1:${CPORT[$id]}/healthz" || fail "$id did not start"
done
epoch() { date +%s%3N; }
assign() { mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -r -t "dsf/c/$1/assign" -m "$2"; }
hb_epoch_at_least() { # ID EPOCH
    tail -n 1 "$WORK/hb-$1.log" | python3 -c 'import json,sys; sys.exit(json.loads(sys.stdin.read())["epoch"] < int(sys.argv[1]))' "$2"
}
E=$(epoch)
assign c1 "{\"epoch\":$E,\"buckets\":[$B]}"
assign c2 "{\"epoch\":$E,\"buckets\":[]}"
wait_for 5 hb_epoch_at_least c1 "$E" || fail "c1 did not apply epoch $E"
wait_for 5 hb_epoch_at_least c2 "$E" || fail "c2 did not apply epoch $E"

APORT=$(free_port)
bg agent "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm="$VM" \
    --set interval=1s --set mqtt.url="$MQTT_URL" --set buffer.ack=collector \
    --set buffer.ack_timeout=10s --set http.listen="127.0.0.1:$APORT" \
    --set privileges.drop=false --set inputs.synthetic.enabled=true \
    --set inputs.synthetic.series=3 --set inputs.cpu.enabled=false \
    --set inputs.mem.enabled=false --set inputs.swap.enabled=false \
    --set inputs.disk.enabled=false --set inputs.diskio.enabled=false \
    --set inputs.net.enabled=false --set inputs.system.enabled=false \
    --set inputs.processes.enabled=false --set inputs.container.enabled=false
AGENT_PID=$BG_PID
# Run a full window on c1, then move in the middle of the next one (5 s in).
sleep 12
mid_window() { [ $(( $(date +%s) % 10 )) = 5 ]; }
wait_for 11 mid_window || fail "clock"
E1=$(epoch)
assign c2 "{\"epoch\":$E1,\"buckets\":[$B]}"
wait_for 5 hb_epoch_at_least c2 "$E1" || fail "c2 did not confirm epoch $E1"
E2=$(epoch)
assign c1 "{\"epoch\":$E2,\"buckets\":[]}"
wait_for 5 hb_epoch_at_least c1 "$E2" || fail "c1 did not apply epoch $E2"
log "bucket $B moved from c1 to c2 in the middle of a window (epochs $E1, $E2)"

# Past the hand-over (the resends come after 10 s, c2 holds for 15 s) and two more windows.
sleep 30
handed=$(metric "http://127.0.0.1:${CPORT[c1]}/metrics" damselfly_collector_aggregate_handed_over_total)
[ "$handed" -gt 0 ] || fail "c1 handed over no open window: the move was not in a window"
stop_pid "$AGENT_PID"
sleep 1
stop_pid "$PID_c2" # writes its open windows
stop_pid "$PID_c1"
log "c1 handed over $handed samples; checking the store"

curl -sf -G "$INFLUX_URL/query" --data-urlencode db=dsf --data-urlencode epoch=ns \
    --data-urlencode 'q=SELECT f0, f1 FROM synthetic GROUP BY "series"' >"$WORK/stored.json"
python3 - "$WORK/sub.log" "$WORK/stored.json" <<'PY' || fail "windows differ from what the agent sent"
import json, sys, collections
samples = {}  # (series, ts) -> f1: resends are the same line, counted once
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("synthetic,"):
        continue
    head, fields, ts = line.rsplit(" ", 2)
    tags = dict(kv.split("=", 1) for kv in head.split(",")[1:])
    f = dict(kv.split("=", 1) for kv in fields.split(","))
    samples[(tags["series"], int(ts))] = float(f["f1"])
want = collections.defaultdict(lambda: [0, 0.0])
for (series, ts), f1 in samples.items():
    w = want[(series, ts - ts % 10_000_000_000)]
    w[0] += 1
    w[1] += f1
got = {}
for s in json.load(open(sys.argv[2]))["results"][0].get("series", []):
    for t, f0, f1 in s["values"]:
        got[(s["tags"]["series"], t)] = (f0, f1)
bad = 0
for key in sorted(set(want) | set(got)):
    w, g = want.get(key), got.get(key)
    ok = w and g and g[0] == w[0] and abs(g[1] - w[1]) < 1e-6 * max(1.0, abs(w[1]))
    if not ok:
        bad += 1
        print(f"window {key}: sent {w}, stored {g}")
print(f"{len(samples)} samples sent in {len(want)} windows x series; {len(got)} stored; {bad} differ")
sys.exit(1 if bad or not want else 0)
PY
log "ok: one complete point per window and series across the move"
