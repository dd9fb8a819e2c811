# Helpers for the controller's acceptance tests (sourced after lib.sh): the whole pipeline
# with real servers - mosquitto refusing anonymous clients, InfluxDB, a collector, an alarm
# engine - and an MCI of local VMs (federation/drivers/local.c: real agents in process groups
# of their own), then damselfly-control on top of it, and what the tests check it with.
#
# Typical use:
#   ctl_stack_up 4                      # broker, store, collector, alarm engine, MCI ns1/m1
#   ctl_policy heal '{"name":"heal", ...}'
#   ctl_start --set breaker.hold=5s     # the controller, with the stack's options
#   vm_kill9 g-2; first_point_after g-2 "$t_ms"
#   [ "$(ctl_calls reboot)" = 1 ]
#
# The VMs are detached processes (own session, not children of the test): the EXIT trap
# stops the controller, terminates the MCI through damselfly-fed and then kills whatever runs
# from the federation directory, before lib.sh's cleanup.
command -v mosquitto_sub >/dev/null || fail "mosquitto_sub is needed (apt-get install mosquitto-clients)"
command -v influxd >/dev/null || fail "influxd (InfluxDB 1.x) is needed"
. "$(dirname "${BASH_SOURCE[0]}")/alarm_notify_lib.sh" # start_sink: the webhook sink

FED="$DSF_BUILD/federation/damselfly-fed"
COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
ALARM="$DSF_BUILD/alarm/damselfly-alarm"
CONTROL="$DSF_BUILD/control/damselfly-control"
for b in "$FED" "$COLLECTOR" "$ALARM" "$AGENT"; do
    [ -x "$b" ] || fail "$b is missing: build the tree first"
done

# The stack's names, fixed so that the tests can say them.
CTL_NS=ns1
CTL_MCI=m1
CTL_SUBGROUP=g
CTL_DB=damselfly
CTL_DOWN_RULE=agent_down    # signal agent_offline, for 0s, crit
CTL_NODATA_RULE=cpu_nodata  # deadman on cpu usage_idle, nodata 2 x interval
CTL_GROUP_RULE=cpu_avg_hot  # avg usage_idle < CTL_HOT_IDLE over the whole MCI (group ns, mci)
# The VMs share the host's CPU: on a busy host (a parallel build) their idle is near 0 and
# cpu_avg_hot fires at once. Set before ctl_stack_up.
CTL_HOT_IDLE=${CTL_HOT_IDLE:-20}
# The VMs' spec (ctl_mci_up): the workload beside each agent (a JSON argument vector, run in
# the VM's directory with DSF_VM, DSF_VM_DIR, ... set) and the user data run as cloud-init
# runs it, after the agent is installed and before it starts (a JSON string; empty: none).
# Set before ctl_stack_up or ctl_light_up; VMs added by a scale out get the same.
CTL_WORKLOAD=${CTL_WORKLOAD:-'["sleep", "3600"]'}
CTL_USER_DATA=${CTL_USER_DATA:-}
FED_DIR="$WORK/fed"
CTL_STATE="$WORK/control"
CTL_POLICIES="$WORK/policies"
CTL_AUDIT="$CTL_STATE/audit.jsonl"
CTL_BROKER_PID_FILE="$WORK/broker.pid"
# The controller's keys for the driver's options: "" gives local.mqtt_url etc. as
# damselfly-fed spells them; one place to change should the controller nest them.
CTL_LOCAL_PREFIX=${CTL_LOCAL_PREFIX:-}
CTL_DRIVER_OPTS=() # KEY=VALUE of the local driver and the agents' broker users (ctl_stack_up)
CTL_PID=""
mkdir -p "$CTL_POLICIES"

now_ms() { date +%s%3N; }
# The interpreter itself, not a version manager's shim: the helpers run it in polling loops.
CTL_PY=$(python3 -c 'import sys; print(sys.executable)')

# ---- the stack ----------------------------------------------------------------------------

