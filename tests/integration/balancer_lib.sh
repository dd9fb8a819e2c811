# shellcheck shell=bash
# Helpers for tests of a pool of collectors following bucket assignments (the balancer's
# acceptance): collectors with mqtt.follow_assign, their faults, assignments by hand, the
# agent-faithful load (dsf-bench-load --acks) and the seq check of the store (check_seq.py).
# The balancers themselves (start_balancer, bal_get, bal_metric, leading) and a capture of every
# assignment and heartbeat with its arrival time ($WORK/sub-bus.log, read by check_assign.py:
# owned, owners_now, moved). Source this (it sources lib.sh); call bal_start_stack first.
#
#   bal_start_stack                  mosquitto, influxd with database dsf, heartbeat capture
#   start_collector ID [ARGS...]     a collector following dsf/c/ID/assign (ARGS: more --set)
#   kill_collector ID                kill -9 (the broker sends its Will)
#   stop_collector ID                SIGTERM, waits for it to exit
#   pause_collector ID / resume_collector ID    SIGSTOP / SIGCONT (no Will: silence)
#   restart_collector ID [ARGS...]   after kill/stop: same id (same session), same port
#   assign ID EPOCH [B|LO-HI...]     retained {"epoch":EPOCH,"buckets":[...]} on dsf/c/ID/assign
#   next_epoch                       prints an epoch as a balancer makes them (ms, growing)
#   wait_epoch ID EPOCH [SECS]       until a heartbeat of ID shows EPOCH (it applied it)
#   collector_metric ID NAME [LABELS]
#   start_balancer ID [ARGS...]     a balancer with its own state.dir ($WORK/bal-ID) and port
#   start_load [ARGS...]             200 agents x 3 series, 1 msg/s for LOAD_DURATION (30s)
#   wait_load                        until the load ends; fails unless every message was acked
#   load_field NAME                  a figure of the load's JSON line (sent, resent, ...)
#   check_seq [ARGS...]              every point of the load stored exactly once, or fail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
BALANCER="$DSF_BUILD/balancer/damselfly-balancer"
CHECK="python3 $DSF_SRC/tests/integration/check_assign.py"
LOAD="$DSF_BUILD/tests/tools/dsf-bench-load"
declare -A COLLECTOR_PID=() COLLECTOR_PORT=() COLLECTOR_ARGS=() BPID=() BPORT=()
LAST_EPOCH=0

bal_start_stack() {
    start_mosquitto
    start_influxd
    influx_create_db dsf
    # Heartbeats of every collector, one per line: "dsf/c/ID/hb {...}".
    bg hb mosquitto_sub -V 5 -p "$MQTT_PORT" -t 'dsf/c/+/hb' -v
    # Every assignment and heartbeat with its arrival time, for check_assign.py.
    bg sub-bus stdbuf -oL mosquitto_sub -p "$MQTT_PORT" -t 'dsf/c/+/assign' -t 'dsf/c/+/hb' \
        -F '%U %t %p'
}

start_collector() {
    local id=$1; shift
    [ -n "${COLLECTOR_PORT[$id]:-}" ] || COLLECTOR_PORT[$id]=$(free_port)
    COLLECTOR_ARGS[$id]="$*"
    # mqtt.buckets=none: nothing is consumed before the first assignment arrives.
    bg "collector-$id-$SECONDS" "$COLLECTOR" --set id="$id" --set mqtt.url="$MQTT_URL" \
        --set mqtt.follow_assign=true --set mqtt.buckets=none --set mqtt.session_expiry=1h \
        --set heartbeat=1s --set output.url="$INFLUX_URL" --set output.db=dsf \
        --set batch.interval=200ms --set http.listen="127.0.0.1:${COLLECTOR_PORT[$id]}" "$@"
    COLLECTOR_PID[$id]=$BG_PID
    wait_for 10 curl -sf "http://127.0.0.1:${COLLECTOR_PORT[$id]}/healthz" ||
        fail "collector $id did not start"
}

# Signals go to the collector's own pid, recorded when it was started.
kill_collector() {
    kill -9 "${COLLECTOR_PID[$1]}"
    wait "${COLLECTOR_PID[$1]}" 2>/dev/null || true
}
stop_collector() { stop_pid "${COLLECTOR_PID[$1]}"; }
pause_collector() { kill -STOP "${COLLECTOR_PID[$1]}"; }
resume_collector() { kill -CONT "${COLLECTOR_PID[$1]}"; }
# A stopped process keeps a SIGTERM pending until it runs again: lib.sh's cleanup would wait
# for it forever. Every collector and balancer gets SIGCONT first.
bal_cleanup() {
    local pid
    for pid in "${COLLECTOR_PID[@]}" "${BPID[@]}"; do kill -CONT "$pid" 2>/dev/null || true; done
    cleanup
}
trap bal_cleanup EXIT

restart_collector() {
    local id=$1; shift
    if [ $# -eq 0 ]; then
        # shellcheck disable=SC2086 # the arguments it was started with, split again
        set -- ${COLLECTOR_ARGS[$id]}
    fi
    start_collector "$id" "$@"
}

collector_metric() { # ID NAME [LABELS]
    metric "http://127.0.0.1:${COLLECTOR_PORT[$1]}/metrics" "$2" "${3:-}"
}

# Epochs are a balancer's wall clock in ms, strictly growing: collectors refuse older ones.
next_epoch() {
    local now
    now=$(date +%s%3N)
    [ "$now" -gt "$LAST_EPOCH" ] || now=$((LAST_EPOCH + 1))
    LAST_EPOCH=$now
    echo "$now"
}

assign() { # ID EPOCH [BUCKET|LO-HI...]
    local id=$1 epoch=$2 b list=""; shift 2
    for b in "$@"; do
        case $b in
        *-*) list+=$(seq -s , "${b%-*}" "${b#*-}")"," ;;
        *) list+="$b," ;;
        esac
    done
    mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -r -t "dsf/c/$id/assign" \
        -m "{\"epoch\":$epoch,\"buckets\":[${list%,}]}" ||
        fail "could not publish the assignment of $id"
}

