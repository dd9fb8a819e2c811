# Shared by the balancer_* tests: mosquitto, InfluxDB, collectors following the balancer's
# assignments (heartbeat 1s) and balancers, and a capture of every assignment and heartbeat
# with its arrival time ($WORK/sub-bus.log, read by check_assign.py). The ack-aware load
# generator's runs ("zero points missing with 200 agents") plug in here: start it after
# start_collectors and check its per-series report where these tests check ownership.
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
BALANCER="$DSF_BUILD/balancer/damselfly-balancer"
CHECK="python3 $DSF_SRC/tests/integration/check_assign.py"
declare -A CPID CPORT BPID BPORT

start_stack() {
    start_mosquitto
    start_influxd
    influx_create_db dsf
    bg sub-bus stdbuf -oL mosquitto_sub -p "$MQTT_PORT" -t 'dsf/c/+/assign' -t 'dsf/c/+/hb' -F '%U %t %p'
}

start_collector() { # ID [--set k=v ...]
    local id=$1; shift
    CPORT[$id]=${CPORT[$id]:-$(free_port)}
    bg "collector-$id-$SECONDS" "$COLLECTOR" --set id="$id" --set mqtt.url="$MQTT_URL" \
        --set mqtt.buckets=none --set mqtt.follow_assign=true --set heartbeat=1s \
        --set output.url="$INFLUX_URL" --set output.db=dsf --set batch.interval=200ms \
        --set http.listen="127.0.0.1:${CPORT[$id]}" "$@"
    CPID[$id]=$BG_PID
    wait_for 10 curl -sf "http://127.0.0.1:${CPORT[$id]}/healthz" || fail "collector $id did not start"
}

start_balancer() { # ID [--set k=v ...]
    local id=$1; shift
    BPORT[$id]=${BPORT[$id]:-$(free_port)}
    bg "balancer-$id-$SECONDS" "$BALANCER" --set id="$id" --set mqtt.url="$MQTT_URL" \
        --set state.dir="$WORK/bal-$id" --set http.listen="127.0.0.1:${BPORT[$id]}" "$@"
    BPID[$id]=$BG_PID
    wait_for 10 curl -sf "http://127.0.0.1:${BPORT[$id]}/healthz" || fail "balancer $id did not start"
}

bal_get() { # ID PATH
    curl -sf -H "Authorization: Bearer $(cat "$WORK/bal-$1/http.token")" \
        "http://127.0.0.1:${BPORT[$1]}$2"
}

bal_metric() { # ID NAME [LABELS]
    METRIC_HEADER="Authorization: Bearer $(cat "$WORK/bal-$1/http.token")" \
        metric "http://127.0.0.1:${BPORT[$1]}/metrics" "$2" "${3:-}"
}

leading() { [ "$(bal_metric "$1" damselfly_balancer_leader)" = 1 ]; }

col_metric() { # ID NAME
    metric "http://127.0.0.1:${CPORT[$1]}/metrics" "$2"
}

# owned "IDS": every bucket in exactly one retained assignment, of one of IDS, each applied.
owned() { $CHECK owned "$WORK/sub-bus.log" "$1" >"$WORK/owners.json"; }
owners_now() { $CHECK owned "$WORK/sub-bus.log" "$1"; }

# moved BEFORE AFTER: "count owner-pairs" of the buckets whose owner changed.
moved() {
    python3 - "$1" "$2" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
ch = [(a[k], b[k]) for k in a if a[k] != b[k]]
print(len(ch), " ".join(sorted({f"{x}->{y}" for x, y in ch})))
PY
}

# vms_in "BUCKETS": one VM name per bucket whose key ns1/m1/NAME hashes to it.
vms_in() {
    python3 - "$1" <<'PY'
import itertools, sys
want = {int(b) for b in sys.argv[1].split()}
found = {}
for i in itertools.count():
    name = f"vm-{i}"
    h = 2166136261
    for c in f"ns1/m1/{name}".encode():
        h = ((h ^ c) * 16777619) & 0xffffffff
    if h % 64 in want and h % 64 not in found:
        found[h % 64] = name
    if len(found) == len(want):
        break
print(" ".join(f"{b}:{found[b]}" for b in sorted(found)))
PY
}

# send_each "BUCKETS" TAG: one line to each bucket (QoS 1), measurement bal, tag run=TAG.
send_each() {
    local pair
    for pair in $(vms_in "$1"); do
        printf 'bal,vm=%s,run=%s x=1i %s\n' "${pair#*:}" "$2" "$(date +%s%N)" |
            mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -t "dsf/m/${pair%%:*}/ns1/m1/${pair#*:}" \
                -s -D publish user-property fmt lp
    done
}

stored() { # TAG -> points stored with run=TAG
    influx_query dsf "SELECT count(x) FROM bal WHERE run='$1'" |
        python3 -c 'import json,sys; s=json.load(sys.stdin)["results"][0].get("series"); print(s[0]["values"][0][1] if s else 0)'
}
stored_is() { [ "$(stored "$1")" = "$2" ]; }

points_in() { # IDS: the collectors' points_in_total summed
    local id total=0 v
    for id in $1; do
        v=$(col_metric "$id" damselfly_collector_points_in_total) || v=0
        total=$((total + ${v%.*}))
    done
    echo "$total"
}
