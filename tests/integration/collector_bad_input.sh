#!/usr/bin/env bash
# Bad input: random bytes, a truncated batch, a 10 MB line, invalid UTF-8 in tags, a tag that
# contradicts the topic, a line without timestamp. Each bad line is rejected with a reason,
# counted and published on the DLQ; the good lines of the same batches are stored and the
# collector stays up.
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
start_mosquitto
start_influxd
influx_create_db dsf
CPORT=$(free_port)
bg dlq mosquitto_sub -V 5 -p "$MQTT_PORT" -t dsf/dlq -F '%p'
bg collector "$COLLECTOR" --set id=c1 --set mqtt.url="$MQTT_URL" --set output.url="$INFLUX_URL" \
    --set output.db=dsf --set batch.interval=200ms --set http.listen="127.0.0.1:$CPORT"
wait_for 10 curl -sf "http://127.0.0.1:$CPORT/healthz" || fail "collector did not start"
sleep 0.5
T="dsf/m/$(bucket ns1/mci1/bad1 64)/ns1/mci1/bad1"
now=$(date +%s%N)
send() { mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -t "$1" -f "$2" -D publish user-property fmt lp; }

python3 - "$WORK" "$now" <<'PY'
import os, sys
work, now = sys.argv[1], int(sys.argv[2])
good = lambda i: f"good,ns=ns1,mci=mci1,vm=bad1,k=v{i} x={i}i {now + i}\n".encode()
open(f"{work}/random.bin", "wb").write(os.urandom(4096))
open(f"{work}/truncated.lp", "wb").write(good(1) + good(2) + b"trunc,ns=ns1 x=1")
open(f"{work}/huge.lp", "wb").write(good(3) + b"huge,k=v x=\"" + b"a" * (10 << 20) + b"\" 1\n" + good(4))
open(f"{work}/utf8.lp", "wb").write(good(5) + b"bad,host=\xff\xfe x=1 1\n" + good(6))
open(f"{work}/mixed.lp", "wb").write(
    good(7) + b"other,vm=somebody-else x=1 1\n" + b"nots x=1\n" + b"m f=1.2.3 1\n" + good(8))
PY
send "$T" "$WORK/random.bin"
send "$T" "$WORK/truncated.lp"
send "$T" "$WORK/huge.lp"
send "$T" "$WORK/utf8.lp"
send "$T" "$WORK/mixed.lp"
printf 'good,k=v9 x=9i %s\n' "$((now + 9))" >"$WORK/badtopic.lp"
send dsf/m/7/only/two "$WORK/badtopic.lp"
sleep 2
curl -sf "http://127.0.0.1:$CPORT/healthz" >/dev/null || fail "the collector died"
curl -sf "http://127.0.0.1:$CPORT/metrics" >"$WORK/metrics.txt"
grep -E '^damselfly_collector_(points|dlq)' "$WORK/metrics.txt"
python3 - "$INFLUX_URL" "$WORK/metrics.txt" "$WORK/dlq.log" <<'PY' || fail "bad input handling"
import json, sys, urllib.parse, urllib.request
url, metrics, dlq = sys.argv[1:]
m = dict(l.rsplit(" ", 1) for l in open(metrics) if l[0] != "#")
rejected = int(float(m["damselfly_collector_points_rejected_total"]))
published = int(float(m['damselfly_collector_dlq_total{result="published"}']))
reasons = [json.loads(l)["reason"] for l in open(dlq) if l.strip()]
for want in ("invalid UTF-8", "longer than", "disagrees with the topic", "no timestamp",
             "invalid field value", "topic is not"):
    assert any(want in r for r in reasons), f"no DLQ reason mentions {want!r}: {reasons}"
assert rejected == published == len(reasons), (rejected, published, len(reasons))
q = urllib.parse.urlencode({"db": "dsf", "q": "SELECT count(x) FROM good"})
count = json.load(urllib.request.urlopen(url + "/query?" + q))["results"][0]["series"][0]["values"][0][1]
assert count == 8, f"{count} good lines stored, expected 8"
print(f"{rejected} lines rejected, all on the DLQ with a reason; the 8 good lines stored")
PY
log "ok"
