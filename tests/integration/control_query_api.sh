#!/usr/bin/env bash
# The monitoring query API of damselfly-control against a real InfluxDB holding known points
# (check_query.py writes them and says what each answer must hold): a VM's metric, an MCI's
# over its VMs and per VM, and CB-Dragonfly's path and shape, for each stat and period, values
# checked. Then what a careless or hostile client sends: no token or a wrong one (401),
# unknown metrics, bad periods, stats and durations, traversal and control bytes in names,
# huge query strings (4xx naming the parameter); the store gone (503). The controller keeps
# answering /healthz and counts each kind of answer. A store that never answers: a client that
# leaves before it does, and a stop while a query waits, cost nothing (sanitizers watch).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"

CHECK="$DSF_SRC/tests/integration/check_query.py"
start_influxd
influx_create_db "$CTL_DB" || fail "cannot create database $CTL_DB"
now=$(date +%s)
"$CTL_PY" "$CHECK" points "$now" "$WORK/points.json" >"$WORK/points.lp"
curl -sf -XPOST "$INFLUX_URL/write?db=$CTL_DB&precision=s" --data-binary @"$WORK/points.lp" ||
    fail "cannot write the known points"
ctl_broker_start
ctl_start

# get PATH: GET with the token; sets CTL_STATUS, the body in $WORK/answer.json.
get() {
    CTL_STATUS=$(curl -s --path-as-is -o "$WORK/answer.json" -w '%{http_code}' \
        -H "Authorization: Bearer $CTL_TOKEN" "$CTL_URL$1") || CTL_STATUS=000
}
# values FORM METRIC VM STAT PERIOD PATH: the answer to PATH is 200 and holds what the points give.
values() {
    get "$6"
    [ "$CTL_STATUS" = 200 ] || fail "GET $6: $CTL_STATUS $(head -c 300 "$WORK/answer.json")"
    "$CTL_PY" "$CHECK" check "$WORK/points.json" "$WORK/answer.json" "$1" "$2" "$3" "$4" "$5" ||
        fail "GET $6: $(head -c 600 "$WORK/answer.json")"
}
# refused STATUS PARAM PATH: 4xx STATUS naming PARAM in "parameter".
refused() {
    get "$3"
    [ "$CTL_STATUS" = "$1" ] || fail "GET $3: $CTL_STATUS, expected $1 ($(head -c 300 "$WORK/answer.json"))"
    [ -z "$2" ] || "$CTL_PY" -c '
import json, sys
a = json.load(open(sys.argv[1]))
sys.exit(0 if a.get("parameter") == sys.argv[2] and a.get("error") else "no parameter %s: %s" % (sys.argv[2], a))' \
        "$WORK/answer.json" "$2" || fail "GET $3: the error does not name $2"
}
healthy() {
    curl -sf "$CTL_URL/healthz" >/dev/null || fail "/healthz does not answer after $1"
    kill -0 "$CTL_PID" 2>/dev/null || fail "damselfly-control died after $1"
}

VM=/api/v1/ns/ns1/mci/m1/vm
MCI=/api/v1/ns/ns1/mci/m1/metric
DF=/dragonfly/ns/ns1/mcis/m1/vm
log "values over known points"
for stat in avg min max last; do
    for period in m h; do
        q="period=$period&stat=$stat&duration=5m"
        values vm cpu v1 $stat $period "$VM/v1/metric/cpu?$q"
        values mci cpu '' $stat $period "$MCI/cpu?$q"
        values dragonfly cpu v1 $stat $period \
            "$DF/v1/metric/cpu/info?periodType=$period&statisticsCriteria=$stat&duration=5m"
    done
done
values vm cpu v2 avg d "$VM/v2/metric/cpu?period=d&duration=1h"
values vm cpu "a'b" max m "$VM/a%27b/metric/cpu?stat=max" # a quote in a name: escaped
values vm network v1 avg m "$VM/v1/metric/network?duration=10m"
values mci network '' avg m "$MCI/network?duration=10m"
values dragonfly network v2 avg m "$DF/v2/metric/network/info?duration=10m"
get "$VM/v9/metric/memory"
[ "$CTL_STATUS" = 200 ] && grep -q '"values":\[\]' "$WORK/answer.json" ||
    fail "a VM without points: $CTL_STATUS $(cat "$WORK/answer.json"), expected 200 and no rows"

