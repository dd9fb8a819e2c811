# Shared helpers for integration tests: real servers on free loopback ports, cleaned up on
# exit. Source it from a test script run by ctest (DSF_BUILD and DSF_SRC are set).
set -euo pipefail

: "${DSF_BUILD:?run through ctest (DSF_BUILD unset)}"
: "${DSF_SRC:?run through ctest (DSF_SRC unset)}"
AGENT="$DSF_BUILD/agent/damselfly-agent"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dsf-test.XXXXXX")
# Servers started as root drop to their own users (mosquitto does): let them read their files.
chmod 755 "$WORK"
DSF_PIDS=()

cleanup() {
    local pid
    for pid in "${DSF_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${DSF_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    local rc=0
    sanitizer_reports || rc=1
    if [ "${DSF_KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
    [ "$rc" = 0 ] || exit 1
}
trap cleanup EXIT

# sanitizer_reports: fails, printing them, when a program of the test (a text log anywhere
# under $WORK) reported a sanitizer error: a daemon that aborts while stopping fails no check
# of the test itself.
sanitizer_reports() {
    local hits
    hits=$(grep -rlIE "ERROR: (Address|Leak)Sanitizer|: runtime error: " "$WORK" 2>/dev/null) || return 0
    echo "FAIL: sanitizer reports in $(echo "$hits" | wc -l) log(s):" >&2
    local f
    for f in $hits; do
        echo "---- $f" >&2
        grep -E -A12 "ERROR: (Address|Leak)Sanitizer|: runtime error: " "$f" | head -n 30 >&2
    done
    return 1
}

fail() {
    echo "FAIL: $*" >&2
    for log in "$WORK"/*.log; do
        [ -f "$log" ] || continue
        case $(basename "$log") in sub*) continue ;; esac # message captures: too long
        echo "---- end of $(basename "$log")" >&2
        tail -n 20 "$log" | cut -c1-300 >&2
    done
    exit 1
}

log() { echo "[$(date +%H:%M:%S)] $*"; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# loopback_cert: a self-signed certificate for 127.0.0.1 (also as its subjectAltName) in
# $WORK/cert.pem, its key in $WORK/key.pem.
loopback_cert() {
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
        >/dev/null 2>&1 || fail "openssl req: cannot make a certificate for 127.0.0.1"
}

# refuses_strangers METHOD URL [TOKEN...]: METHOD URL answers 401 without a token and with
# each TOKEN given (a wrong one, someone else's).
refuses_strangers() {
    local method=$1 url=$2 auth s
    shift 2
    for auth in "" "$@"; do
        s=$(curl -s -o /dev/null -w '%{http_code}' -X "$method" -d '{}' \
            ${auth:+-H "Authorization: Bearer $auth"} "$url")
        [ "$s" = 401 ] || fail "$method $url ${auth:+with a token not its own}${auth:-without a token}: $s, expected 401"
    done
}

# wait_for SECONDS COMMAND...: polls COMMAND until it succeeds or the time is up. The shell
# expands COMMAND's arguments once, before the first try: poll a function that reads the
# value, never `test "$(...)"`.
wait_for() {
    local secs=$1; shift
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# bg NAME COMMAND...: starts COMMAND in the background, output in $WORK/NAME.log; sets BG_PID.
bg() {
    local name=$1; shift
    "$@" >"$WORK/$name.log" 2>&1 &
    BG_PID=$!
    DSF_PIDS+=("$BG_PID")
}

# start_mosquitto [PORT]: sets MQTT_PORT, MQTT_URL, MOSQUITTO_PID. Sessions and queued
# messages persist in $WORK/mosquitto across a restart on the same port. By default every
# client is admitted and may use every topic. With MQTT_AUTH=1 the broker applies the trust
# model of docs/security.md instead, from the files `scripts/damselfly bus-acl` writes into
# MQTT_ACL_DIR (default $WORK/bus) for the principals MQTT_PRINCIPALS names (bus-acl options,
# e.g. "--agent ns1/mci1/vm1 --collector c1"; the operator is always one): anonymous clients
# are refused, and a principal logs in as NAME with the password `mqtt_creds NAME` prints.
start_mosquitto() {
    MQTT_PORT=${1:-$(free_port)}
    mkdir -p "$WORK/mosquitto"
    # Started as root, mosquitto saves its sessions as its own user.
    [ "$(id -u)" != 0 ] || chown mosquitto "$WORK/mosquitto" 2>/dev/null || true
    local access="allow_anonymous true"
    if [ "${MQTT_AUTH:-0}" = 1 ]; then
        MQTT_ACL_DIR=${MQTT_ACL_DIR:-$WORK/bus}
        # shellcheck disable=SC2086 # MQTT_PRINCIPALS is a list of options
        "$DSF_SRC/scripts/damselfly" bus-acl "$MQTT_ACL_DIR" --operator ${MQTT_PRINCIPALS:-} \
            >"$WORK/bus-acl.out" 2>&1 || fail "damselfly bus-acl: $(cat "$WORK/bus-acl.out")"
        access="allow_anonymous false
password_file $MQTT_ACL_DIR/passwd
acl_file $MQTT_ACL_DIR/acl"
    fi
    cat >"$WORK/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
$access
persistence true
persistence_location $WORK/mosquitto/
max_queued_messages 100000
CONF
    bg "mosquitto-$MQTT_PORT-$SECONDS" mosquitto -c "$WORK/mosquitto.conf"
    MOSQUITTO_PID=$BG_PID
    MQTT_URL="tcp://127.0.0.1:$MQTT_PORT"
    wait_for 10 port_open "$MQTT_PORT" || fail "mosquitto did not start on $MQTT_PORT"
}

# start_mosquitto_auth BUS_ACL_OPTIONS...: start_mosquitto with MQTT_AUTH=1 for these
# principals; a later start_mosquitto (a restart) keeps them.
start_mosquitto_auth() {
    MQTT_AUTH=1
    MQTT_PRINCIPALS="$*"
    start_mosquitto
}

# mqtt_creds NAME: the password bus-acl generated for principal NAME (its creds file: '%' and
# '/' of the name escaped as %25 and %2F).
mqtt_creds() {
    local f=${1//%/%25}
    cat "${MQTT_ACL_DIR:?start_mosquitto_auth first}/creds/${f//\//%2F}" ||
        fail "no credentials for principal '$1' in $MQTT_ACL_DIR"
}

# start_influxd: InfluxDB 1.x with a temporary config and data dir; sets INFLUX_URL.
# INFLUX_DATA_CONF, when set, adds its lines to the [data] section (e.g. the series caps).
start_influxd() {
    INFLUX_PORT=$(free_port)
    local rpc_port dir="$WORK/influxdb"
    rpc_port=$(free_port)
    mkdir -p "$dir"
    cat >"$dir/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc_port"
[meta]
  dir = "$dir/meta"
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
  ${INFLUX_DATA_CONF:-}
[http]
  bind-address = "127.0.0.1:$INFLUX_PORT"
  log-enabled = false
[monitor]
  store-enabled = false
CONF
    bg influxd influxd run -config "$dir/influxdb.conf"
    INFLUXD_PID=$BG_PID
    INFLUX_URL="http://127.0.0.1:$INFLUX_PORT"
    wait_for 30 curl -sf "$INFLUX_URL/ping" || fail "influxd did not start"
}

stop_pid() { # PID: SIGTERM, wait for it to exit
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# metric URL NAME [LABELS]: value of one sample from a Prometheus endpoint (METRIC_HEADER, when
# set, is sent with the request: "Authorization: Bearer ..."). awk reads to the
# end: leaving early would fail curl's write (exit 23) under pipefail.
metric() {
    curl -sf ${METRIC_HEADER:+-H "$METRIC_HEADER"} "$1" | awk -v n="$2" -v l="${3:-}" '
        !found && ($1 == n || $1 == n "{" l "}") { print $2; found = 1 }
        END { if (!found) exit 1 }'
}

# start_kafka_mock NAME ARGS...: starts dsf-kafka-mock (librdkafka's mock cluster serving
# the Kafka protocol on loopback); sets BOOTSTRAP from its first line of output.
start_kafka_mock() {
    local name=$1; shift
    local mock="$DSF_BUILD/tests/tools/dsf-kafka-mock"
    [ -x "$mock" ] || fail "$mock is missing (build with DAMSELFLY_KAFKA=ON)"
    "$mock" "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
    DSF_PIDS+=("$!")
    wait_for 10 test -s "$WORK/$name.out" || fail "$name printed no bootstrap address in 10 s"
    BOOTSTRAP=$(head -n 1 "$WORK/$name.out")
    [[ $BOOTSTRAP =~ ^127\.0\.0\.1:[0-9]+(,127\.0\.0\.1:[0-9]+)*$ ]] ||
        fail "$name printed '$BOOTSTRAP', not a bootstrap list"
}

# bucket KEY B: the wire contract's bucket, fnv1a32(KEY) % B.
bucket() {
    python3 -c '
import sys
h = 2166136261
for b in sys.argv[1].encode():
    h = ((h ^ b) * 16777619) & 0xffffffff
print(h % int(sys.argv[2]))' "$1" "$2"
}

# follower_stack: mosquitto, InfluxDB (database dsf) and the capture of collector c1's
# heartbeats in $WORK/hb.log, for tests of one collector that follows its assignments;
# CPORT is its HTTP port.
follower_stack() {
    COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
    start_mosquitto
    start_influxd
    influx_create_db dsf
    CPORT=$(free_port)
    bg hb mosquitto_sub -V 5 -p "$MQTT_PORT" -t dsf/c/c1/hb -F '%p'
}

# start_follower [--set KEY=VALUE]...: collector c1 following its retained assignments on
# dsf/c/c1/assign (heartbeat 300 ms), writing to dsf; its log is $WORK/collector-SECONDS.log.
start_follower() {
    bg "collector-$SECONDS" "$COLLECTOR" --set id=c1 --set mqtt.url="$MQTT_URL" \
        --set mqtt.follow_assign=true --set heartbeat=300ms \
        --set output.url="$INFLUX_URL" --set output.db=dsf --set batch.interval=200ms \
        --set http.listen="127.0.0.1:$CPORT" "$@"
    COLLECTOR_PID=$BG_PID
    wait_for 10 curl -sf "http://127.0.0.1:$CPORT/healthz" || fail "collector c1 did not start"
}

# follower_hb_is EPOCH BUCKETS [FROM]: the newest heartbeat after line FROM (0) of
# $WORK/hb.log reports that epoch and that many buckets.
follower_hb_is() {
    tail -n "+$((${3:-0} + 1))" "$WORK/hb.log" | tail -n 1 | grep -q "\"epoch\":$1,\"buckets\":$2,"
}

influx_create_db() { # DB
    curl -sf -XPOST "$INFLUX_URL/query" --data-urlencode "q=CREATE DATABASE $1" >/dev/null
}

influx_query() { # DB QUERY -> JSON
    curl -sf -G "$INFLUX_URL/query" --data-urlencode "db=$1" --data-urlencode "q=$2"
}

# agent_config FILE KEY=VALUE... KEY:=JSON...: writes an agent config (JSON) from dotted
# keys; values are strings (true/false become booleans), := takes a JSON value.
agent_config() {
    local file=$1; shift
    python3 - "$file" "$@" <<'PY'
import json, sys
cfg = {}
for kv in sys.argv[2:]:
    key, _, value = kv.partition("=")
    if key.endswith(":"):
        key, value = key[:-1], json.loads(value)
    elif value in ("true", "false"):
        value = value == "true"
    node = cfg
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
json.dump(cfg, open(sys.argv[1], "w"), indent=2)
PY
}

# stack_env: the environment of `scripts/damselfly` for a stack of its own: state in
# $WORK/state, programs of $DSF_BUILD, every port free (collector local-N listens on BASE+N:
# a base whose next four ports are free). Sets LAUNCHER.
stack_env() {
    export DAMSELFLY_STATE="$WORK/state" DAMSELFLY_BUILD="$DSF_BUILD"
    export DAMSELFLY_MQTT_PORT=$(free_port) DAMSELFLY_HTTP="127.0.0.1:$(free_port)"
    export DAMSELFLY_INFLUX_PORT=$(free_port) DAMSELFLY_BALANCER_HTTP="127.0.0.1:$(free_port)"
    local base
    base=$(free_port)
    until python3 -c 'import socket, sys
for n in range(1, 5):
    s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]) + n)); s.close()' "$base" 2>/dev/null; do
        base=$(free_port)
    done
    export DAMSELFLY_COLLECTOR_PORT_BASE=$base
    export DAMSELFLY_ALARM_HTTP="127.0.0.1:$(free_port)" DAMSELFLY_CONTROL_HTTP="127.0.0.1:$(free_port)"
    LAUNCHER="$DSF_SRC/scripts/damselfly"
}

# stack_demo_running FILE: the demo MCI in FILE (what `damselfly status` printed) has every VM
# running with its agent online: three, or more when the starter cpu_hot policy scaled it out
# on a busy machine.
stack_demo_running() {
    local n
    n=$(sed -nE 's/^MCI default\/demo: Running:([0-9]+) \(R:\1\/\1\).*/\1/p' "$1")
    [ -n "$n" ] && [ "$n" -ge 3 ] && [ "$(grep -c ' agent online$' "$1")" = "$n" ]
}

# stack_healthy FILE: every part of the stack running and healthy in FILE, and the demo MCI
# running.
stack_healthy() {
    local part
    for part in mosquitto influxd balancer alarm control agent "collector local-1" \
        "collector local-2"; do
        grep -q "^$part: running (pid [0-9]*), healthy: " "$1" || return 1
    done
    stack_demo_running "$1"
}

# stack_agent_pid VM: the pid of the agent of VM of the stack's MCI default/demo, from the
# federation's model.
stack_agent_pid() {
    "$DSF_BUILD/federation/damselfly-fed" --state-dir "$DAMSELFLY_STATE/federation" status \
        --json default demo | python3 -c 'import json, sys
print([v for v in json.load(sys.stdin)["vm"] if v["id"] == sys.argv[1]][0]["driver"]["pid"])' "$1"
}
