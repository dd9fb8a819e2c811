#!/usr/bin/env bash
# Detection latency of damselfly-alarm: from a sample's own timestamp to the receiver's
# receipt of the notification, over N crossings (default 1,000), with for: 0 and
# group_wait: 0. Each crossing is a fresh VM whose one sample is over the threshold, published
# over MQTT right after it is stamped (as the agent publishes right after it samples); the
# webhook receiver is a local HTTP sink. Also prints sample -> event on the bus.
# Usage: bench/alarm_latency.sh [N [GAP_MS]]  (default 1000 5); BUILD=dir reuses a build;
#        NOTIFY_CONFIG= (empty) runs without the notifier, STATE_DIR=dir puts the state there.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-1000} GAP=${2:-5}
BUILD=${BUILD:-$SRC/build-bench/release}
for tool in mosquitto mosquitto_sub python3; do
    command -v $tool >/dev/null || { echo "missing $tool: run scripts/install-deps.sh" >&2; exit 2; }
done
echo "building (Release) in $BUILD..." >&2
{ cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DDAMSELFLY_TESTS=ON &&
    cmake --build "$BUILD" -j "$(nproc)" --target damselfly-alarm dsf-alarm-latency-pub; } \
    >/dev/null || { echo "build failed" >&2; exit 1; }
export DSF_BUILD=$BUILD DSF_SRC=$SRC
. "$SRC/tests/integration/lib.sh"

start_mosquitto
SINK_PORT=$(free_port)
# The receiver: stamps each request on arrival, before reading its body.
bg sink python3 -c '
import http.server, json, sys, time
out = open(sys.argv[2], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        t = time.time_ns()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        for a in body["alerts"]:
            if a["status"] == "firing":
                out.write("%s %d\n" % (a["labels"]["vm"], t))
        self.send_response(200)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$SINK_PORT" "$WORK/received.txt"
wait_for 10 port_open "$SINK_PORT" || fail "sink did not start"
mkdir -p "$WORK/rules" "$WORK/state"
echo '{"name":"lat","select":{"measurement":"lat","field":"v"},"crit":90,"for":0}' \
    >"$WORK/rules/lat.json"
cat >"$WORK/notify.json" <<JSON
{"route": {"receiver": "hook", "group_by": ["alertname", "vm"], "group_wait": "0s",
           "group_interval": "1m", "repeat_interval": "1h"},
 "receivers": [{"name": "hook", "webhook_configs": [{"url": "http://127.0.0.1:$SINK_PORT/"}]}]}
JSON
APORT=$(free_port)
bg alarm "$BUILD/alarm/damselfly-alarm" --set mqtt.url="$MQTT_URL" --set rules.dir="$WORK/rules" \
    --set state.dir="${STATE_DIR:-$WORK/state}" --set notify.config="${NOTIFY_CONFIG-$WORK/notify.json}" \
    --set http.listen="127.0.0.1:$APORT" --set log_level=warn
wait_for 10 sh -c "curl -sf http://127.0.0.1:$APORT/healthz | grep -q '\"connected\":true'" ||
    fail "the engine did not start"
bg sub-events mosquitto_sub -p "$MQTT_PORT" -t 'dsf/alarm/#' -F '%U %p'
# The transport alone: the same samples as a plain subscriber sees them.
bg sub-samples mosquitto_sub -p "$MQTT_PORT" -t 'dsf/m/#' -F '%U %t'
sleep 1
echo "$N crossings, $GAP ms apart..." >&2
"$BUILD/alarm/dsf-alarm-latency-pub" "$MQTT_URL" "$N" "$GAP" >"$WORK/sent.txt"
[ -z "${NOTIFY_CONFIG-x}" ] || wait_for 30 sh -c "[ \$(wc -l <'$WORK/received.txt') -ge $N ]" ||
    echo "only $(wc -l <"$WORK/received.txt") of $N notifications arrived" >&2
sleep 1
lag_sum=$(metric "http://127.0.0.1:$APORT/metrics" damselfly_alarm_detection_lag_seconds_sum)
lag_n=$(metric "http://127.0.0.1:$APORT/metrics" damselfly_alarm_detection_lag_seconds_count)
python3 - "$WORK/sent.txt" "$WORK/received.txt" "$WORK/sub-events.log" "$WORK/sub-samples.log" <<'PY'
import json, sys
sent = dict(l.split() for l in open(sys.argv[1]))
def stats(name, lat):
    if not lat:
        print("  %-34s none" % name)
        return
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print("  %-34s n=%d  p50 %.2f ms  p99 %.2f ms  max %.2f ms" % (name, len(lat), q(0.5), q(0.99), lat[-1]))
rx = {}
for l in open(sys.argv[2]):
    vm, t = l.split()
    rx.setdefault(vm, int(t))
bus = {}
for l in open(sys.argv[3]):
    t, payload = l.split(" ", 1)
    e = json.loads(payload)
    if e["state"] == "firing":
        bus.setdefault(e["group"]["vm"], float(t) * 1e9)
raw = {}
for l in open(sys.argv[4]):
    t, topic = l.split()
    raw.setdefault(topic.rsplit("/", 1)[1], float(t) * 1e9)
print("alarm_latency: %d crossings, for: 0, group_wait: 0" % len(sent))
stats("sample -> plain MQTT subscriber", [(raw[v] - int(t)) / 1e6 for v, t in sent.items() if v in raw])
stats("sample -> webhook receiver", [(rx[v] - int(t)) / 1e6 for v, t in sent.items() if v in rx])
stats("sample -> event on the bus", [(bus[v] - int(t)) / 1e6 for v, t in sent.items() if v in bus])
missing = len(sent) - len(rx)
if missing and rx:
    print("  %d notifications missing" % missing)
PY
python3 -c "print('  %-34s mean %.2f ms over %d events' % ('sample -> event, engine-measured', $lag_sum / max($lag_n, 1) * 1e3, $lag_n))"