log "authentication"
for path in "$VM/v1/metric/cpu" "$MCI/cpu" "$DF/v1/metric/cpu/info"; do
    refuses_strangers GET "$CTL_URL$path" "x$CTL_TOKEN"
done

log "bad input"
refused 400 metric "$VM/v1/metric/cpux"
refused 400 metric "$DF/v1/metric/nope/info"
refused 400 period "$VM/v1/metric/cpu?period=w"
refused 400 periodType "$DF/v1/metric/cpu/info?periodType=x"
refused 400 stat "$MCI/cpu?stat=median"
refused 400 statisticsCriteria "$DF/v1/metric/cpu/info?statisticsCriteria=sum"
for d in 5x 0m -1h 100000000m 91d 5 '%00m' 5.5m; do
    refused 400 duration "$VM/v1/metric/cpu?duration=$d"
done
refused 400 duration "$VM/v1/metric/cpu?period=m&duration=30d" # 43200 rows
refused 400 query "$VM/v1/metric/cpu?limit=1"
refused 400 ns "/api/v1/ns/..%2F..%2Fetc/mci/m1/metric/cpu"
refused 400 mci "/api/v1/ns/ns1/mci/../metric/cpu"
refused 400 vm "$VM/..%2f..%2fpasswd/metric/cpu"
refused 400 vm "$VM/a%0Ab/metric/cpu"
refused 400 vm "$VM/a%00b/metric/cpu"
refused 400 vm "$VM/$(printf 'v%.0s' $(seq 64))/metric/cpu"
refused 404 path "$VM/v1/metric/cpu/extra"
refused 404 path "/api/v1/ns/ns1/other"
refused 414 query "$VM/v1/metric/cpu?duration=$(printf 'x%.0s' $(seq 2000))"
healthy "the refused requests"
# Beyond the server's header limit: refused (or cut) before the route sees it.
s=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $CTL_TOKEN" \
    "$CTL_URL$VM/v1/metric/cpu?x=$(head -c 100000 /dev/zero | tr '\0' x)") || true
case $s in 4??|000) ;; *) fail "a 100 kB query string: $s, expected a 4xx" ;; esac
s=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $CTL_TOKEN" \
    "$CTL_URL$VM/v1/metric/cpu")
[ "${s:0:1}" = 4 ] || fail "POST to a query route: $s, expected a 4xx"
healthy "the huge query strings"
values vm cpu v1 avg m "$VM/v1/metric/cpu" # and it still answers queries

log "the store gone"
stop_pid "$INFLUXD_PID"
get "$VM/v1/metric/cpu"
[ "$CTL_STATUS" = 503 ] && grep -q 'store' "$WORK/answer.json" ||
    fail "InfluxDB down: $CTL_STATUS $(cat "$WORK/answer.json"), expected 503 naming the store"
healthy "the store went away"
for r in ok refused store_down; do
    n=$(ctl_metric damselfly_control_queries_total "result=\"$r\"" || true)
    [ "${n:-0}" -ge 1 ] || fail "damselfly_control_queries_total{result=\"$r\"} is '$n'"
done

log "a store that never answers: clients that leave, a stop with a query in flight"
ctl_stop
port=$(free_port)
# Takes connections (the kernel's backlog) and never reads them.
bg silent-store "$CTL_PY" -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
time.sleep(600)' "$port"
wait_for 5 port_open "$port" || fail "the silent store did not start"
ctl_start --set output.url="http://127.0.0.1:$port" --set output.timeout=4s
s=$(curl -s -o /dev/null -w '%{http_code}' --max-time 0.5 -H "Authorization: Bearer $CTL_TOKEN" \
    "$CTL_URL$VM/v1/metric/cpu") || true
[ "$s" = 000 ] || fail "a store that never answers gave $s within 0.5 s"
get "$VM/v1/metric/cpu" # answered when output.timeout is up
[ "$CTL_STATUS" = 503 ] || fail "a store that never answers: $CTL_STATUS, expected 503 after output.timeout"
healthy "a client left before the store answered"
curl -s -o /dev/null -H "Authorization: Bearer $CTL_TOKEN" "$CTL_URL$VM/v1/metric/cpu" &
waiting=$!
sleep 0.5
ctl_stop # exits 0, without a sanitizer report, with the query still waiting on the store
wait "$waiting" || true
log "ok"
