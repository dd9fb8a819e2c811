#!/usr/bin/env bash
# Transparency: a corpus of tricky line protocol (tests/data/lp_transparency.lp: escapes in
# measurement, tag and field keys and values, unicode, every value type, integer and float
# extremes, timestamp extremes) plus long strings, published on an agent's topic through
# mosquitto and the collector into one database, and written straight to InfluxDB into
# another: every query gives identical results. The one line InfluxDB 1.x refuses (unsigned
# integers) is refused either way and lands in the collector's DLQ as it was sent. The
# collector's database has a name that must be escaped in the write URL.
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
start_mosquitto
start_influxd
VIA='dsf test&x=1 #é'
influx_create_db direct
curl -sf -XPOST "$INFLUX_URL/query" --data-urlencode "q=CREATE DATABASE \"$VIA\"" >/dev/null ||
    fail "create database $VIA"
CPORT=$(free_port)
bg dlq mosquitto_sub -V 5 -p "$MQTT_PORT" -t dsf/dlq -F '%p'
bg collector "$COLLECTOR" --set id=c1 --set mqtt.url="$MQTT_URL" --set output.url="$INFLUX_URL" \
    --set output.db="$VIA" --set batch.interval=200ms --set http.listen="127.0.0.1:$CPORT" \
    --set internal.interval=0 # its own counters (dsf_internal) would be a difference
wait_for 10 curl -sf "http://127.0.0.1:$CPORT/healthz" || fail "collector did not start"
sleep 0.5

# The corpus, plus long strings (up to just under the 64 KiB line limit) with escapes and
# multi-byte characters; each line is also written straight to InfluxDB on its own.
python3 - "$DSF_SRC/tests/data/lp_transparency.lp" "$WORK" "$INFLUX_URL" <<'PY' || fail "direct write"
import json, sys, urllib.error, urllib.request
corpus, work, url = sys.argv[1:4]
text = open(corpus, encoding="utf-8").read()
unit = 'ab\\"c, d=é🦋 '
for i, n in enumerate((1000, 20000, 60000)):
    s = (unit * (n // len(unit.encode()) + 1))
    while len(s.encode()) > n:
        s = s[:-1]
    if s.endswith("\\"):
        s = s[:-1]
    text += f'long,ns=ns1,mci=mci1,vm=vm1,n={n} s="{s}",n={n}i {1700000000000000080 + i}\n'
open(f"{work}/payload.lp", "w", encoding="utf-8").write(text)
lines = [l for l in text.split("\n") if l and not l.startswith("#")]
refused = []
for line in lines:
    req = urllib.request.Request(url + "/write?db=direct&precision=ns", data=line.encode())
    try:
        urllib.request.urlopen(req).read()
    except urllib.error.HTTPError as e:
        refused.append(line)
        print(f"InfluxDB refuses: {line[:80]}: {e.read()[:100]!r}")
json.dump({"lines": len(lines), "refused": refused}, open(f"{work}/direct.json", "w"))
print(f"{len(lines)} lines, {len(refused)} refused by InfluxDB")
PY

B=$(bucket ns1/mci1/vm1 64)
mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -t "dsf/m/$B/ns1/mci1/vm1" -f "$WORK/payload.lp" \
    -D publish user-property fmt lp -D publish user-property seq 1 \
    -D publish user-property boot 000000000000a0f1 || fail "publishing the corpus failed"
total=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lines"])' "$WORK/direct.json")
handled() {
    local out rej
    out=$(metric "http://127.0.0.1:$CPORT/metrics" damselfly_collector_points_out_total) || return 1
    rej=$(metric "http://127.0.0.1:$CPORT/metrics" damselfly_collector_points_rejected_total) ||
        return 1
    [ $(( ${out%.*} + ${rej%.*} )) -ge "$total" ]
}
wait_for 20 handled || fail "the collector did not write or reject all $total lines"
sleep 0.5
grep -E '^damselfly_collector_(points|dlq)' <(curl -sf "http://127.0.0.1:$CPORT/metrics")

python3 - "$INFLUX_URL" "$WORK" "$VIA" <<'PY' || fail "query results differ between the databases"
import json, sys, urllib.parse, urllib.request
url, work, via_db = sys.argv[1:4]
def query(db, q):
    u = url + "/query?" + urllib.parse.urlencode({"db": db, "q": q, "epoch": "ns"})
    return json.load(urllib.request.urlopen(u))["results"]
bad = 0
for q in ("SHOW MEASUREMENTS", "SHOW SERIES", "SHOW TAG KEYS", "SHOW FIELD KEYS",
          "SELECT * FROM /.*/ GROUP BY *"):
    via, direct = query(via_db, q), query("direct", q)
    n = sum(len(s["values"]) for s in direct[0].get("series", []))
    if via != direct or n == 0:
        bad += 1
        print(f"{q}: differs (or is empty)")
        print("  via:   ", json.dumps(via)[:600])
        print("  direct:", json.dumps(direct)[:600])
    else:
        print(f"{q}: identical ({n} rows)")
# What InfluxDB refused directly is exactly what the collector's DLQ holds, byte for byte.
refused = json.load(open(f"{work}/direct.json"))["refused"]
dlq = [json.loads(l)["line"] for l in open(f"{work}/dlq.log") if l.strip()]
if sorted(dlq) != sorted(refused):
    bad += 1
    print(f"DLQ {dlq!r} is not what InfluxDB refused {refused!r}")
sys.exit(1 if bad else 0)
PY
log "ok"
