#!/usr/bin/env bash
# MQTT over TLS with a client certificate and a user name and password: mosquitto requires
# all three; the agent pushes through it, and refuses to trust a broker signed by another CA.
. "$(dirname "$0")/lib.sh"

pki="$WORK/pki"
mkdir -p "$pki"
ssl() { openssl "$@" >>"$WORK/openssl.log" 2>&1 || fail "openssl $1"; }
ssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=dsf-test-ca -keyout "$pki/ca.key" -out "$pki/ca.pem"
ssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout "$pki/other.key" -out "$pki/other.pem"
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$pki/san.ext"
for who in server client; do
    ssl req -newkey rsa:2048 -nodes -subj "/CN=$who" -keyout "$pki/$who.key" -out "$pki/$who.csr"
    ssl x509 -req -in "$pki/$who.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
        -days 2 -extfile "$pki/san.ext" -out "$pki/$who.pem"
done
mosquitto_passwd -b -c "$WORK/passwd" agent s3cret >/dev/null 2>&1 || fail "mosquitto_passwd"
chmod 0755 "$pki"
chmod 0644 "$WORK/passwd" "$pki"/*.key

MQTT_PORT=$(free_port)
cat >"$WORK/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous false
password_file $WORK/passwd
cafile $pki/ca.pem
certfile $pki/server.pem
keyfile $pki/server.key
require_certificate true
CONF
bg mosquitto mosquitto -c "$WORK/mosquitto.conf"
wait_for 10 port_open "$MQTT_PORT" || fail "mosquitto (TLS) did not start"
tls_client=(--cafile "$pki/ca.pem" --cert "$pki/client.pem" --key "$pki/client.key" -u agent -P s3cret)
bg sub mosquitto_sub -V 5 -h 127.0.0.1 -p "$MQTT_PORT" "${tls_client[@]}" -t 'dsf/#' -F '%t|%r|%P|%x'
sleep 1

common=(--set identity.ns=ns1 --set identity.mci=mci1 --set interval=1s --set http.listen=
    --set privileges.drop=false --set mqtt.url="ssl://127.0.0.1:$MQTT_PORT"
    --set mqtt.tls_cert="$pki/client.pem" --set mqtt.tls_key="$pki/client.key"
    --set mqtt.username=agent --set mqtt.password=s3cret)
bg agent "$AGENT" "${common[@]}" --set identity.vm=tls1 --set mqtt.tls_ca="$pki/ca.pem"
arrived() { [ "$(grep -c '^dsf/m/.*/tls1|' "$WORK/sub.log" || true)" -ge 3 ]; }
wait_for 20 arrived || fail "no messages over TLS"
stop_pid "$BG_PID"
python3 "$DSF_SRC/tests/integration/check_stream.py" <(grep '/tls1|' "$WORK/sub.log") \
    --ns ns1 --mci mci1 --vm tls1 --min 3 || fail "stream over TLS"

log "a broker certificate from another CA is refused"
bg agent-untrusted "$AGENT" "${common[@]}" --set identity.vm=tls2 --set mqtt.tls_ca="$pki/other.pem"
sleep 4
grep -q '/tls2|' "$WORK/sub.log" && fail "published to a broker it should not trust"
grep -qi 'cannot connect' "$WORK/agent-untrusted.log" || fail "the refusal is not logged"
stop_pid "$BG_PID"

log "a wrong password is refused"
bg agent-badpw "$AGENT" "${common[@]}" --set identity.vm=tls3 --set mqtt.tls_ca="$pki/ca.pem" \
    --set mqtt.password=wrong
sleep 4
grep -q '/tls3|' "$WORK/sub.log" && fail "published with a wrong password"
stop_pid "$BG_PID"
log "ok"
