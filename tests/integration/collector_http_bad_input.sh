#!/usr/bin/env bash
# Bad input on the collector's HTTP intakes (InfluxDB /write and Prometheus remote_write, both
# on): garbage, truncated snappy, invalid protobuf, a snappy header that promises 1 GiB, a
# 100 MB body (stated and chunked), a gzip bomb and a line body of 10^6 series. Each gets a
# clear 4xx or is stored, and shows in the collector's counters (but for the 413 libevent
# gives a body over intake.max_body, see big); a 100 MB body is refused without the collector
# holding it (its RSS from /proc); meanwhile a steady stream of good writes is stored whole
# (counted in the store), a good remote_write request afterwards too, and the collector
# stays up.
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
SENDER="$DSF_BUILD/bench/dsf-bench-http"
TOKEN=bad-input-token
# 10^6 new series in one write: InfluxDB's default caps (1,000,000 series a database, 100,000
# values a tag) would refuse some of them in the store, which is not what this test is about.
# shellcheck disable=SC2034 # start_influxd (lib.sh) reads it
INFLUX_DATA_CONF="max-series-per-database = 0
  max-values-per-tag = 0"
start_mosquitto
start_influxd
influx_create_db dsf
CPORT=$(free_port)
C="http://127.0.0.1:$CPORT"
bg collector "$COLLECTOR" --set id=c1 --set mqtt.url="$MQTT_URL" --set http.listen="127.0.0.1:$CPORT" \
    --set http.token="$TOKEN" --set output.url="$INFLUX_URL" --set output.db=dsf \
    --set batch.interval=200ms --set intake.influx=true --set intake.remote_write=true
CPID=$BG_PID
wait_for 10 curl -sf "$C/healthz" || fail "collector did not start"

export METRIC_HEADER="Authorization: Bearer $TOKEN" # the token also guards /metrics
counter() { # NAME [LABELS]: one of the collector's counters
    metric "$C/metrics" "$@" || fail "the collector has no $1{${2:-}}"
}
answers() { counter damselfly_collector_http_requests_total "route=\"$1\",code=\"$2\""; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$CPID/status"; }
# peak_rss_during COMMAND...: runs COMMAND, meanwhile sampling the collector's RSS; sets
# RSS_BEFORE and RSS_PEAK (kB), returns COMMAND's status.
peak_rss_during() {
    RSS_BEFORE=$(rss_kb) RSS_PEAK=$RSS_BEFORE
    "$@" &
    local pid=$! now_kb
    while kill -0 "$pid" 2>/dev/null; do
        now_kb=$(rss_kb)
        [ "$now_kb" -le "$RSS_PEAK" ] || RSS_PEAK=$now_kb
        sleep 0.02
    done
    wait "$pid"
}

# The steady writer: 20 lines every 50 ms to /write until $WORK/stop exists, each request
# sent again after a 503; it writes the lines acknowledged with 204 to $WORK/steady.acked and
# any other answer to $WORK/steady.err.
python3 - "$C" "$TOKEN" "$WORK" >"$WORK/steady.log" 2>&1 <<'PY' &
import os, sys, time, urllib.error, urllib.request
url, token, work = sys.argv[1:]
acked, i, t0 = 0, 0, time.time_ns()
while not os.path.exists(f"{work}/stop"):
    body = "".join(f"steady,w=1 v={i + k}i {t0 + i + k}\n" for k in range(20)).encode()
    req = urllib.request.Request(f"{url}/write?db=dsf", data=body,
                                 headers={"Authorization": f"Token {token}"})
    while True:
        try:
            status = urllib.request.urlopen(req, timeout=120).status
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError as e:
            status = repr(e)
        if status != 503:
            break
        time.sleep(0.2)
    if status != 204:
        open(f"{work}/steady.err", "a").write(f"request {i // 20}: {status}\n")
        break
    acked, i = acked + 20, i + 20
    open(f"{work}/steady.acked.tmp", "w").write(str(acked))
    os.replace(f"{work}/steady.acked.tmp", f"{work}/steady.acked")
    time.sleep(0.05)
PY
STEADY_PID=$!
DSF_PIDS+=("$STEADY_PID")
steady_acked() { cat "$WORK/steady.acked" 2>/dev/null || echo 0; }
steady_past() { [ "$(steady_acked)" -gt "$1" ]; }
wait_for 20 steady_past 0 || fail "the steady writer got no write through"

# The bodies, made here: snappy by hand (a literal-only block is valid snappy), protobuf by
# dsf-bench-http.
"$SENDER" rw --out "$WORK/rw" --bodies 2 --samples 500 >/dev/null || fail "dsf-bench-http rw"
python3 - "$WORK" <<'PY'
import os, sys
work = sys.argv[1]
def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7f | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))
def snappy_literal(data, stated=None):
    out = bytearray(varint(len(data) if stated is None else stated))
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        if len(chunk) <= 60:
            out.append((len(chunk) - 1) << 2)
        else:
            out += bytes([61 << 2]) + (len(chunk) - 1).to_bytes(2, "little")
        out += chunk
    return bytes(out)
