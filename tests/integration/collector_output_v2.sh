#!/usr/bin/env bash
# InfluxDB 2.x output (a double of its write API: no Debian package) and the writer's
# retries: /api/v2/write with org, bucket and the token; a 429 with Retry-After is waited out,
# 503s and a 500 are retried with growing backoff; every line is stored exactly once. A
# wrong token is a clear error naming the settings to check, and the batch is kept and
# retried rather than dropped.
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
start_mosquitto
V2_PORT=$(free_port)
V2_URL="http://127.0.0.1:$V2_PORT"
bg v2-double python3 "$DSF_SRC/tests/tools/influx_v2_double.py" --port "$V2_PORT" --org acme \
    --bucket metrics --token s3cret --log "$WORK/writes.jsonl" --store "$WORK/stored.lp"
wait_for 10 curl -sf "$V2_URL/health" || fail "the v2 double did not start"
touch "$WORK/writes.jsonl" "$WORK/stored.lp"
CPORT=$(free_port)
start_collector() { # TOKEN
    bg "collector-$1" "$COLLECTOR" --set id=c1 --set mqtt.url="$MQTT_URL" --set output.api=v2 \
        --set output.url="$V2_URL" --set output.org=acme --set output.bucket=metrics \
        --set output.token="$1" --set output.gzip=true --set batch.interval=200ms \
        --set http.listen="127.0.0.1:$CPORT"
    COLLECTOR_PID=$BG_PID
    wait_for 10 curl -sf "http://127.0.0.1:$CPORT/healthz" || fail "collector did not start"
    sleep 0.5
}
send_lines() { # VM N: one message of N lines, x = 1..N
    python3 -c '
import sys, time
now = time.time_ns()
for i in range(1, int(sys.argv[2]) + 1):
    print(f"v2test,vm={sys.argv[1]} x={i}i {now + i}")' "$1" "$2" >"$WORK/$1.lp"
    mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -t "dsf/m/$(bucket "ns1/m1/$1" 64)/ns1/m1/$1" -f "$WORK/$1.lp" \
        -D publish user-property fmt lp
}
stored_lines() { grep -cE "vm=$1[ ,]" "$WORK/stored.lp" || true; }

start_collector s3cret
curl -sf -XPOST "$V2_URL/__double/faults" -d '[{"status": 429, "retry_after": 2},
    {"status": 503}, {"status": 503}, {"status": 500}]' || fail "could not set the faults"
send_lines vm-a 50
all_stored() { [ "$(stored_lines vm-a)" -ge 50 ]; }
wait_for 30 all_stored || fail "$(stored_lines vm-a) of 50 lines stored after the faults"
sleep 1
python3 - "$WORK/writes.jsonl" "$WORK/stored.lp" <<'PY' || fail "retries"
import json, sys
from urllib.parse import parse_qs
writes = [json.loads(l) for l in open(sys.argv[1])]
statuses = [w["status"] for w in writes]
assert statuses == [429, 503, 503, 500, 204], f"answers in order: {statuses}"
gaps = [round(b["time"] - a["time"], 2) for a, b in zip(writes, writes[1:])]
assert gaps[0] >= 1.9, f"Retry-After: 2 was not waited out: the next try came after {gaps[0]} s"
assert all(g >= 0.09 for g in gaps[1:]), f"retries without backoff: {gaps}"
for w in writes:
    q = parse_qs(w["query"])
    assert q == {"org": ["acme"], "bucket": ["metrics"], "precision": ["ns"]}, w["query"]
    assert w["authorization"] == "Token s3cret", w["authorization"]
    assert w["encoding"] == "gzip", w["encoding"]
xs = sorted(int(l.split(" ")[1][2:-1]) for l in open(sys.argv[2]) if "vm=vm-a," in l)
assert xs == list(range(1, 51)), f"stored x values: {xs}"
print(f"answers {statuses}, gaps {gaps} s; 50 lines stored once each")
PY
failed=$(metric "http://127.0.0.1:$CPORT/metrics" damselfly_collector_batches_total 'result="failed"')
retries=$(metric "http://127.0.0.1:$CPORT/metrics" damselfly_collector_retries_total)
[ "$failed" = 4 ] && [ "$retries" = 4 ] || fail "$failed failed batches and $retries retries counted, expected 4"
log "v2 write: Retry-After honoured, 5xx retried with backoff, nothing lost or doubled"

stop_pid "$COLLECTOR_PID"
start_collector wrong-token
send_lines vm-b 5
wait_for 10 grep -q "answered 401" "$WORK/collector-wrong-token.log" ||
    fail "no error for the refused token"
grep "answered 401" "$WORK/collector-wrong-token.log" | head -n 1
grep -q "check output" "$WORK/collector-wrong-token.log" || fail "the error does not say what to check"
two_tries() { [ "$(grep -c '"status": 401' "$WORK/writes.jsonl")" -ge 2 ]; }
wait_for 10 two_tries || fail "the refused batch was not retried"
[ "$(stored_lines vm-b)" = 0 ] || fail "lines stored with a wrong token"
pending=$(metric "http://127.0.0.1:$CPORT/metrics" damselfly_collector_pending_bytes)
[ "${pending%.*}" -gt 0 ] || fail "the refused batch is not kept (pending bytes $pending)"
log "wrong token: a clear error, the batch kept and retried"
log "ok"
