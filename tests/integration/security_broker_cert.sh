#!/usr/bin/env bash
# Client certificates as docs/security.md sets them up: a TLS listener with
# require_certificate and use_identity_as_username makes the certificate's CN the user name,
# so an agent certificate with CN ns1/mci1/vm1 gets the agents' ACL patterns of
# `damselfly bus-acl`. A real agent with that certificate (no password) pushes its metrics
# and status; the same certificate cannot publish for vm2; an agent configured as vm3 with
# vm2's certificate gets nothing through, not even its Last Will; a client without a certificate is refused. The
# operator reads everything on a password listener of the same broker.
. "$(dirname "$0")/lib.sh"

pki="$WORK/pki"
mkdir -p "$pki"
ssl() { openssl "$@" >>"$WORK/openssl.log" 2>&1 || fail "openssl $1: $(tail -3 "$WORK/openssl.log")"; }
ssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=damselfly bus CA" \
    -keyout "$pki/ca.key" -out "$pki/ca.pem"
# cert NAME CN [EXTFILE]: a certificate signed by the CA; '/' in a CN is written '\/'.
cert() {
    local ext=()
    [ -z "${3:-}" ] || ext=(-extfile "$3")
    ssl req -newkey rsa:2048 -nodes -subj "/CN=${2//\//\\/}" -keyout "$pki/$1.key" \
        -out "$pki/$1.csr"
    ssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
        -days 2 "${ext[@]}" -out "$pki/$1.pem"
}
printf 'subjectAltName=IP:127.0.0.1\n' >"$pki/san.ext"
cert broker 127.0.0.1 "$pki/san.ext"
cert vm1 ns1/mci1/vm1
cert vm2 ns1/mci1/vm2
openssl x509 -in "$pki/vm1.pem" -noout -subject | grep -q 'CN = ns1/mci1/vm1' ||
    fail "the agent certificate's CN is not ns1/mci1/vm1"
chmod 0755 "$pki"
chmod 0644 "$pki"/*.key # the broker reads its key after dropping to its user

"$DSF_SRC/scripts/damselfly" bus-acl "$WORK/bus" --operator >"$WORK/bus-acl.out" 2>&1 ||
    fail "bus-acl: $(cat "$WORK/bus-acl.out")"
MQTT_ACL_DIR=$WORK/bus
PLAIN_PORT=$(free_port)
TLS_PORT=$(free_port)
cat >"$WORK/mosquitto.conf" <<CONF
allow_anonymous false
password_file $WORK/bus/passwd
acl_file $WORK/bus/acl
listener $PLAIN_PORT 127.0.0.1
listener $TLS_PORT 127.0.0.1
cafile $pki/ca.pem
certfile $pki/broker.pem
keyfile $pki/broker.key
require_certificate true
use_identity_as_username true
CONF
bg mosquitto mosquitto -c "$WORK/mosquitto.conf"
wait_for 10 port_open "$TLS_PORT" || fail "mosquitto did not start"
mosquitto_sub -p "$PLAIN_PORT" -V 5 -u operator -P "$(mqtt_creds operator)" -t 'dsf/#' \
    -F '%t %p' >"$WORK/sub-all.log" 2>&1 &
DSF_PIDS+=($!)
sleep 0.5

log "a real agent authenticated by its certificate alone"
bg agent "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm=vm1 \
    --set interval=1s --set http.listen= --set privileges.drop=false \
    --set mqtt.url="ssl://127.0.0.1:$TLS_PORT" --set mqtt.tls_ca="$pki/ca.pem" \
    --set mqtt.tls_cert="$pki/vm1.pem" --set mqtt.tls_key="$pki/vm1.key"
arrived() { [ "$(grep -c '^dsf/m/[0-9]*/ns1/mci1/vm1 cpu' "$WORK/sub-all.log")" -ge 2 ]; }
wait_for 20 arrived || fail "the agent's metrics did not arrive over TLS"
grep -q '^dsf/a/ns1/mci1/vm1/status {"status":"online"' "$WORK/sub-all.log" ||
    fail "the agent's status did not arrive"

log "vm1's certificate cannot publish for vm2; no certificate, no connection"
vm1_cert=(-h 127.0.0.1 -p "$TLS_PORT" -V 5 -q 1 --cafile "$pki/ca.pem" --cert "$pki/vm1.pem"
    --key "$pki/vm1.key")
out=$(mosquitto_pub "${vm1_cert[@]}" -t "dsf/m/$(bucket ns1/mci1/vm2 64)/ns1/mci1/vm2" \
    -m forged 2>&1) || true
grep -q 'Not authorized' <<<"$out" || fail "vm1's certificate published for vm2: '$out'"
out=$(mosquitto_pub "${vm1_cert[@]}" -t dsf/a/ns1/mci1/vm1/ack -m forged 2>&1) || true
grep -q 'Not authorized' <<<"$out" || fail "vm1's certificate published an ack: '$out'"
mosquitto_pub -h 127.0.0.1 -p "$TLS_PORT" -V 5 -q 1 --cafile "$pki/ca.pem" -t dsf/m/0/a/b/c \
    -m nocert >/dev/null 2>&1 && fail "a client without a certificate published"

log "vm2's certificate in an agent that calls itself vm3 gets nothing through"
bg imposter "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm=vm3 \
    --set interval=1s --set http.listen= --set privileges.drop=false \
    --set mqtt.url="ssl://127.0.0.1:$TLS_PORT" --set mqtt.tls_ca="$pki/ca.pem" \
    --set mqtt.tls_cert="$pki/vm2.pem" --set mqtt.tls_key="$pki/vm2.key"
imposter=$BG_PID
sleep 3
kill -9 "$imposter" # its Last Will (offline, on vm3's status) must not be published either
sleep 1
n_vm1=$(grep -c '^dsf/m/[0-9]*/ns1/mci1/vm1 ' "$WORK/sub-all.log")
grep -q 'vm3\|forged\|nocert' "$WORK/sub-all.log" &&
    fail "a forged message arrived: $(grep 'vm3\|forged\|nocert' "$WORK/sub-all.log" | head -3)"
log "ok ($n_vm1 messages of vm1, none of the imposter)"