good = open(f"{work}/rw/b000000.rw", "rb").read()
open(f"{work}/garbage.bin", "wb").write(os.urandom(65536))
open(f"{work}/truncated.rw", "wb").write(good[: len(good) // 2])
# A WriteRequest whose first series claims more bytes than follow, then random bytes.
open(f"{work}/badproto.rw", "wb").write(snappy_literal(b"\x0a\xff\xff\x03" + os.urandom(4096)))
open(f"{work}/promise.rw", "wb").write(snappy_literal(b"\x0a\x00", stated=1 << 30))
PY

# post ROUTE FILE [CURL-ARGS...]: the status of FILE posted to ROUTE with the token.
post() {
    local route=$1 file=$2
    shift 2
    curl -s -o "$WORK/answer" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H 'Expect:' \
        --data-binary "@$file" "$@" "$C$route"
}
RW_HEADERS=(-H "Content-Encoding: snappy" -H "Content-Type: application/x-protobuf"
    -H "X-Prometheus-Remote-Write-Version: 0.1.0")
# expect WHAT STATUS ROUTE FILE [CURL-ARGS...]: FILE to ROUTE answers STATUS, and the
# collector counts an answer of that code on ROUTE.
expect() {
    local what=$1 want=$2 route=$3 before got
    shift 3
    before=$(answers "$route" "$want")
    got=$(post "$route" "$@")
    [ "$got" = "$want" ] || fail "$what: $got ($(head -c 300 "$WORK/answer")), expected $want"
    [ "$(answers "$route" "$want")" = $((before + 1)) ] ||
        fail "$what: no answer $want counted on $route"
    log "$what: $got $(head -c 200 "$WORK/answer")"
}

rejected_influx0=$(counter damselfly_collector_source_points_rejected_total 'source="influx"')
expect "garbage to /write" 400 /write "$WORK/garbage.bin"
[ "$(counter damselfly_collector_source_points_rejected_total 'source="influx"')" -gt "$rejected_influx0" ] ||
    fail "the garbage lines are not counted as rejected"
expect "garbage to /api/v1/write" 400 /api/v1/write "$WORK/garbage.bin" "${RW_HEADERS[@]}"
expect "truncated snappy" 400 /api/v1/write "$WORK/truncated.rw" "${RW_HEADERS[@]}"
expect "invalid protobuf" 400 /api/v1/write "$WORK/badproto.rw" "${RW_HEADERS[@]}"
expect "snappy stating 1 GiB" 413 /api/v1/write "$WORK/promise.rw" "${RW_HEADERS[@]}"

# big ROUTE CHUNKED: 100 MB of line-shaped bytes posted to ROUTE, their length stated and
# "Expect: 100-continue" (CHUNKED 0: $WORK/big.lp; curl's way for a large body), or streamed
# chunked as they are made (1). The collector must not hold them: its RSS grows by less than
# 50 MB meanwhile. With the length stated the answer is 413 before any byte of the body is
# sent; chunked, the 413 comes once intake.max_body bytes are in and the collector closes the
# connection with the rest unread, so the client sees the 413 or, when the close overtakes
# it, a reset (curl's code 000, or 100 when the interim "100 Continue" was the last answer it
# read). libevent gives that answer before any handler of the collector runs: no
# counter of the collector's sees it (libevent 2.1 has no hook for it).
big() {
    local route=$1 chunked=$2 got
    local curl_post=(curl -s -o "$WORK/answer" -w '%{http_code}' -X POST
        -H "Authorization: Bearer $TOKEN" "$C$route")
    if [ "$chunked" = 1 ]; then
        stream_big() { make_big /dev/stdout | "${curl_post[@]}" -T - >"$WORK/big.status"; }
    else
        stream_big() { "${curl_post[@]}" -H "Expect: 100-continue" -T "$WORK/big.lp" >"$WORK/big.status"; }
    fi
    peak_rss_during stream_big || true # the status is checked below
    got=$(cat "$WORK/big.status")
    [ "$got" = 413 ] || [ "$chunked$got" = 1000 ] || [ "$chunked$got" = 1100 ] ||
        fail "100 MB to $route (chunked=$chunked): $got, expected 413"
    log "100 MB to $route (chunked=$chunked): $got; RSS $((RSS_BEFORE / 1024)) MB before, at most $((RSS_PEAK / 1024)) MB meanwhile"
    [ $((RSS_PEAK - RSS_BEFORE)) -lt $((50 * 1024)) ] ||
        fail "the collector's RSS grew by $(((RSS_PEAK - RSS_BEFORE) / 1024)) MB on a 100 MB body"
}
make_big() { # FILE: 100 MB of lines
    python3 -c 'import sys
line = b"big,host=h x=1 1\n" * 4096
with open(sys.argv[1], "wb") as f:
    for _ in range(100 * 1000 * 1000 // len(line)): f.write(line)' "$1"
}
make_big "$WORK/big.lp"
big /write 0
big /write 1
big /api/v1/write 0
rm -f "$WORK/big.lp"

# A gzip bomb: 1 GiB of zeros in 4.6 MB; 413 once the decompression passes intake.max_decoded
# (64 MiB), the collector holding far less than the GiB meanwhile.
head -c 1G /dev/zero | gzip -1 >"$WORK/bomb.gz"
peak_rss_during expect "gzip bomb ($(stat -c %s "$WORK/bomb.gz") bytes, 1 GiB decompressed)" \
    413 /write "$WORK/bomb.gz" -H "Content-Encoding: gzip" || exit 1
log "RSS $((RSS_BEFORE / 1024)) MB before the bomb, at most $((RSS_PEAK / 1024)) MB meanwhile"
[ $((RSS_PEAK - RSS_BEFORE)) -lt $((512 * 1024)) ] ||
    fail "the collector's RSS grew by $(((RSS_PEAK - RSS_BEFORE) / 1024)) MB on the gzip bomb"

# 10^6 series in one line body (gzip'd, as Telegraf sends): stored whole, or refused with
# every line counted.
SERIES=1000000
python3 - "$WORK/series.gz" "$SERIES" <<'PY'
import gzip, sys, time
path, n = sys.argv[1], int(sys.argv[2])
ts = time.time_ns()
with gzip.open(path, "wb", compresslevel=1) as f:
    for i in range(0, n, 1000):
        f.write("".join(f"wide,a={i // 1000},b={k} v={k}i {ts}\n" for k in range(1000)).encode())
PY
rejected_before=$(counter damselfly_collector_source_points_rejected_total 'source="influx"')
got=$(post /write "$WORK/series.gz" -H "Content-Encoding: gzip" --max-time 500) || true
log "10^6 series: $got $(head -c 200 "$WORK/answer")"
# count_of FIELD FROM: FIELD's values in the store, summed over the measurements FROM names.
count_of() {
    influx_query dsf "SELECT count($1) FROM $2" | python3 -c 'import json, sys
print(sum(s["values"][0][1] for s in json.load(sys.stdin)["results"][0].get("series", [])))'
}
rejected=$(($(counter damselfly_collector_source_points_rejected_total 'source="influx"') - rejected_before))
stored=$(count_of v wide)
log "10^6 series: $stored stored, $rejected rejected"
case $got in
204) [ "$stored" = "$SERIES" ] || fail "10^6 series: 204 but $stored stored" ;;
4??) [ $((stored + rejected)) = "$SERIES" ] || fail "10^6 series: $got, $stored stored + $rejected rejected" ;;
*) fail "10^6 series: $got" ;;
esac

# After all that: a good remote_write request is stored, the steady stream went on.
expect "a good remote_write request" 204 /api/v1/write "$WORK/rw/b000001.rw" "${RW_HEADERS[@]}"
acked=$(steady_acked)
wait_for 20 steady_past $((acked + 100)) || fail "the steady writes stopped going through"
touch "$WORK/stop"
wait "$STEADY_PID" || true
[ ! -s "$WORK/steady.err" ] || fail "a steady write was refused: $(cat "$WORK/steady.err")"
curl -sf "$C/healthz" >/dev/null || fail "the collector died"
acked=$(steady_acked)
steady_stored=$(count_of v steady)
[ "$steady_stored" = "$acked" ] ||
    fail "the steady writer had $acked lines acknowledged, the store holds $steady_stored"
rw_stored=$(count_of value '/^node_/')
[ "$rw_stored" = 500 ] || fail "the good remote_write request's 500 samples: $rw_stored stored"
curl -sf -H "$METRIC_HEADER" "$C/metrics" | grep -E '^damselfly_collector_(http_requests_total|source_points)' |
    grep -v ' 0$'
log "ok: every bad body refused and counted; $acked steady lines acknowledged and stored"
