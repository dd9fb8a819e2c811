# shellcheck shell=bash
# Helpers for tests of a pool of collectors following bucket assignments (the balancer's
# acceptance): collectors with mqtt.follow_assign, their faults, assignments by hand, the
# agent-faithful load (dsf-bench-load --acks) and the seq check of the store (check_seq.py).
# Source lib.sh first, then this; call bal_start_stack before the rest.
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
#   start_load [ARGS...]             200 agents x 3 series, 1 msg/s for LOAD_DURATION (30s)
#   wait_load                        until the load ends; fails unless every message was acked
#   load_field NAME                  a figure of the load's JSON line (sent, resent, ...)
#   check_seq [ARGS...]              every point of the load stored exactly once, or fail

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
LOAD="$DSF_BUILD/tests/tools/dsf-bench-load"
declare -A COLLECTOR_PID=() COLLECTOR_PORT=() COLLECTOR_ARGS=()
LAST_EPOCH=0

bal_start_stack() {
    start_mosquitto
    start_influxd
    influx_create_db dsf
    # Heartbeats of every collector, one per line: "dsf/c/ID/hb {...}".
    bg hb mosquitto_sub -V 5 -p "$MQTT_PORT" -t 'dsf/c/+/hb' -v
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
# for it forever. Every collector gets SIGCONT first.
bal_cleanup() {
    local pid
    for pid in "${COLLECTOR_PID[@]}"; do kill -CONT "$pid" 2>/dev/null || true; done
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
