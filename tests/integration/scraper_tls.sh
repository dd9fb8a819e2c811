#!/usr/bin/env bash
# Exporters behind TLS and authentication. A real prometheus-node-exporter serves https with a
# certificate for 127.0.0.1 and basic auth (a bcrypt hash in its --web.config.file); an agent
# serves its /metrics over https behind a bearer token. One scraper per way of asking:
#   s1: the CA and the right password  -> online, node_* stored with the identity tags
#   s2: the right password, no CA      -> every scrape fails (result tls), the VM offline
#   s3: the CA, a wrong password       -> http_error (401), the VM offline; the right password
#       written to its file and SIGHUP -> online (the secret is reread)
#   s4: the CA and the agent's token   -> the agent's node_* stored
# The keys that go together are checked by --check.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scraper_lib.sh"

# Checked before anything starts: the failures name the keys.
expect_refused() {
    local out rc=0
    out=$("$SCRAPER" "$@" --check 2>&1) || rc=$?
    [ $rc = 2 ] || fail "--check $* exited $rc, want 2: $out"
    grep -q "$EXPECTED" <<<"$out" || fail "--check $* does not name $EXPECTED: $out"
}
EXPECTED=scrape.exporter_password_file expect_refused --set scrape.exporter_username=dsf
EXPECTED=scrape.exporter_token_file expect_refused --set scrape.exporter_username=dsf \
    --set scrape.exporter_password_file=/nonexistent --set scrape.exporter_token_file=/nonexistent

start_mosquitto
start_influxd
influx_create_db dsf
CPORT=$(free_port)
bg collector "$COLLECTOR" --set id=c1 --set mqtt.url="$MQTT_URL" --set output.url="$INFLUX_URL" \
    --set output.db=dsf --set batch.interval=200ms --set http.listen="127.0.0.1:$CPORT"
wait_for 10 curl -sf "http://127.0.0.1:$CPORT/healthz" || fail "the collector did not start"

loopback_cert
PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
secret_file() { # FILE CONTENT: a 0600 file holding CONTENT
    (umask 077 && printf '%s\n' "$2" >"$1")
}
secret_file "$WORK/password" "$PASSWORD"
secret_file "$WORK/wrong-password" "not-the-password-at-all"
# Debian's python3-bcrypt (scripts/install-deps.sh) for the exporter's bcrypt hash.
HASH=$(/usr/bin/python3 -c 'import bcrypt, sys; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(4)).decode())' "$PASSWORD") ||
    fail "cannot make a bcrypt hash (python3-bcrypt)"
cat >"$WORK/web-config.yml" <<YAML
tls_server_config:
  cert_file: $WORK/cert.pem
  key_file: $WORK/key.pem
basic_auth_users:
  dsf: '$HASH'
YAML
EPORT=$(free_port)
bg exporter "$EXPORTER" --web.listen-address="127.0.0.1:$EPORT" --web.config.file="$WORK/web-config.yml" \
    --collector.disable-defaults --collector.loadavg --collector.meminfo
EURL="https://127.0.0.1:$EPORT/metrics"
exporter_up() { curl -sf --cacert "$WORK/cert.pem" -u "dsf:$PASSWORD" "$EURL" >/dev/null; }
wait_for 10 exporter_up || fail "the exporter does not answer over https with the password"
status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/cert.pem" "$EURL")
[ "$status" = 401 ] || fail "the exporter answers $status without the password: not a test of basic auth"

TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
secret_file "$WORK/agent-token" "$TOKEN"
APORT=$(free_port)
agent_config "$WORK/agent.json" identity.ns=ns1 identity.mci=mci1 identity.vm=vm4 interval=1s \
    push.mode=off http.listen="127.0.0.1:$APORT" privileges.drop=false http.token="$TOKEN" \
    http.tls_cert="$WORK/cert.pem" http.tls_key="$WORK/key.pem"
bg agent "$AGENT" --config "$WORK/agent.json"
AURL="https://127.0.0.1:$APORT/metrics"
agent_up() { curl -sf --cacert "$WORK/cert.pem" -H "Authorization: Bearer $TOKEN" "$AURL" >/dev/null; }
wait_for 10 agent_up || fail "the agent does not answer over https with its token"
status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/cert.pem" "$AURL")
[ "$status" = 401 ] || fail "the agent answers $status without its token: not a test of the token"

