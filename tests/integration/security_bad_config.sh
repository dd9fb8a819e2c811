#!/usr/bin/env bash
# Values that load but break something later are refused at start and by --check (exit 2,
# the message naming the key and the value), by the row types of common/config.h: a topic
# with wildcards where messages are published (the collector's dlq.topic=dsf/+ made the
# broker drop the collector at the first bad line), ids that cannot be MQTT client ids and
# topic segments, URLs that do not parse or have an unknown scheme (mqtt.url=garbage was
# retried forever), and TLS files that cannot be read. Good values of each kind pass.
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
ALARM="$DSF_BUILD/alarm/damselfly-alarm"
mkdir -p "$WORK/rules"
cp "$DSF_SRC"/deploy/alarm.d/*.json "$WORK/rules/"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1 || fail "openssl req"
MISSING="$WORK/missing.pem"
LONG=$(printf 'x%.0s' $(seq 64))

base() { # DAEMON: the arguments of a configuration that passes
    case $1 in
    agent) echo "$AGENT --set identity.ns=n --set identity.mci=m --set identity.vm=v" \
        "--set privileges.drop=false --set http.listen=" ;;
    collector) echo "$COLLECTOR --set id=c1 --set output.url=http://127.0.0.1:1 --set http.listen=" ;;
    alarm) echo "$ALARM --set rules.dir=$WORK/rules --set state.dir=$WORK/state --set http.listen=" ;;
    esac
}

# expect_bad DAEMON KEY VALUE [SHOWN [ARGS...]]: exit 2 with --check and at start, the
# message naming 'KEY' and the value (as SHOWN, for values with control characters).
expect_bad() {
    local daemon=$1 key=$2 value=$3 shown=${4:-$3} mode rc
    shift $(($# < 4 ? $# : 4))
    for mode in --check start; do
        rc=0
        # shellcheck disable=SC2046
        timeout 20 $(base "$daemon") --set "$key=$value" "$@" $([ $mode = start ] || echo --check) \
            >"$WORK/out" 2>&1 || rc=$?
        [ $rc = 2 ] || fail "$daemon $key='$value' ($mode): exit $rc, expected 2: $(cat "$WORK/out")"
        grep -q "'$key'" "$WORK/out" || fail "$daemon $key ($mode): key not named: $(cat "$WORK/out")"
        grep -qF -- "$shown" "$WORK/out" || fail "$daemon $key ($mode): value not named: $(cat "$WORK/out")"
    done
    log "$daemon: $(grep -m1 'configuration error' "$WORK/out")"
}

expect_good() { # DAEMON ARGS...: --check passes
    local daemon=$1
    shift
    # shellcheck disable=SC2046
    $(base "$daemon") "$@" --check >"$WORK/out" 2>&1 || fail "$daemon $*: refused: $(cat "$WORK/out")"
}

log "topics where a concrete topic is required"
expect_bad collector dlq.topic 'dsf/+'
expect_bad collector dlq.topic 'dsf/dlq/#'
expect_bad collector dlq.topic '$SYS/dlq'
expect_bad collector dlq.topic 'dsf/m/3/ns1/mci1/vm1' # the DLQ would feed itself

log "ids"
expect_bad collector id 'a/b'
expect_bad collector id 'c+1'
expect_bad collector id "$LONG"
expect_bad collector id $'c\t1' 'c\x091'
expect_bad alarm id 'a#1'
expect_bad alarm id ' a1'
expect_bad agent identity.vm 'v#1'
expect_bad agent identity.ns "$LONG"
expect_bad agent identity.mci $'m\n1' 'm\x0a1'
expect_bad agent identity.mci 'a/b'

log "URLs"
for daemon in agent collector alarm; do
    expect_bad $daemon mqtt.url garbage
done
expect_bad collector mqtt.url 'http://127.0.0.1:1883'
expect_bad collector mqtt.url 'tcp://127.0.0.1:99999'
expect_bad collector mqtt.url 'tcp://:1883'
expect_bad agent mqtt.url 'tcp://127.0.0.1:1883/path'
expect_bad collector output.url garbage
expect_bad collector output.url 'ftp://127.0.0.1/x'
expect_bad alarm output.url 'http://exa mple:8086'

log "TLS files"
expect_bad collector mqtt.tls_ca "$MISSING"
expect_bad collector kafka.tls_cert "$MISSING"
expect_bad alarm mqtt.tls_key "$MISSING"
expect_bad agent mqtt.tls_ca "$MISSING"
expect_bad agent kafka.tls_key "$MISSING"
expect_bad alarm http.tls_cert "$MISSING" "$MISSING" --set "http.tls_key=$WORK/key.pem"
expect_bad agent mqtt.tls_ca "$WORK" "$WORK" # a directory

log "the file's name is given for a bad value read from it"
printf '{"id": "c1", "dlq": {"topic": "dsf/+"}}\n' >"$WORK/collector.json"
rc=0
"$COLLECTOR" --config "$WORK/collector.json" --check >"$WORK/out" 2>&1 || rc=$?
[ $rc = 2 ] && grep -q "collector.json: key 'dlq.topic': 'dsf/+'" "$WORK/out" ||
    fail "the file is not named: $(cat "$WORK/out")"

log "good values pass"
expect_good collector --set dlq.topic=dsf/dlq/c1 --set id=collector-1.eu_west \
    --set mqtt.url=ssl://broker.example:8883 --set mqtt.tls_ca="$WORK/cert.pem" \
    --set mqtt.tls_cert="$WORK/cert.pem" --set mqtt.tls_key="$WORK/key.pem" \
    --set output.url='https://user:pw@[::1]:8086/influx?x=1'
expect_good alarm --set id=alarm-1 --set mqtt.url=wss://broker.example/mqtt \
    --set output.url=http://influx:8086 --set http.tls_cert="$WORK/cert.pem" \
    --set http.tls_key="$WORK/key.pem"
expect_good agent --set mqtt.url=mqtt://127.0.0.1 --set identity.vm='vm 1 ünïcode' \
    --set kafka.tls_ca="$WORK/cert.pem"
expect_good collector --set mqtt.url=mqtts://[::1]:8883 --set mqtt.tls_insecure=true
log ok