epoch_shown() { # ID EPOCH: a heartbeat of ID shows EPOCH or a later one
    awk -v t="dsf/c/$1/hb" -v e="$2" '$1 == t && match($0, /"epoch":[0-9]+/) {
        if (substr($0, RSTART + 8, RLENGTH - 8) + 0 >= e + 0) found = 1 }
        END { exit !found }' "$WORK/hb.log"
}

wait_epoch() { # ID EPOCH [SECS]
    wait_for "${3:-5}" epoch_shown "$1" "$2" ||
        fail "collector $1 did not show epoch $2 in its heartbeat within ${3:-5} s"
}

# The load runs as its own process: its stdout (one JSON line) goes to $WORK/load.json.
start_load() {
    "$LOAD" --acks --mqtt "$MQTT_URL" --agents "${LOAD_AGENTS:-200}" --lines 3 --interval 1s \
        --duration "${LOAD_DURATION:-30s}" --timeout "${LOAD_TIMEOUT:-100}" "$@" \
        >"$WORK/load.json" 2>"$WORK/load.log" &
    LOAD_PID=$!
    DSF_PIDS+=("$LOAD_PID")
}

wait_load() { # the load's own --timeout bounds the wait
    local rc=0
    wait "$LOAD_PID" || rc=$?
    [ "$rc" = 0 ] || fail "the load ended with $rc, not everything acked: $(cat "$WORK/load.json")"
    log "load: $(cat "$WORK/load.json")"
}

load_field() {
    python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])[sys.argv[2]])' \
        "$WORK/load.json" "$1"
}

check_seq() {
    python3 "$DSF_SRC/tests/integration/check_seq.py" "$INFLUX_URL" dsf "$WORK/load.json" "$@" \
        >"$WORK/check_seq.out" 2>&1 || fail "seq check: $(cat "$WORK/check_seq.out")"
    log "$(head -n 1 "$WORK/check_seq.out")"
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

collector_sum() { # IDS METRIC: the collectors' METRIC summed (a collector without it: 0)
    local id total=0 v
    for id in $1; do
        v=$(collector_metric "$id" "$2") || v=0
        total=$((total + ${v%.*}))
    done
    echo "$total"
}
points_in() { collector_sum "$1" damselfly_collector_points_in_total; }

# The heavy acceptance runs (balancer_zero_*): the load under faults, and what they measure.
#   load_flowing IDS [N]            until each of IDS acked N (200) more messages of the load
#   store_writes                     points InfluxDB was sent (all writes, overwrites too)
#   at_most VALUE LIMIT              VALUE <= LIMIT (decimals)
#   zero_outcome                     the load all acked, check_seq clean
#   rewrites                         points the store was sent twice (overwrites)
#   never_doubled                    no bucket in two retained assignments at any moment

acked() { # ID: messages of the load the collector acked so far
    local v
    v=$(collector_metric "$1" damselfly_collector_acks_total 'result="published"') || v=0
    echo "${v%.*}"
}
acked_at_least() { [ "$(acked "$1")" -ge "$2" ]; }

# load_flowing IDS [N]: each of IDS acks N (200) more messages of the load from now on.
load_flowing() {
    local id
    declare -A base=()
    for id in $1; do base[$id]=$(acked "$id"); done
    for id in $1; do
        wait_for 30 acked_at_least "$id" $((base[$id] + ${2:-200})) ||
            fail "collector $id acked no ${2:-200} more messages of the load in 30 s"
    done
}

# InfluxDB overwrites a point written twice with the same value: the store cannot show it,
# its write statistics can (the monitor's own store is off in start_influxd, so every point
# request is a collector's).
store_writes() {
    influx_query dsf "SHOW STATS FOR 'write'" | python3 -c '
import json, sys
s = json.load(sys.stdin)["results"][0]["series"][0]
print(dict(zip(s["columns"], s["values"][0]))["pointReq"])'
}

at_most() { python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)" "$1" "$2"; }

# zero_outcome: every message acked, every point of every agent series in the store once
# (check_seq: none missing, none extra, none with another seq).
zero_outcome() {
    wait_load
    [ "$(load_field unacked)" = 0 ] || fail "$(load_field unacked) messages unacked at the end"
    check_seq --wait 30
}

# rewrites: points the store was sent beyond those scheduled, i.e. written twice. InfluxDB
# keeps one (same series, time and value), so check_seq cannot see them; a killed
# collector's written but unacked batch is resent by design.
rewrites() {
    echo $(($(store_writes) - $(load_field agents) * $(load_field lines) * $(load_field messages)))
}

# never_doubled: no bucket in two retained assignments at any moment of the capture (check_assign
# doubles allows a move's overlap; a run where nothing moves allows none). Prints the first.
never_doubled() {
    python3 - "$DSF_SRC/tests/integration" "$WORK/sub-bus.log" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from check_assign import owners, replay
for t, a, _ in replay(sys.argv[2]):
    two = {b: o for b, o in owners(a).items() if len(o) > 1}
    if two:
        sys.exit(f"at {t:.3f} buckets in two assignments: {two}")
PY
}
