#!/usr/bin/env bash
# Everything the agent emits (every input on) is accepted by a real InfluxDB /write with no
# partial-write error, and queries return the expected series and tags.
. "$(dirname "$0")/lib.sh"

start_influxd
influx_create_db dsf ||
    fail "create database"
PORT=$(free_port)
agent_config "$WORK/agent.json" identity.ns=ns1 identity.mci=mci1 identity.vm=vm1 \
    identity.csp=gcp identity.region="asia east" interval=1s push.mode=off \
    http.listen="127.0.0.1:$PORT" privileges.drop=false \
    inputs.procstat.enabled=true 'inputs.procstat.patterns:=["damselfly-agent","influxd"]' \
    inputs.netlatency.enabled=true "inputs.netlatency.peers:=[\"127.0.0.1:$INFLUX_PORT\",\"127.0.0.1:1\"]"
bg agent "$AGENT" --config "$WORK/agent.json"
wait_for 10 curl -sf "http://127.0.0.1:$PORT/healthz" || fail "agent did not start"
for i in 1 2 3; do
    sleep 1.1
    curl -sf "http://127.0.0.1:$PORT/api/v1/snapshot?format=lp" >"$WORK/batch$i.lp" ||
        fail "snapshot $i"
    code=$(curl -s -o "$WORK/write$i.out" -w '%{http_code}' -XPOST \
        "$INFLUX_URL/write?db=dsf&precision=ns" --data-binary @"$WORK/batch$i.lp")
    [ "$code" = 204 ] || { cat "$WORK/write$i.out"; fail "write $i answered $code"; }
done
lines=$(cat "$WORK"/batch*.lp | wc -l)
log "InfluxDB accepted $lines lines"
for m in cpu mem swap disk diskio net system processes procstat netlatency; do
    grep -q "^$m," "$WORK/batch3.lp" || fail "no $m lines emitted"
done

python3 - "$INFLUX_URL" <<'PY' || fail "queries"
import json, sys, urllib.parse, urllib.request
url = sys.argv[1]
def q(query):
    u = url + "/query?" + urllib.parse.urlencode({"db": "dsf", "q": query})
    res = json.load(urllib.request.urlopen(u))["results"][0]
    assert "error" not in res, res
    return res.get("series", [])
names = {v[0] for v in q("SHOW MEASUREMENTS")[0]["values"]}
for m in ("cpu", "mem", "swap", "disk", "diskio", "net", "system", "processes", "procstat",
          "netlatency"):
    assert m in names, f"{m} not stored: {sorted(names)}"
vals = {v[1] for v in q('SHOW TAG VALUES FROM cpu WITH KEY = "cpu"')[0]["values"]}
assert "cpu-total" in vals and "cpu0" in vals, vals
region = q('SHOW TAG VALUES FROM mem WITH KEY = "region"')[0]["values"][0][1]
assert region == "asia east", region
n = q("SELECT count(usage_idle) FROM cpu WHERE vm='vm1' AND cpu='cpu-total'")[0]["values"][0][1]
assert n == 3, f"{n} cpu-total points, expected 3"
total = q("SELECT last(total) FROM mem")[0]["values"][0][1]
mt = [int(l.split()[1]) * 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal:")][0]
assert total == mt, (total, mt)
ok = q("SELECT last(success) FROM netlatency GROUP BY peer")
by_peer = {s["tags"]["peer"]: s["values"][0][1] for s in ok}
assert list(by_peer.values()).count(1) == 1 and list(by_peer.values()).count(0) == 1, by_peer
procs = q('SHOW TAG VALUES FROM procstat WITH KEY = "process_name"')
assert procs, "no procstat series"
print("series and tags as expected")
PY
