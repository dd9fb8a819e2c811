# Helpers for the alarm engine's integration tests (sourced after lib.sh).
ALARM="$DSF_BUILD/alarm/damselfly-alarm"
BUS_SEND="$DSF_BUILD/tests/tools/dsf-bus-send"
[ -x "$ALARM" ] || fail "$ALARM is missing"
mkdir -p "$WORK/rules" "$WORK/state"

# rule NAME JSON: writes a rule file.
rule() { printf '%s\n' "$2" >"$WORK/rules/$1.json"; }

# start_alarm [ARGS...]: starts the engine on MQTT_URL with $WORK/rules and $WORK/state;
# sets ALARM_PID and API (base URL); waits until it is connected to the broker.
start_alarm() {
    ALARM_PORT=${ALARM_PORT:-$(free_port)}
    API="http://127.0.0.1:$ALARM_PORT"
    bg "alarm-$SECONDS" "$ALARM" --set id=a1 --set mqtt.url="$MQTT_URL" \
        --set rules.dir="$WORK/rules" --set state.dir="$WORK/state" \
        --set http.listen="127.0.0.1:$ALARM_PORT" --set log_level=debug "$@"
    ALARM_PID=$BG_PID
    wait_for 10 alarm_connected || fail "the alarm engine did not start or connect"
    sleep 0.5 # its subscriptions are confirmed just after the connection
}
alarm_connected() { curl -sf "$API/healthz" | grep -q '"connected":true'; }
# auth: the header API writes (PUT, POST, DELETE) need: the token the engine keeps in
# state.dir/http.token (common/daemon.c).
auth() { printf 'Authorization: Bearer %s' "$(cat "$WORK/state/http.token")"; }

# capture_events: records every event on dsf/alarm/# in $WORK/sub-events.log as "topic payload".
capture_events() {
    bg sub-events mosquitto_sub -V 5 -p "$MQTT_PORT" -t 'dsf/alarm/#' -F '%t %p'
    sleep 0.5
}

# send VM LINE...: publishes the lines (one message, line protocol) as agent VM of ns1/mci1.
send() {
    local vm=$1; shift
    local b payload
    b=$(bucket "ns1/mci1/$vm" 64)
    payload=$(printf '%s\n' "$@")
    "$BUS_SEND" --mqtt "$MQTT_URL" --topic "dsf/m/$b/ns1/mci1/$vm" --fmt lp "$payload" ||
        fail "dsf-bus-send failed"
}
now_ns() { date +%s%N; }

# events RULE STATE: how many events of RULE with STATE were published.
events() {
    grep -c "^dsf/alarm/ns1/mci1/$1 .*\"state\":\"$2\"" "$WORK/sub-events.log" || true
}

# alarm_state RULE: the state the API reports for RULE's first active alarm, or "none".
alarm_state() {
    curl -sf "$API/api/v1/alarms" | python3 -c '
import json, sys
a = [x for x in json.load(sys.stdin)["alarms"] if x["rule"] == sys.argv[1]]
print(a[0]["state"] if a else "none")' "$1"
}
state_is() { [ "$(alarm_state "$1")" = "$2" ]; }

# check_event_schema: every captured event validates against schemas/alarm-event.schema.json.
check_event_schema() {
    python3 - "$DSF_SRC/schemas/alarm-event.schema.json" "$WORK/sub-events.log" <<'PY' ||
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
n = 0
for line in open(sys.argv[2]):
    jsonschema.validate(json.loads(line.split(" ", 1)[1]), schema)
    n += 1
assert n, "no events"
print(n, "events valid against alarm-event.schema.json")
PY
        fail "an event does not follow schemas/alarm-event.schema.json"
}

# stop_alarm_clean: SIGTERM; the engine must exit 0 (with the sanitizers' leak check).
stop_alarm_clean() {
    local rc=0
    kill -TERM "$ALARM_PID"
    wait "$ALARM_PID" 2>/dev/null || rc=$?
    [ $rc = 0 ] || fail "the engine exited with $rc on SIGTERM"
}
