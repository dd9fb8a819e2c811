#!/usr/bin/env bash
# On-demand collection through damselfly-control: the broker with the project's ACL, an MCI of
# three local VMs (real agents), the controller asking them over MQTT with v5 response topics.
# A VM's collection comes back with this host's figures (JSON and line protocol); the
# netlatency matrix of the MCI has numbers off the diagonal; a stopped agent gives 504 within
# the timeout (and a null row in the matrix, the others still measured); the cap on waiting
# requests gives 503; bad names 400, unknown VMs 404, no or a wrong token 401. The controller
# keeps running, counts each kind of answer, and stops cleanly, also with a request waiting
# and after a client left before its answer.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"

TIMEOUT_MS=2000
ctl_light_up 3
ctl_start --set ondemand.timeout=${TIMEOUT_MS}ms --set ondemand.max_pending=3
wait_for 10 ctl_bus_up || fail "the controller did not connect to the broker"
V1=${CTL_VMS[0]} V2=${CTL_VMS[1]} V3=${CTL_VMS[2]}
BASE=/api/v1/ns/$CTL_NS/mci/$CTL_MCI

# get PATH: GET with the token; CTL_STATUS, the body in $WORK/answer, the time in GET_MS.
get() {
    local t0
    t0=$(now_ms)
    CTL_STATUS=$(curl -s --path-as-is -o "$WORK/answer" -w '%{http_code}' \
        -H "Authorization: Bearer $CTL_TOKEN" "$CTL_URL$1") || CTL_STATUS=000
    GET_MS=$(($(now_ms) - t0))
}
expect() { # STATUS PATH
    get "$2"
    [ "$CTL_STATUS" = "$1" ] || fail "GET $2: $CTL_STATUS, expected $1: $(head -c 400 "$WORK/answer")"
}
healthy() {
    kill -0 "$CTL_PID" 2>/dev/null || fail "damselfly-control died after $1"
    curl -sf "$CTL_URL/healthz" >/dev/null || fail "/healthz does not answer after $1"
}

log "a VM's collection, JSON: this host's figures"
expect 200 "$BASE/vm/$V1/ondemand"
"$CTL_PY" - "$WORK/answer" "$V1" <<'PY' || fail "JSON answer of $V1: $(head -c 400 "$WORK/answer")"
import json, sys
points, vm = json.load(open(sys.argv[1])), sys.argv[2]
assert all(p["tags"]["vm"] == vm for p in points), "points of another VM"
cpu = [p for p in points if p["name"] == "cpu" and p["tags"].get("cpu") == "cpu-total"]
mem = [p for p in points if p["name"] == "mem"]
assert cpu and mem, "no cpu-total or mem point: %s" % sorted({p["name"] for p in points})
idle = cpu[0]["fields"]["usage_idle"]
assert 0 <= idle <= 100, "usage_idle %r" % idle
kib = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal:")))
total = mem[0]["fields"]["total"]
assert abs(total - kib * 1024) <= kib * 1024 // 100, "mem total %r, the host has %d KiB" % (total, kib)
print("cpu idle %.1f%%, mem total %d bytes" % (idle, total))
PY

log "fmt=lp"
expect 200 "$BASE/vm/$V2/ondemand?fmt=lp"
grep -q "^mem,.*vm=$V2" "$WORK/answer" || fail "line protocol of $V2: $(head -c 300 "$WORK/answer")"
grep -q '^\[' "$WORK/answer" && fail "fmt=lp answered JSON"

# matrix_check STOPPED: 3x3, null diagonal, numbers elsewhere but in STOPPED's row (null,
# with an error naming the timeout); STOPPED "" for none.
matrix_check() {
    "$CTL_PY" - "$WORK/answer" "$1" "${CTL_VMS[@]}" <<'PY'
import json, sys
a, stopped, vms = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3:]
assert sorted(a["vms"]) == sorted(vms), a["vms"]
m = a["matrix"]
assert len(m) == 3, m
for i, vm in enumerate(a["vms"]):
    if vm == stopped:
        assert m[i] is None and "did not answer" in a["errors"][vm], (m[i], a["errors"])
        continue
    assert len(m[i]) == 3 and m[i][i] is None, m[i]
    for j in range(3):
        assert j == i or (isinstance(m[i][j], (int, float)) and 0 <= m[i][j] < 1000), m[i]
assert set(a["errors"]) == ({stopped} if stopped else set()), a["errors"]
print(json.dumps(m))
PY
}
log "netlatency matrix of the MCI"
expect 200 "$BASE/ondemand/netlatency"
matrix_check "" || fail "matrix: $(head -c 600 "$WORK/answer")"