# ctl_broker_start [PORT]: mosquitto with the trust model (lib.sh start_mosquitto_auth on the
# first start, start_mosquitto again on PORT for a restart: principals and the agents' users
# kept); its pid in CTL_BROKER_PID_FILE, where damselfly-fed sends SIGHUP after adding a VM's
# user. (Not mosquitto's own pid_file: it writes that after dropping to its own user.)
ctl_broker_start() {
    if [ $# = 0 ]; then
        start_mosquitto_auth --collector c1 --alarm a1 --control
    else
        start_mosquitto "$1"
    fi
    [ "$(cat "/proc/$MOSQUITTO_PID/comm" 2>/dev/null)" = mosquitto ] ||
        fail "pid $MOSQUITTO_PID is not the broker"
    echo "$MOSQUITTO_PID" >"$CTL_BROKER_PID_FILE"
}

# ctl_broker_stop: SIGTERM to the broker, waits for it to exit.
ctl_broker_stop() { stop_pid "$MOSQUITTO_PID"; }

# bus_config FILE PRINCIPAL: a 0600 config file with the principal's broker credentials, for
# a component's -c (no password on a command line).
bus_config() {
    mqtt_creds "$2" | (umask 077 && "$CTL_PY" -c '
import json, sys
json.dump({"mqtt": {"username": sys.argv[1], "password": sys.stdin.read()}}, open(sys.argv[2], "w"))' \
        "$2" "$1")
}

# client_options PRINCIPAL [DIR]: the principal's login for mosquitto_sub and mosquitto_pub in
# DIR (default $WORK/PRINCIPAL, 0600), read through XDG_CONFIG_HOME as `damselfly up` has it.
client_options() {
    local pw dir=${2:-$WORK/$1}
    pw=$(mqtt_creds "$1")
    (
        umask 077
        mkdir -p "$dir"
        printf -- '-u %s\n-P %s\n' "$1" "$pw" >"$dir/mosquitto_sub"
        printf -- '-u %s\n-P %s\n' "$1" "$pw" >"$dir/mosquitto_pub"
    )
}
operator_options() { client_options operator; }

# as_operator mosquitto_sub|mosquitto_pub ARGS...: the client logged in as the operator.
as_operator() { XDG_CONFIG_HOME="$WORK/operator" "$@"; }
# as_alarm_engine ...: the same as the alarm engine a1 (it may publish alarm events).
as_alarm_engine() { XDG_CONFIG_HOME="$WORK/alarm.a1" "$@"; }

# ctl_rules: the alarm rules the controller's policies refer to, in $WORK/rules. A test adds
# rules of its own by writing them there before ctl_stack_up: the engine must load them all.
ctl_rules() {
    local nodata_ms=$((2 * CTL_INTERVAL_MS))
    mkdir -p "$WORK/rules"
    cat >"$WORK/rules/$CTL_DOWN_RULE.json" <<EOF
{"name": "$CTL_DOWN_RULE", "signal": "agent_offline", "for": "0s", "severity": "crit",
 "annotations": {"summary": "the agent of {{vm}} ({{mci}}) went offline"}}
EOF
    cat >"$WORK/rules/$CTL_NODATA_RULE.json" <<EOF
{"name": "$CTL_NODATA_RULE",
 "select": {"measurement": "cpu", "field": "usage_idle",
            "tags": [{"tag": "cpu", "op": "=", "value": "cpu-total"}]},
 "nodata": "${nodata_ms}ms", "annotations": {"summary": "no samples from {{vm}}"}}
EOF
    cat >"$WORK/rules/$CTL_GROUP_RULE.json" <<EOF
{"name": "$CTL_GROUP_RULE",
 "select": {"measurement": "cpu", "field": "usage_idle",
            "tags": [{"tag": "cpu", "op": "=", "value": "cpu-total"}]},
 "group_by": [], "window": "5s", "reduce": "avg", "op": "<",
 "crit": {"threshold": $CTL_HOT_IDLE, "reset": $((CTL_HOT_IDLE + 10))}, "for": "3s",
 "annotations": {"summary": "{{mci}}: CPU idle {{value}}% on average"}}
EOF
}

# ctl_collector: collector c1 on the broker, writing to InfluxDB database CTL_DB.
ctl_collector() {
    local port
    port=$(free_port)
    COLLECTOR_URL="http://127.0.0.1:$port"
    bus_config "$WORK/collector-bus.json" collector.c1
    bg collector "$COLLECTOR" -c "$WORK/collector-bus.json" --set id=c1 \
        --set mqtt.url="$MQTT_URL" --set output.url="$INFLUX_URL" --set output.db="$CTL_DB" \
        --set batch.interval=200ms --set spool.dir="$WORK/collector-spool" \
        --set http.listen="127.0.0.1:$port"
    COLLECTOR_PID=$BG_PID
    wait_for 15 curl -sf "$COLLECTOR_URL/healthz" || fail "the collector did not start"
}

# ctl_alarm: alarm engine a1 on the broker with $WORK/rules; sets ALARM_URL, ALARM_PID.
ctl_alarm() {
    local port
    port=$(free_port)
    ALARM_URL="http://127.0.0.1:$port"
    ctl_rules
    bus_config "$WORK/alarm-bus.json" alarm.a1
    mkdir -p "$WORK/alarm"
    bg alarm "$ALARM" -c "$WORK/alarm-bus.json" --set id=a1 --set mqtt.url="$MQTT_URL" \
        --set rules.dir="$WORK/rules" --set state.dir="$WORK/alarm" \
        --set output.url="$INFLUX_URL" --set output.db="$CTL_DB" \
        --set http.listen="127.0.0.1:$port"
    ALARM_PID=$BG_PID
    wait_for 15 alarm_up || fail "the alarm engine did not start or connect"
    local n
    n=$(curl -sf "$ALARM_URL/api/v1/rules" | "$CTL_PY" -c '
import json, sys
d = json.load(sys.stdin)
print(len(d["rules"] if isinstance(d, dict) else d))')
    local want
    want=$(find "$WORK/rules" -maxdepth 1 -name '*.json' | wc -l)
    [ "$n" = "$want" ] || fail "the alarm engine loaded $n rules, not the $want of $WORK/rules"
}

alarm_up() { curl -sf "$ALARM_URL/healthz" | grep -q '"connected":true'; }

# alarm_events: every alarm event and controller action on the bus, as the operator sees
# them, one a line in $WORK/bus.log: "unix-time topic payload" (a restarted broker is
# rejoined by mosquitto_sub itself).
alarm_events() {
    operator_options
    # env, not as_operator: bg's pid must be mosquitto_sub's own for the cleanup to stop it.
    bg bus env XDG_CONFIG_HOME="$WORK/operator" mosquitto_sub -p "$MQTT_PORT" -V 5 -q 1 \
        -t 'dsf/alarm/#' -t 'dsf/action/#' -F '%U %t %p'
    sleep 0.3
}

# bus_count REGEX: lines of $WORK/bus.log matching REGEX (grep -E).
bus_count() { grep -cE -- "$1" "$WORK/bus.log" || true; }

# alarm_event_count RULE STATE [VM [SINCE_MS]]: alarm events of RULE in STATE on the bus log
# (of VM's group; arrived after SINCE_MS).
alarm_event_count() {
    "$CTL_PY" - "$WORK/bus.log" "$CTL_NS/$CTL_MCI" "$@" <<'PY'
import json, sys
log, nsmci, rule, state = sys.argv[1:5]
vm = sys.argv[5] if len(sys.argv) > 5 else None
since = float(sys.argv[6]) / 1000 if len(sys.argv) > 6 else 0
n = 0
for line in open(log, errors="replace"):
    t, topic, payload = (line.rstrip("\n").split(" ", 2) + ["", ""])[:3]
    if topic != "dsf/alarm/%s/%s" % (nsmci, rule) or float(t) <= since:
        continue
    try:
        e = json.loads(payload)
    except ValueError:
        continue
    n += e.get("state") == state and (vm is None or e.get("group", {}).get("vm") == vm)
print(n)
PY
}
# alarm_event_first_ms RULE STATE VM SINCE_MS: when (ms) the first such event reached the
# operator's subscriber (its arrival as logged, not when a poll saw it); nothing if none.
alarm_event_first_ms() {
    "$CTL_PY" - "$WORK/bus.log" "$CTL_NS/$CTL_MCI" "$@" <<'PY'
import json, sys
log, nsmci, rule, state, vm, since = sys.argv[1:7]
for line in open(log, errors="replace"):
    t, topic, payload = (line.rstrip("\n").split(" ", 2) + ["", ""])[:3]
    if topic != "dsf/alarm/%s/%s" % (nsmci, rule) or float(t) * 1000 <= float(since):
        continue
    try:
        e = json.loads(payload)
    except ValueError:
        continue
    if e.get("state") == state and e.get("group", {}).get("vm") == vm:
        print(int(float(t) * 1000))
        break
PY
}
# alarm_event_seen RULE STATE [VM [SINCE_MS]]: at least one such event (for wait_for).
alarm_event_seen() { [ "$(alarm_event_count "$@")" -ge 1 ]; }

# ctl_fed ARGS...: damselfly-fed on FED_DIR with the driver options the controller gets.
ctl_fed() {
    local sets=() kv
    for kv in "${CTL_DRIVER_OPTS[@]}"; do sets+=(--set "$kv"); done
    "$FED" --state-dir "$FED_DIR" --driver local --log-level warn "${sets[@]}" "$@"
}

# The VMs' workload (the spec's "workload", JSON), set before ctl_stack_up / ctl_light_up.
# CTL_FRAGILE_WORKLOAD makes a VM that dies again right after every start: the workload
# runs in the VM's process group with the VM's directory as its cwd, notes each start in
# the file `starts` there (vm_starts: what the driver really did), and kills the whole group
# - agent included, as a crash would - when that directory holds the file `break`
# (vm_break) or the VM is in region CTL_BAD_REGION, where no replacement survives either.
CTL_BAD_REGION=r9
CTL_FRAGILE_WORKLOAD='["sh", "-c", "echo $$ >>starts; [ -f break ] && kill -9 0; [ \"$DSF_REGION\" = '"$CTL_BAD_REGION"' ] && kill -9 0; exec sleep 3600"]'

# ctl_mci_up N: MCI ns1/m1 of N local VMs g-1..g-N (subgroup g, csp local, region r1, each
# with CTL_WORKLOAD beside its agent in its process group, and CTL_USER_DATA).
ctl_mci_up() {
    local ud=""
    [ -z "$CTL_USER_DATA" ] || ud=", \"userData\": $CTL_USER_DATA"
    cat >"$WORK/spec.json" <<EOF
{"name": "$CTL_MCI",
 "vm": [{"name": "$CTL_SUBGROUP", "subGroupSize": $1, "csp": "local", "region": "r1",
         "workload": $CTL_WORKLOAD$ud}]}
EOF
    ctl_fed create-mci "$CTL_NS" "$CTL_MCI" --spec "$WORK/spec.json" >"$WORK/fed-create.out" 2>&1 ||
        fail "create-mci: $(cat "$WORK/fed-create.out")"
}

# ctl_vms: the VM ids of the MCI, one a line.
ctl_vms() {
    ctl_fed status --json "$CTL_NS" "$CTL_MCI" |
        "$CTL_PY" -c 'import json, sys; print("\n".join(v["id"] for v in json.load(sys.stdin)["vm"]))'
}

# ctl_stack_up N [INTERVAL]: broker, InfluxDB, collector, alarm engine, the bus log, then MCI
# ns1/m1 of N VMs reporting every INTERVAL (default 1s); returns once every VM's cpu points
# are in InfluxDB. Sets MQTT_URL, INFLUX_URL, COLLECTOR_URL, ALARM_URL, FED_DIR, CTL_VMS.
ctl_stack_up() {
    local n=$1 interval=${2:-1s} t0=$SECONDS
    CTL_INTERVAL_MS=$("$CTL_PY" -c '
import re, sys
m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", sys.argv[1])
print(int(float(m[1]) * {"ms": 1, "s": 1000, "m": 60000, None: 1000}[m[2]]))' "$interval") ||
        fail "interval '$interval' is not a duration"
    local t times=""
    t=$(now_ms)
    ctl_lap() { # NAME: how long the part since the last ctl_lap took, for the log
        local n
        n=$(now_ms)
        times+=" $1 $((n - t)) ms,"
        t=$n
    }
    ctl_broker_start && ctl_lap broker
    start_influxd && influx_create_db "$CTL_DB" || fail "cannot create database $CTL_DB"
    ctl_lap influxd
    ctl_collector && ctl_lap collector
    ctl_alarm && alarm_events && ctl_lap alarm
    CTL_DRIVER_OPTS=(local.freezer=signal local.mqtt_url="$MQTT_URL" local.interval="$interval"
        local.agent_binary="$AGENT" local.install_script="$DSF_SRC/deploy/install-agent.sh"
        bus.password_file="$MQTT_ACL_DIR/passwd" bus.broker_pid_file="$CTL_BROKER_PID_FILE")
    ctl_mci_up "$n"
    mapfile -t CTL_VMS < <(ctl_vms)
    [ "${#CTL_VMS[@]}" = "$n" ] || fail "the MCI has ${#CTL_VMS[@]} VMs, not $n"
    ctl_lap "MCI of $n"
    local vm
    for vm in "${CTL_VMS[@]}"; do
        wait_for 30 influx_has_points "$vm" || fail "no cpu point of $vm reached InfluxDB"
    done
    ctl_lap "points stored"
    CTL_STACK_SECONDS=$((SECONDS - t0))
    log "stack up in ${CTL_STACK_SECONDS} s:${times%,}"
}

# ---- the controller -----------------------------------------------------------------------

# ctl_policy NAME JSON: the policy file $CTL_POLICIES/NAME.json (before ctl_start).
ctl_policy() { printf '%s\n' "$2" >"$CTL_POLICIES/$1.json"; }

# ctl_notify_file: a routing file (docs/alarm-notify.md) sending everything at once to the
# webhook sink "hook" ($WORK/hook.jsonl).
ctl_notify_file() {
    [ -n "${hook_PORT:-}" ] || start_sink hook
    cat >"$WORK/ctl-notify.json" <<EOF
{"route": {"receiver": "hook", "group_by": ["..."], "group_wait": "200ms",
           "group_interval": "1s", "repeat_interval": "1h"},
 "receivers": [{"name": "hook", "retry": {"initial": "100ms", "max": "1s", "attempts": 5},
                "webhook_configs": [{"url": "http://127.0.0.1:$hook_PORT/hook"}]}]}
EOF
}

# ctl_start [ARGS...]: damselfly-control in the background with the stack's options (its
# broker password in a 0600 -c file), extra ARGS (--set k=v) last; waits for /healthz. Sets
# CTL_PID, CTL_URL and CTL_TOKEN (state.dir/http.token).
ctl_start() {
    [ -x "$CONTROL" ] || fail "$CONTROL is missing: build the tree first"
    local port sets=() kv
    port=$(free_port)
    CTL_URL="http://127.0.0.1:$port"
    for kv in "${CTL_DRIVER_OPTS[@]}"; do
        case $kv in
            bus.*) sets+=(--set "federation.$kv") ;;
            *) sets+=(--set "$CTL_LOCAL_PREFIX$kv") ;;
        esac
    done
    ctl_notify_file
    bus_config "$WORK/control-bus.json" control
    mkdir -p "$CTL_STATE"
    bg "control-$SECONDS" "$CONTROL" -c "$WORK/control-bus.json" --set id=k1 \
        --set policies.dir="$CTL_POLICIES" --set state.dir="$CTL_STATE" \
        --set federation.dir="$FED_DIR" "${sets[@]}" --set mqtt.url="$MQTT_URL" \
        --set alarm.engines="${ALARM_URL:-}" --set output.url="${INFLUX_URL:-}" \
        --set output.db="$CTL_DB" --set notify.config="$WORK/ctl-notify.json" \
        --set http.listen="127.0.0.1:$port" "$@"
    CTL_PID=$BG_PID
    local deadline=$((SECONDS + 15))
    until curl -sf "$CTL_URL/healthz" >/dev/null 2>&1; do
        kill -0 "$CTL_PID" 2>/dev/null || fail "damselfly-control exited at start"
        [ $SECONDS -lt $deadline ] || fail "damselfly-control did not answer $CTL_URL/healthz"
        sleep 0.1
    done
    CTL_TOKEN=$(cat "$CTL_STATE/http.token") || fail "no API token in $CTL_STATE/http.token"
    # Its breaker blocks every action while the observer bus is down: an alarm sent before it
    # connected would be blocked. Tests that start it without a broker wait 5 s more, no more.
    wait_for 5 ctl_bus_up || true
}
ctl_bus_up() { curl -sf "$CTL_URL/healthz" | grep -q '"bus":true'; }

# ctl_stop: SIGTERM; the controller must exit 0 (sanitizers included).
ctl_stop() {
    local rc=0
    [ -n "$CTL_PID" ] || return 0
    kill -TERM "$CTL_PID"
    wait "$CTL_PID" 2>/dev/null || rc=$?
    CTL_PID=""
    [ $rc = 0 ] || fail "damselfly-control exited with $rc on SIGTERM"
}

# ctl_kill9: the controller dies without a word (a crash).
ctl_kill9() {
    [ -n "$CTL_PID" ] || return 0
    kill -9 "$CTL_PID"
    wait "$CTL_PID" 2>/dev/null || true
    CTL_PID=""
}

# ctl_metric NAME [LABELS]: a sample of the controller's /metrics (LABELS as written between
# the braces, e.g. 'op="reboot"'), as lib.sh's metric.
ctl_metric() { METRIC_HEADER="Authorization: Bearer $CTL_TOKEN" metric "$CTL_URL/metrics" "$@"; }

# ctl_calls [OP]: the sum of damselfly_control_federation_calls_total over its label sets
# (only those with op="OP" when given); 0 when there is none. Fails, printing nothing, when
# the controller does not answer: a dead controller makes no calls, and proves nothing.
ctl_calls() {
    local m
    m=$(curl -sf -H "Authorization: Bearer $CTL_TOKEN" "$CTL_URL/metrics") ||
        fail "damselfly-control's /metrics does not answer"
    awk -v op="${1:-}" '
        $1 ~ /^damselfly_control_federation_calls_total(\{|$)/ &&
        (op == "" || index($1, "op=\"" op "\"")) { s += $2 }
        END { printf "%d\n", s }' <<<"$m"
}

# ctl_api METHOD PATH [BODY]: the controller's API with the bearer token. Prints the body;
# sets CTL_STATUS and CTL_BODY (call it outside $(...) to see them).
ctl_api() {
    local data=()
    [ $# -lt 3 ] || data=(-H 'Content-Type: application/json' --data-binary "$3")
    CTL_STATUS=$(curl -s -o "$WORK/ctl-api.out" -w '%{http_code}' -X "$1" \
        -H "Authorization: Bearer $CTL_TOKEN" "${data[@]}" "$CTL_URL$2") || CTL_STATUS=000
    CTL_BODY=$(cat "$WORK/ctl-api.out" 2>/dev/null || true)
    printf '%s\n' "$CTL_BODY"
}

# ctl_audit_count PYEXPR: audit records (r, a dict) for which PYEXPR is true; a record
# lacking a key PYEXPR reads does not match.
ctl_audit_count() {
    "$CTL_PY" - "$CTL_AUDIT" "$1" <<'PY'
import json, sys
path, expr = sys.argv[1], sys.argv[2]
code = compile(expr, "PYEXPR", "eval")
n = 0
try:
    lines = open(path).read().splitlines()
except FileNotFoundError:
    lines = []
for line in lines:
    try:
        r = json.loads(line)
        n += bool(eval(code, {}, {"r": r}))
    except (ValueError, KeyError, TypeError, IndexError):
        pass
print(n)
PY
}
# ctl_audit_has PYEXPR [N]: at least N (1) records match (for wait_for).
ctl_audit_has() { [ "$(ctl_audit_count "$1")" -ge "${2:-1}" ]; }

# The audit records the acceptance tests look for, as ctl_audit_count expressions: the
# decision to act, a step that ended well, a chain that healed its target, the breaker.
AUDIT_RUN='r["event"] == "decision" and r["verdict"] == "run"'
AUDIT_STEP_OK='r["event"] == "step" and r["phase"] == "end" and r["ok"] is True'
AUDIT_HEALED='r["event"] == "end" and r["outcome"] == "healed"'
AUDIT_BREAKER_OPEN='r["event"] == "breaker" and r["open"] is True'
AUDIT_BREAKER_CLOSED='r["event"] == "breaker" and r["open"] is False'

# ctl_audit_field PYEXPR KEY: KEY of the last audit record matching PYEXPR (nothing if none).
ctl_audit_field() {
    "$CTL_PY" - "$CTL_AUDIT" "$1" "$2" <<'PY'
import json, sys
path, expr, key = sys.argv[1:4]
code, last = compile(expr, "PYEXPR", "eval"), None
try:
    lines = open(path).read().splitlines()
except FileNotFoundError:
    lines = []
for line in lines:
    try:
        r = json.loads(line)
        if eval(code, {}, {"r": r}):
            last = r
    except (ValueError, KeyError, TypeError, IndexError):
        pass
if last is not None and key in last:
    print(last[key])
PY
}

# ctl_audit_seq: the last seq of the audit log (0 when empty): records after a point in time.
ctl_audit_seq() { ctl_audit_field True seq | grep . || echo 0; }

# ctl_audit_verify: `damselfly-control audit verify` on the controller's log.
ctl_audit_verify() {
    "$CONTROL" audit verify "$CTL_AUDIT" >"$WORK/audit-verify.out" 2>&1 ||
        fail "audit verify: $(cat "$WORK/audit-verify.out")"
}

# webhook_count REGEX: requests the sink answered with 200 whose body matches REGEX
# (Python re.search on the body as received).
webhook_count() {
    [ -f "$WORK/hook.jsonl" ] || { echo 0; return; }
    "$CTL_PY" - "$WORK/hook.jsonl" "$1" <<'PY'
import json, re, sys
pat = re.compile(sys.argv[2])
print(sum(1 for l in open(sys.argv[1]) if (r := json.loads(l))["status"] == 200
          and pat.search(r["body"])))
PY
}

# webhook_seen REGEX [N]: at least N (1) such requests (for wait_for).
webhook_seen() { [ "$(webhook_count "$1")" -ge "${2:-1}" ]; }

# ---- the VMs ------------------------------------------------------------------------------

# vm_field VM KEY: KEY of the VM in `damselfly-fed status --json` (refreshed from the
# processes): a key of the VM object (status, subGroupId, ...), else of its driver data (pid,
# pgid, wpid, ...); state is the federation status. Fails when the VM is not in the model.
vm_field() {
    ctl_fed status --json "$CTL_NS" "$CTL_MCI" | "$CTL_PY" -c '
import json, sys
vm, key = sys.argv[1], {"state": "status"}.get(sys.argv[2], sys.argv[2])
for v in json.load(sys.stdin)["vm"]:
    if v["id"] == vm:
        d = v if key in v else v.get("driver") or {}
        print(d.get(key, ""))
        sys.exit(0)
sys.exit(1)' "$1" "$2"
}

# vm_dir VM: the VM's directory (the local driver's; its workload's working directory).
vm_dir() { echo "$FED_DIR/local/vms/$CTL_NS/$CTL_MCI/$1"; }

# ctl_vm_count: VMs of the MCI that are not Terminated, as the controller's API reads the
# federation's model (no damselfly-fed run: cheap enough to poll).
ctl_vm_count() {
    curl -sf -H "Authorization: Bearer $CTL_TOKEN" "$CTL_URL/api/v1/mci/$CTL_NS/$CTL_MCI" |
        "$CTL_PY" -c '
import json, sys
d = json.load(sys.stdin)
print(sum(1 for v in d["vm"] if v.get("status") != "Terminated"))'
}

# vm_break VM: from its next start on, a VM running CTL_FRAGILE_WORKLOAD dies right away.
vm_break() { : >"$(vm_dir "$1")/break" || fail "cannot create $(vm_dir "$1")/break"; }

# vm_starts VM: how often the driver started the VM's processes (CTL_FRAGILE_WORKLOAD).
vm_starts() { cat "$(vm_dir "$1")/starts" 2>/dev/null | wc -l; }

# vm_procs VM: processes running from the VM's directory (its agent's path is in it).
vm_procs() { ps -eo args= | D="$(vm_dir "$1")/" awk 'index($0, ENVIRON["D"]) { n++ } END { print n + 0 }'; }

# model_vms: the VMs of the federation's stored model as "id status region" lines, read from
# its file (no refresh from the processes, no lock: what the controller itself reads).
model_vms() {
    "$CTL_PY" - "$FED_DIR/mci/$CTL_NS/$CTL_MCI.json" <<'PY'
import json, sys
for v in json.load(open(sys.argv[1])).get("vm", []):
    print(v["id"], v["status"], v.get("spec", {}).get("region", ""))
PY
}

# model_has VM: the VM is in the stored model.
model_has() { model_vms | awk -v vm="$1" '$1 == vm { f = 1 } END { exit !f }'; }

# vm_state VM: the VM's federation status (Running, Suspended, Failed, ...).
vm_state() { vm_field "$1" status; }

# vm_pgid VM: the process group of the VM's agent and workload, from the VM's run.json (no
# damselfly-fed run: a test times what follows the signal), checked as the driver checks a
# pid before adopting it: the agent pid lives, has the recorded start time (field 22 of
# /proc/PID/stat) and is in that group. Never 0 or 1: a signal to -0 or -1 would reach far
# more than the VM.
vm_pgid() {
    "$CTL_PY" - "$(vm_dir "$1")/run.json" <<'PY' || fail "$1 has no live process group"
import json, sys
d = json.load(open(sys.argv[1]))["driver"]
pid, pgid, start = int(d["pid"]), int(d["pgid"]), int(d["start"])
stat = open("/proc/%d/stat" % pid).read()
f = stat[stat.rindex(")") + 2:].split()  # fields from 3 on: the name may hold blanks
if pgid <= 1 or int(f[2]) != pgid or int(f[19]) != start:
    sys.exit("agent %d: pgid %s, start %s; run.json says %d, %d" % (pid, f[2], f[19], pgid, start))
print(pgid)
PY
}

# vm_agent_pid VM: the pid of the VM's agent as the driver recorded it in run.json (no
# damselfly-fed status: that reads the processes and would save a stopped VM as Suspended,
# which the controller then leaves alone as suspended on purpose).
vm_agent_pid() {
    "$CTL_PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["driver"]["pid"])' \
        "$(vm_dir "$1")/run.json"
}

# vm_signal VM SIGNAL: SIGNAL to the VM's process group; VM_SIGNAL_MS is when it was sent
# (for delays measured from the fault itself).
vm_signal() {
    local g
    g=$(vm_pgid "$1") || exit 1
    VM_SIGNAL_MS=$(now_ms)
    kill -s "$2" -- "-$g" || fail "kill -$2 -$g ($1) failed"
}

# vm_kill9 VM / vm_stop VM / vm_cont VM: the VM's agent and workload die (SIGKILL), freeze
# (SIGSTOP: no Last Will, the broker sees a quiet client) or go on (SIGCONT).
vm_kill9() { vm_signal "$1" KILL; }
vm_stop() { vm_signal "$1" STOP; }
vm_cont() { vm_signal "$1" CONT; }

# ---- the store ----------------------------------------------------------------------------

# influx_cpu_query VM WHERE TAIL: time (ms) of the first cpu-total point of VM matching WHERE
# (InfluxQL, "" for none) in the order TAIL sets; prints nothing when there is none.
influx_cpu_query() {
    [[ $1 =~ ^[A-Za-z0-9_.-]+$ ]] || fail "bad VM name '$1'"
    curl -sf -G "$INFLUX_URL/query" --data-urlencode "db=$CTL_DB" --data-urlencode epoch=ms \
        --data-urlencode "q=SELECT usage_idle FROM cpu WHERE ns='$CTL_NS' AND mci='$CTL_MCI' AND vm='$1' AND cpu='cpu-total' $2 $3" |
        "$CTL_PY" -c '
import json, sys
s = json.load(sys.stdin)["results"][0].get("series")
if s:
    print(s[0]["values"][0][0])'
}

# influx_last_point_ms VM: sample time (ms) of the newest cpu point of VM in InfluxDB.
influx_last_point_ms() { influx_cpu_query "$1" "" "ORDER BY time DESC LIMIT 1"; }

influx_has_points() { [ -n "$(influx_last_point_ms "$1")" ]; }

# proc_start_ms PID: when the process started, in ms since the epoch (/proc/PID/stat's start
# time after boot, /proc/stat's btime).
proc_start_ms() {
    "$CTL_PY" - "$1" <<'PY'
import os, sys
ticks = int(open("/proc/%s/stat" % sys.argv[1]).read().rsplit(")", 1)[1].split()[19])
btime = [int(l.split()[1]) for l in open("/proc/stat") if l.startswith("btime")][0]
print(int((btime + ticks / os.sysconf("SC_CLK_TCK")) * 1000))
PY
}

# first_point_after VM T_MS [TIMEOUT_S]: waits (default 30 s) until a cpu point of VM with a
# sample time after T_MS is stored; prints that sample time minus T_MS, in ms. Fails (status
# 1, nothing printed) when none came.
first_point_after() {
    local deadline=$((SECONDS + ${3:-30})) t
    while :; do
        t=$(influx_cpu_query "$1" "AND time > ${2}ms" "ORDER BY time ASC LIMIT 1")
        if [ -n "$t" ]; then
            echo $((t - $2))
            return 0
        fi
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

# ---- cleanup ------------------------------------------------------------------------------

# ctl_cleanup: the controller first (it would heal what is being torn down), then the MCI
# through damselfly-fed (stopped VMs are thawed and terminated), then the process group of
# any agent still running from FED_DIR, then lib.sh's cleanup.
ctl_cleanup() {
    local rc=$? pid pgid own
    set +e
    own=$(ps -o pgid= -p $$ | tr -d ' ')
    [ -z "$CTL_PID" ] || { kill -9 "$CTL_PID"; wait "$CTL_PID"; } 2>/dev/null
    if [ -d "$FED_DIR/mci" ] && [ ${#CTL_DRIVER_OPTS[@]} -gt 0 ]; then
        ctl_fed mci terminate "$CTL_NS" "$CTL_MCI" >"$WORK/fed-cleanup.out" 2>&1
    fi
    # The directory comes through the environment: on awk's command line it would match awk.
    for pid in $(ps -eo pid=,args= | D="$FED_DIR/" awk 'index($0, ENVIRON["D"]) { print $1 }'); do
        pgid=$(ps -o pgid= -p "$pid" | tr -d ' ')
        # The agent's group holds its workload too (a VM's own session, never the test's).
        [ -n "$pgid" ] && [ "$pgid" -gt 1 ] && [ "$pgid" != "$own" ] &&
            kill -CONT -- "-$pgid" && kill -9 -- "-$pgid"
        kill -CONT "$pid"
        kill -9 "$pid"
    done 2>/dev/null
    cleanup
    exit "$rc"
}
trap ctl_cleanup EXIT

# ---- without the pipeline: alarm events published as the engine publishes them ----------

# ctl_light_up N: the broker and MCI ns1/m1 of N VMs (no store, collector or alarm engine):
# for tests that publish alarm events themselves (alarm_publish) and look at the driver.
# Returns once every VM's agent is online (its retained status).
ctl_light_up() {
    ctl_broker_start
    CTL_INTERVAL_MS=1000
    CTL_DRIVER_OPTS=(local.freezer=signal local.mqtt_url="$MQTT_URL" local.interval=1s
        local.agent_binary="$AGENT" local.install_script="$DSF_SRC/deploy/install-agent.sh"
        bus.password_file="$MQTT_ACL_DIR/passwd" bus.broker_pid_file="$CTL_BROKER_PID_FILE")
    ctl_mci_up "$1"
    mapfile -t CTL_VMS < <(ctl_vms)
    [ "${#CTL_VMS[@]}" = "$1" ] || fail "the MCI has ${#CTL_VMS[@]} VMs, not $1"
    local vm
    for vm in "${CTL_VMS[@]}"; do
        wait_for 30 agent_online "$vm" || fail "the agent of $vm is not online"
    done
}

# agent_online VM: its retained status says online.
agent_online() {
    [ -d "$WORK/operator" ] || operator_options
    as_operator mosquitto_sub -p "$MQTT_PORT" -V 5 --retained-only -C 1 -W 2 \
        -t "dsf/a/$CTL_NS/$CTL_MCI/$1/status" 2>/dev/null | grep -q '"online"'
}

# alarm_publish RULE STATE VM N [SEVERITY]: one alarm event of the contract
# (schemas/alarm-event.schema.json) for VM's group as engine a1 publishes it; N numbers the
# occurrence (its starts_at), so a new N is a new occurrence of the same series.
alarm_publish() {
    local rule=$1 state=$2 vm=$3 n=$4 sev=${5:-crit} now body
    now=$(date +%s%N)
    body=$(printf '{"rule":"%s","state":"%s","previous":"inactive","severity":"%s",'`
        `'"previous_severity":"none","group":{"ns":"%s","mci":"%s","vm":"%s"},"value":0,'`
        `'"threshold":0,"op":"==","ts":%s,"sample_ts":%s,"pending_since":0,"starts_at":%s,'`
        `'"ends_at":0,"changed_at":%s,"labels":{},"annotations":{},"engine":"a1"}' \
        "$rule" "$state" "$sev" "$CTL_NS" "$CTL_MCI" "$vm" "$now" "$now" "$((1000000000 * n))" "$now")
    [ -d "$WORK/alarm.a1" ] || client_options alarm.a1
    as_alarm_engine mosquitto_pub -p "$MQTT_PORT" -V 5 -q 1 \
        -t "dsf/alarm/$CTL_NS/$CTL_MCI/$rule" -m "$body" || fail "cannot publish $rule for $vm"
}
fire() { alarm_publish agent_down firing "$1" "$2"; }
resolve() { alarm_publish agent_down resolved "$1" "$2" none; }
