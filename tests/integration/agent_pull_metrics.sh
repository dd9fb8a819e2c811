#!/usr/bin/env bash
# Pull endpoint: /metrics passes promtool and agrees with /proc; /api/v1/snapshot is a fresh
# collection in JSON (or line protocol); /healthz answers; bearer auth and TLS work.
. "$(dirname "$0")/lib.sh"

PORT=$(free_port)
agent_config "$WORK/agent.json" identity.ns=ns1 identity.mci=mci1 identity.vm=vm1 interval=1s \
    push.mode=off http.listen="127.0.0.1:$PORT" privileges.drop=false inputs.net.ignore_lo=false
bg agent "$AGENT" --config "$WORK/agent.json"
URL="http://127.0.0.1:$PORT"
wait_for 10 curl -sf "$URL/healthz" || fail "no /healthz"
sleep 2.5 # two cycles: rates and CPU percentages need a previous reading

curl -sf "$URL/metrics" >"$WORK/metrics.txt" || fail "GET /metrics"
# promtool's only complaint may be node_exporter's own CamelCase memory names (it says the
# same of node_exporter); anything else fails the test.
promtool check metrics <"$WORK/metrics.txt" >"$WORK/promtool.out" 2>&1 || true
if grep -v -e '^node_memory_[A-Za-z0-9_]* .*snake_case' -e '^$' "$WORK/promtool.out" | grep -q .; then
    cat "$WORK/promtool.out"
    fail "promtool check metrics"
fi
python3 - "$WORK/metrics.txt" <<'PY' || fail "/metrics disagrees with /proc"
import os, re, sys
text = open(sys.argv[1]).read()
def value(name, labels=""):
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    if not m:
        sys.exit(f"missing {name}{labels}")
    return float(m.group(1))
meminfo = {l.split(":")[0]: int(l.split()[1]) * 1024 for l in open("/proc/meminfo") if "kB" in l}
assert value("node_memory_MemTotal_bytes") == meminfo["MemTotal"], "MemTotal"
tick = os.sysconf("SC_CLK_TCK")
stat = open("/proc/stat").read().split("\n")
for line in stat:
    if line.startswith("cpu0 "):
        user = int(line.split()[1]) / tick
got = value("node_cpu_seconds_total", '{cpu="0",mode="user"}')
assert 0 <= user - got < 5, f"cpu0 user seconds {got} vs /proc {user}"
for line in open("/proc/net/dev"):
    if line.strip().startswith("lo:"):
        rx = int(line.split(":")[1].split()[0])
got = value("node_network_receive_bytes_total", '{device="lo"}')
assert 0 <= rx - got < 50_000_000, f"lo bytes {got} vs /proc {rx}"
assert value("node_load1") >= 0
assert value("damselfly_agent_cycles_total") >= 2
print("metrics agree with /proc")
PY

curl -sf "$URL/api/v1/snapshot" >"$WORK/snapshot.json" || fail "GET /api/v1/snapshot"
python3 - "$WORK/snapshot.json" <<'PY' || fail "snapshot"
import json, sys, time
points = json.load(open(sys.argv[1]))
names = {p["name"] for p in points}
for want in ("cpu", "mem", "disk", "net", "system", "processes"):
    assert want in names, f"no {want} in the snapshot: {sorted(names)}"
for p in points:
    assert p["tags"]["vm"] == "vm1" and p["tags"]["ns"] == "ns1", p["tags"]
    assert abs(p["timestamp"] / 1e9 - time.time()) < 30, "stale timestamp"
print(len(points), "points in the snapshot")
PY
curl -sf "$URL/api/v1/snapshot?format=lp" >"$WORK/snapshot.lp" || fail "GET snapshot?format=lp"
grep -q '^mem,ns=ns1,mci=mci1,vm=vm1' "$WORK/snapshot.lp" || fail "line-protocol snapshot"
curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/metrics" | grep -q 405 || fail "POST not 405"
curl -s -o /dev/null -w '%{http_code}' "$URL/nope" | grep -q 404 || fail "unknown path not 404"
stop_pid "$BG_PID"

log "bearer token and TLS"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1
PORT=$(free_port)
bg agent-tls "$AGENT" --config "$WORK/agent.json" --set http.listen="127.0.0.1:$PORT" \
    --set http.token=s3cret --set http.tls_cert="$WORK/cert.pem" --set http.tls_key="$WORK/key.pem"
URL="https://127.0.0.1:$PORT"
wait_for 10 curl -sfk "$URL/healthz" || fail "no /healthz over TLS"
code=$(curl -sk -o /dev/null -w '%{http_code}' "$URL/metrics")
[ "$code" = 401 ] || fail "no token gave $code, expected 401"
code=$(curl -sk -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' "$URL/metrics")
[ "$code" = 401 ] || fail "a wrong token gave $code, expected 401"
curl -sf --cacert "$WORK/cert.pem" -H 'Authorization: Bearer s3cret' "$URL/metrics" \
    >"$WORK/tls-metrics.txt" || fail "GET /metrics with the token over verified TLS"
grep -q '^node_load1 ' "$WORK/tls-metrics.txt" || fail "no node_load1 in the metrics over TLS"
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && fail "plain HTTP answered on the TLS port"
stop_pid "$BG_PID"

log "basic auth"
PORT=$(free_port)
bg agent-basic "$AGENT" --config "$WORK/agent.json" --set http.listen="127.0.0.1:$PORT" \
    --set http.username=ops --set http.password='pa:ss w0rd'
URL="http://127.0.0.1:$PORT"
wait_for 10 curl -sf "$URL/healthz" || fail "no /healthz with basic auth"
code=$(curl -s -o /dev/null -w '%{http_code}' -u ops:wrong "$URL/api/v1/snapshot")
[ "$code" = 401 ] || fail "a wrong password gave $code, expected 401"
curl -sf -u 'ops:pa:ss w0rd' "$URL/api/v1/snapshot" >"$WORK/basic.json" || fail "basic auth refused"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))' "$WORK/basic.json" || fail "basic"
log "ok"