log "bad names, unknown VMs, bad parameters"
for vm in 'a%2Bb' '%23' '..' 'a%2Fb' '%01x' "$V1%2B"; do
    expect 400 "$BASE/vm/$vm/ondemand"
    grep -q '"parameter":"vm"' "$WORK/answer" || fail "400 for vm '$vm' does not name vm"
done
expect 400 "/api/v1/ns/%2B/mci/$CTL_MCI/ondemand/netlatency"
expect 400 "/api/v1/ns/$CTL_NS/mci/m%23/ondemand/netlatency"
expect 400 "$BASE/vm/$V1/ondemand?fmt=xml"
expect 400 "$BASE/vm/$V1/ondemand?fmt=lp&fmt=lp"
expect 400 "$BASE/ondemand/netlatency?fmt=lp"
expect 404 "$BASE/vm/nosuchvm/ondemand"
expect 404 "/api/v1/ns/$CTL_NS/mci/nosuchmci/ondemand/netlatency"
healthy "bad input"

log "authentication"
for path in "$BASE/vm/$V1/ondemand" "$BASE/ondemand/netlatency"; do
    refuses_strangers GET "$CTL_URL$path" "x$CTL_TOKEN"
done

log "a stopped agent: 504 within the timeout, a null row, the cap"
vm_stop "$V3"
# While its request waits (1 of ondemand.max_pending=3), a matrix (3 more) is refused.
curl -s -o "$WORK/stopped.json" -w '%{http_code}' -H "Authorization: Bearer $CTL_TOKEN" \
    "$CTL_URL$BASE/vm/$V3/ondemand" >"$WORK/stopped.status" &
curl_pid=$!
sleep 0.3
expect 503 "$BASE/ondemand/netlatency"
grep -q max_pending "$WORK/answer" || fail "the 503 does not name ondemand.max_pending"
wait "$curl_pid"
expect 504 "$BASE/vm/$V3/ondemand"
[ "$GET_MS" -ge $((TIMEOUT_MS - 100)) ] && [ "$GET_MS" -le $((TIMEOUT_MS + 1000)) ] ||
    fail "504 after $GET_MS ms, the timeout is $TIMEOUT_MS ms"
grep -q "$V3" "$WORK/answer" && grep -q "\"timeout_ms\":$TIMEOUT_MS" "$WORK/answer" ||
    fail "the 504 does not name the VM and the timeout: $(cat "$WORK/answer")"
[ "$(cat "$WORK/stopped.status")" = 504 ] || fail "the first request to $V3: $(cat "$WORK/stopped.status")"
expect 200 "$BASE/ondemand/netlatency"
[ "$GET_MS" -le $((TIMEOUT_MS + 1000)) ] || fail "the matrix took $GET_MS ms"
matrix_check "$V3" || fail "matrix with $V3 stopped: $(head -c 600 "$WORK/answer")"
# A client that leaves before the timeout: the answer has no one to go to (sanitizers watch).
curl -s -m 0.3 -o /dev/null -H "Authorization: Bearer $CTL_TOKEN" "$CTL_URL$BASE/vm/$V3/ondemand" &&
    fail "the request to the stopped $V3 was answered within 0.3 s"
sleep "$((TIMEOUT_MS / 1000 + 1))"
vm_cont "$V3"
healthy "timeouts"
expect 200 "$BASE/vm/$V3/ondemand" # answered again once it goes on

log "counted"
for kv in ok:4 partial:1 timeout:3 refused:1 bad_request:11 not_found:2; do
    n=$(ctl_metric damselfly_control_ondemand_total "result=\"${kv%%:*}\"") || n=missing
    [ "$n" = "${kv#*:}" ] || fail "damselfly_control_ondemand_total{result=\"${kv%%:*}\"} is $n, expected ${kv#*:}"
done
# The stopped agent answers the requests it got while stopped once it goes on: late, dropped.
late_counted() { [ "$(ctl_metric damselfly_control_ondemand_replies_unmatched_total)" -ge 1 ]; }
wait_for 5 late_counted ||
    fail "the late answers of $V3 were not counted as unmatched"
[ "$(ctl_metric damselfly_control_ondemand_pending)" = 0 ] || fail "requests still pending"

log "a stop while a request waits"
vm_stop "$V3"
curl -s -o /dev/null -H "Authorization: Bearer $CTL_TOKEN" "$CTL_URL$BASE/vm/$V3/ondemand" &
curl_pid=$!
one_pending() { [ "$(ctl_metric damselfly_control_ondemand_pending)" = 1 ]; }
wait_for 5 one_pending ||
    fail "the request to the stopped $V3 is not pending"
ctl_stop
wait "$curl_pid" || true
vm_cont "$V3"
log "ok"
