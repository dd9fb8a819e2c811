#!/usr/bin/env bash
# The collector's HTTP intakes over TLS (http.tls_cert, http.tls_key): curl trusting the
# certificate writes line protocol to /write, Debian's vmagent (-remoteWrite.tlsCAFile)
# pushes a real node_exporter's samples to /api/v1/write; both are stored. Plain http to the
# TLS port gets nothing in, a client that does not trust the certificate stops at the
# handshake, and a trusted client without the token is still refused (401).
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
command -v vmagent >/dev/null || fail "vmagent is missing (Debian package victoria-metrics)"
command -v prometheus-node-exporter >/dev/null || fail "prometheus-node-exporter is missing"
start_mosquitto
start_influxd
influx_create_db dsf
loopback_cert
CPORT=$(free_port)
TOKEN=tls-intake-$RANDOM$RANDOM$RANDOM
BASE="https://127.0.0.1:$CPORT"
bg collector "$COLLECTOR" --set id=c1 --set mqtt.url="$MQTT_URL" --set output.url="$INFLUX_URL" \
    --set output.db=dsf --set batch.interval=200ms --set http.listen="127.0.0.1:$CPORT" \
    --set http.token="$TOKEN" --set intake.influx=true --set intake.remote_write=true \
    --set http.tls_cert="$WORK/cert.pem" --set http.tls_key="$WORK/key.pem"
wait_for 10 curl -sf --cacert "$WORK/cert.pem" "$BASE/healthz" || fail "the collector did not start over https"

# points MEASUREMENT: the number of points of MEASUREMENT stored.
points() {
    influx_query dsf "SELECT count(value) FROM \"$1\"" | python3 -c '
import json, sys
r = json.load(sys.stdin)["results"][0]
print(r["series"][0]["values"][0][1] if "series" in r else 0)'
}
has_points() { [ "$(points "$1")" -ge "$2" ]; }
# write URL BODY CURL_ARGS...: the HTTP status (000: no HTTP answer) and curl's exit status.
write() {
    local url=$1 body=$2 rc=0 status
    shift 2
    status=$(curl -s -o "$WORK/answer" -w '%{http_code}' --max-time 10 -XPOST \
        --data-binary "$body" "$@" "$url") || rc=$?
    echo "$status $rc"
}
LINES=$'tls_probe,ns=ns1,mci=mci1,vm=vm1 value=1 1700000000000000000\ntls_probe,ns=ns1,mci=mci1,vm=vm1 value=2 1700000001000000000'

log "/write over https with the certificate trusted: 204, stored"
got=$(write "$BASE/write?db=dsf" "$LINES" --cacert "$WORK/cert.pem" -H "Authorization: Token $TOKEN")
[ "$got" = "204 0" ] || fail "/write over https: $got, expected 204: $(cat "$WORK/answer")"
wait_for 10 has_points tls_probe 2 || fail "the 2 points written over https are not stored: $(points tls_probe)"

log "a trusted client without the token: 401"
got=$(write "$BASE/write?db=dsf" "$LINES" --cacert "$WORK/cert.pem")
[ "$got" = "401 0" ] || fail "/write over https without the token: $got, expected 401"

log "plain http to the TLS port, and a client that does not trust the certificate: nothing gets in"
plain=$'tls_plain,ns=ns1,mci=mci1,vm=vm1 value=1 1700000000000000000'
got=$(write "http://127.0.0.1:$CPORT/write?db=dsf" "$plain" -H "Authorization: Token $TOKEN")
case $got in "000 "[1-9]*) ;; *) fail "plain http to the TLS port: $got, expected no HTTP answer" ;; esac
untrusted=$'tls_untrusted,ns=ns1,mci=mci1,vm=vm1 value=1 1700000000000000000'
got=$(write "$BASE/write?db=dsf" "$untrusted" -H "Authorization: Token $TOKEN")
[ "$got" = "000 60" ] || fail "a client without the CA: $got, expected no answer and curl's exit 60 (certificate not verified)"
# The collector keeps serving after both.
got=$(write "$BASE/write?db=dsf" "$LINES" --cacert "$WORK/cert.pem" -H "Authorization: Bearer $TOKEN")
[ "$got" = "204 0" ] || fail "/write after the refused connections: $got"

log "remote_write over https: vmagent scraping node_exporter, trusting the certificate"
NPORT=$(free_port)
bg node_exporter prometheus-node-exporter --web.listen-address="127.0.0.1:$NPORT" \
    --collector.disable-defaults --collector.meminfo --collector.loadavg
wait_for 10 port_open "$NPORT" || fail "node_exporter did not start"
cat >"$WORK/scrape.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["127.0.0.1:$NPORT"]
YML
bg vmagent vmagent -promscrape.config="$WORK/scrape.yml" -remoteWrite.url="$BASE/api/v1/write" \
    -remoteWrite.bearerToken="$TOKEN" -remoteWrite.tlsCAFile="$WORK/cert.pem" \
    -remoteWrite.tmpDataPath="$WORK/vmagent" -remoteWrite.flushInterval=1s \
    -httpListenAddr="127.0.0.1:$(free_port)"
wait_for 30 has_points node_load1 2 || fail "no node_load1 from vmagent stored over https"
wait_for 30 has_points node_memory_MemTotal_bytes 2 || fail "no node_memory_MemTotal_bytes from vmagent stored"
[ "$(points tls_plain)" = 0 ] || fail "the plain http write was stored"
[ "$(points tls_untrusted)" = 0 ] || fail "the untrusted client's write was stored"
log "ok"