# scraper_on ID VM PORT ARGS...: scraper ID with one https target, VM of ns1/mci1 on PORT;
# sets API_<ID> and PID_<ID>.
scraper_on() {
    local id=$1 vm=$2 port=$3
    shift 3
    printf '[{"targets": ["127.0.0.1:%s"], "labels": {"ns": "ns1", "mci": "mci1", "vm": "%s", "site": "lab", "__scheme__": "https"}}]\n' \
        "$port" "$vm" >"$WORK/targets-$id.json"
    start_scraper --set id="$id" --set scrape.targets_file="$WORK/targets-$id.json" "$@"
    printf -v "API_$id" '%s' "$SAPI"
    printf -v "PID_$id" '%s' "$SCRAPER_PID"
}
scraper_on s1 vm1 "$EPORT" --set scrape.tls_ca="$WORK/cert.pem" \
    --set scrape.exporter_username=dsf --set scrape.exporter_password_file="$WORK/password"
scraper_on s2 vm2 "$EPORT" \
    --set scrape.exporter_username=dsf --set scrape.exporter_password_file="$WORK/password"
cp "$WORK/wrong-password" "$WORK/s3-password"
scraper_on s3 vm3 "$EPORT" --set scrape.tls_ca="$WORK/cert.pem" \
    --set scrape.exporter_username=dsf --set scrape.exporter_password_file="$WORK/s3-password"
scraper_on s4 vm4 "$APORT" --set scrape.tls_ca="$WORK/cert.pem" \
    --set scrape.exporter_token_file="$WORK/agent-token"
# results_of ID RESULT: damselfly_scraper_scrapes_total{result=RESULT} of scraper ID.
results_of() {
    local api="API_$1"
    metric "${!api}/metrics" damselfly_scraper_scrapes_total "result=\"$2\"" || echo 0
}
at_least() { [ "$(results_of "$1" "$2")" -ge "$3" ]; }

log "s1: the CA and the password: online, node_* stored with the identity tags"
wait_for 20 status_is ns1/mci1/vm1 online || fail "vm1 is not online: '$(retained_status ns1/mci1/vm1)'"
wait_for 20 stored_some node_load1 vm1 || fail "no node_load1 of vm1 stored"
wait_for 20 stored_some node_memory_MemTotal_bytes vm1 || fail "no node_memory_MemTotal_bytes of vm1 stored"
row=$(influx_query dsf "SELECT * FROM node_load1 WHERE vm='vm1' LIMIT 1")
python3 - "$row" <<'PY' || fail "node_load1 of vm1 lacks the identity tags: $row"
import json, sys
s = json.loads(sys.argv[1])["results"][0]["series"][0]
row = dict(zip(s["columns"], s["values"][0]))
assert (row["ns"], row["mci"], row["vm"], row["site"]) == ("ns1", "mci1", "vm1", "lab"), row
PY
[ "$(results_of s1 tls)" = 0 ] && [ "$(results_of s1 http_error)" = 0 ] ||
    fail "s1 counted failed scrapes: tls $(results_of s1 tls), http_error $(results_of s1 http_error)"

log "s2: no CA: the certificate is not trusted, the VM offline"
wait_for 20 at_least s2 tls 2 || fail "s2 counted $(results_of s2 tls) tls failures, want 2"
wait_for 20 status_is ns1/mci1/vm2 offline || fail "vm2 is not offline: '$(retained_status ns1/mci1/vm2)'"
[ "$(results_of s2 ok)" = 0 ] || fail "s2 scraped an untrusted exporter"
[ "$(stored node_load1 vm2)" = 0 ] || fail "points of vm2 were stored"

log "s3: a wrong password: http_error, offline; the right one and SIGHUP: online"
wait_for 20 at_least s3 http_error 2 || fail "s3 counted $(results_of s3 http_error) http_error, want 2"
wait_for 20 status_is ns1/mci1/vm3 offline || fail "vm3 is not offline: '$(retained_status ns1/mci1/vm3)'"
[ "$(results_of s3 ok)" = 0 ] || fail "s3 got in with a wrong password"
cp "$WORK/password" "$WORK/s3-password"
kill -HUP "$PID_s3"
wait_for 20 status_is ns1/mci1/vm3 online || fail "vm3 is not online after the password was fixed"
wait_for 20 stored_some node_load1 vm3 || fail "no node_load1 of vm3 stored after the password was fixed"

log "s4: the agent's /metrics over https with its bearer token"
wait_for 20 status_is ns1/mci1/vm4 online || fail "vm4 is not online: '$(retained_status ns1/mci1/vm4)'"
wait_for 20 stored_some node_memory_MemTotal_bytes vm4 || fail "no node_memory_MemTotal_bytes of vm4 stored"
[ "$(results_of s4 http_error)" = 0 ] || fail "s4 counted $(results_of s4 http_error) refused scrapes"

for id in s1 s2 s3 s4; do
    pid="PID_$id"
    SCRAPER_PID=${!pid}
    stop_scraper_clean
done
log "ok"
