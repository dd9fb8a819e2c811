# Helpers for damselfly-scraper's integration tests (sourced after lib.sh and alarm_lib.sh).
SCRAPER="$DSF_BUILD/scraper/damselfly-scraper"
COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
EXPORTER=/usr/bin/prometheus-node-exporter
[ -x "$SCRAPER" ] || fail "$SCRAPER is missing: build the tree first"
[ -x "$EXPORTER" ] || fail "$EXPORTER is needed (scripts/install-deps.sh)"

# scraper_pipeline: mosquitto, InfluxDB (database dsf), collector c1 writing to it and the
# alarm engine with the starter agent_down rule at a `for` of 1 s. Sets CPORT.
scraper_pipeline() {
    start_mosquitto
    capture_events
    start_influxd
    influx_create_db dsf
    CPORT=$(free_port)
    bg collector "$COLLECTOR" --set id=c1 --set mqtt.url="$MQTT_URL" --set output.url="$INFLUX_URL" \
        --set output.db=dsf --set batch.interval=200ms --set http.listen="127.0.0.1:$CPORT"
    wait_for 10 curl -sf "http://127.0.0.1:$CPORT/healthz" || fail "the collector did not start"
    python3 - "$DSF_SRC/deploy/alarm.d/agent_down.json" "$WORK/rules/agent_down.json" <<'PY'
import json, sys
rule = json.load(open(sys.argv[1]))
rule["for"] = "1s"
json.dump(rule, open(sys.argv[2], "w"))
PY
    start_alarm
}

# start_scraper ARGS...: the scraper on MQTT_URL, scrape every second, a 900 ms timeout,
# offline after 2 failures; sets SCRAPER_PID and SAPI (base URL).
start_scraper() {
    local port
    port=$(free_port)
    SAPI="http://127.0.0.1:$port"
    bg "scraper-$SECONDS" "$SCRAPER" --set id=s1 --set mqtt.url="$MQTT_URL" \
        --set scrape.interval=1s --set scrape.timeout=900ms --set scrape.max_failures=2 \
        --set http.listen="127.0.0.1:$port" "$@"
    SCRAPER_PID=$BG_PID
    wait_for 10 curl -sf "$SAPI/healthz" || fail "the scraper did not start"
}
scrapes() { metric "$SAPI/metrics" damselfly_scraper_scrapes_total "result=\"$1\"" || echo 0; }
targets_in() { metric "$SAPI/metrics" damselfly_scraper_targets "state=\"$1\"" || echo 0; }

# retained_status NS/MCI/VM: the status retained on the VM's status topic ("" when none).
retained_status() {
    mosquitto_sub -p "$MQTT_PORT" -V 5 -t "dsf/a/$1/status" -C 1 -W 2 2>/dev/null |
        python3 -c 'import json, sys
t = sys.stdin.read().strip()
print(json.loads(t)["status"] if t else "")' 2>/dev/null || true
}
status_is() { [ "$(retained_status "$1")" = "$2" ]; }

# stored MEASUREMENT VM: the number of points of MEASUREMENT stored for VM.
stored() {
    influx_query dsf "SELECT count(value) FROM \"$1\" WHERE vm='$2'" | python3 -c '
import json, sys
r = json.load(sys.stdin)["results"][0]
print(r["series"][0]["values"][0][1] if "series" in r else 0)'
}
stored_some() { [ "$(stored "$1" "$2")" -gt 0 ]; }

# stop_scraper_clean: SIGTERM; the scraper must exit 0 (with the sanitizers' leak check).
stop_scraper_clean() {
    local rc=0
    kill -TERM "$SCRAPER_PID"
    wait "$SCRAPER_PID" 2>/dev/null || rc=$?
    [ $rc = 0 ] || fail "the scraper exited with $rc on SIGTERM"
}

# ---- on a local MCI (after control_lib.sh) --------------------------------------------------

# scraper_mci_stack SPEC_FILE: control_lib's stack (broker with credentials, InfluxDB,
# collector, alarm engine with agent_down at `for` 0s, the bus log) with the principal
# scraper.s1 too, then MCI ns1/m1 from SPEC_FILE (VMs reporting every second). Sets CTL_VMS.
scraper_mci_stack() {
    start_mosquitto_auth --collector c1 --alarm a1 --control --scraper s1
    echo "$MOSQUITTO_PID" >"$CTL_BROKER_PID_FILE"
    start_influxd && influx_create_db "$CTL_DB" || fail "cannot create database $CTL_DB"
    CTL_INTERVAL_MS=1000
    ctl_collector
    ctl_alarm
    alarm_events
    CTL_DRIVER_OPTS=(local.freezer=signal local.mqtt_url="$MQTT_URL" local.interval=1s
        local.agent_binary="${SCRAPER_AGENT_BINARY:-$AGENT}"
        local.install_script="$DSF_SRC/deploy/install-agent.sh"
        bus.password_file="$MQTT_ACL_DIR/passwd" bus.broker_pid_file="$CTL_BROKER_PID_FILE")
    ctl_fed create-mci "$CTL_NS" "$CTL_MCI" --spec "$1" >"$WORK/fed-create.out" 2>&1 ||
        fail "create-mci: $(cat "$WORK/fed-create.out")"
    mapfile -t CTL_VMS < <(ctl_vms)
}

# start_fed_scraper ARGS...: start_scraper as principal scraper.s1 (its password in a 0600
# -c file) on the federation's model, read every second, with the local driver's pull token.
start_fed_scraper() {
    bus_config "$WORK/scraper-bus.json" scraper.s1
    start_scraper -c "$WORK/scraper-bus.json" --set scrape.federation_dir="$FED_DIR" \
        --set scrape.refresh=1s --set scrape.agent_token_file="$FED_DIR/local/pull.token" "$@"
}

# vm_status VM: the retained status of VM of ns1/m1 ("" when none), as the operator reads it.
vm_status() {
    [ -d "$WORK/operator" ] || operator_options
    as_operator mosquitto_sub -p "$MQTT_PORT" -V 5 --retained-only -C 1 -W 2 \
        -t "dsf/a/$CTL_NS/$CTL_MCI/$1/status" 2>/dev/null |
        python3 -c 'import json, sys
t = sys.stdin.read().strip()
print(json.loads(t)["status"] if t else "")' 2>/dev/null || true
}
vm_status_is() { [ "$(vm_status "$1")" = "$2" ]; }

# stored_in DB QUERY: the first value of the first row of an InfluxQL query (0 when none).
stored_in() {
    influx_query "$1" "$2" | python3 -c '
import json, sys
r = json.load(sys.stdin)["results"][0]
print(r["series"][0]["values"][0][1] if "series" in r else 0)'
}
