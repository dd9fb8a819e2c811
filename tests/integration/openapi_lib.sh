# Helpers of the tests that hold the daemons to schemas/openapi.yaml (docs/api.md): each
# daemon's arguments for a start with every optional API on (the alarm engine's silences
# need a routing file), on the broker of start_mosquitto.
SPEC="$DSF_SRC/schemas/openapi.yaml"
CHECK="$DSF_SRC/tests/integration/check_openapi.py"
OPENAPI_DAEMONS=(agent collector alarm control balancer scraper)

openapi_bin() { # DAEMON
    echo "$DSF_BUILD/$1/damselfly-$1"
}

# openapi_daemon_args DAEMON: sets DAEMON_ARGS (no http.*), its files under $WORK.
openapi_daemon_args() {
    local d=$1
    case $d in
    agent) DAEMON_ARGS=(--set mqtt.url="$MQTT_URL" --set identity.ns=ns1 --set identity.mci=m1
        --set identity.vm=v1 --set privileges.drop=false) ;;
    collector) DAEMON_ARGS=(--set mqtt.url="$MQTT_URL" --set id=c1 --set intake.influx=true
        --set output.url=http://127.0.0.1:1 --set intake.remote_write=true) ;;
    alarm)
        mkdir -p "$WORK/rules-alarm"
        cp "$DSF_SRC"/deploy/alarm.d/*.json "$WORK/rules-alarm/"
        cat >"$WORK/notify.json" <<'JSON'
{"route": {"receiver": "hook"},
 "receivers": [{"name": "hook", "webhook_configs": [{"url": "http://127.0.0.1:1/hook"}]}]}
JSON
        DAEMON_ARGS=(--set mqtt.url="$MQTT_URL" --set id=a1 --set rules.dir="$WORK/rules-alarm"
            --set state.dir="$WORK/state-alarm" --set notify.config="$WORK/notify.json") ;;
    control)
        mkdir -p "$WORK/policies" "$WORK/federation"
        DAEMON_ARGS=(--set mqtt.url="$MQTT_URL" --set id=k1 --set policies.dir="$WORK/policies"
            --set state.dir="$WORK/state-control" --set federation.dir="$WORK/federation") ;;
    balancer) DAEMON_ARGS=(--set mqtt.url="$MQTT_URL" --set id=b1
        --set state.dir="$WORK/state-balancer") ;;
    scraper) DAEMON_ARGS=(--set mqtt.url="$MQTT_URL" --set id=s1) ;;
    *) fail "unknown daemon $d" ;;
    esac
}
