#!/usr/bin/env bash
# The collector's HTTP intakes beside their peers, on the same request bodies in one run:
#  (a) InfluxDB line protocol: lines/s through the collector's POST /write (in front of
#      InfluxDB) beside InfluxDB's own /write ceiling; the collector's CPU seconds per million
#      lines; lines lost (counted in the store: must be 0);
#  (b) Prometheus remote_write: samples/s through the collector's POST /api/v1/write beside
#      vmagent receiving the same requests and forwarding them to InfluxDB's
#      /api/v1/prom/write; CPU seconds per million samples of each.
# The bodies are made once (dsf-bench-http: Telegraf-shaped lines, node_exporter-shaped
# remote_write requests) and posted by dsf-bench-http, PARALLEL (default 4) requests in
# flight; its own CPU share is printed to show it is not what limits. A run ends when
# InfluxDB has taken every point (its httpd pointsWrittenOK), so a path that answers before
# storing (vmagent) is not flattered. The runs alternate for ROUNDS rounds (default 3): rates
# are the best of the rounds (the machine is shared, and noise only slows things down), CPU
# figures the median.
# Usage: bench/collector_http.sh [LP_BODIES LINES RW_BODIES SAMPLES]
#        (default 200 5000 500 2000: 1,001,000 lines in 1 MB bodies, 1,000,000 samples);
#        BUILD=dir reuses a build; COLLECTOR_ARGS="--set key=value ..." adds collector settings;
#        GZIP_BODIES=1 sends the line bodies gzip'd (Telegraf's content_encoding = "gzip"),
#        to InfluxDB and to the collector alike.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
LP_BODIES=${1:-200} LINES=${2:-5000} RW_BODIES=${3:-500} SAMPLES=${4:-2000}
PARALLEL=${PARALLEL:-4} ROUNDS=${ROUNDS:-3}
BUILD=${BUILD:-$SRC/build-bench/release}
for tool in mosquitto influxd vmagent curl python3; do
    command -v $tool >/dev/null || { echo "missing $tool: run scripts/install-deps.sh all" >&2; exit 2; }
done
echo "building (Release) in $BUILD..." >&2
{ cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DDAMSELFLY_TESTS=ON \
    -DDAMSELFLY_SANITIZE=OFF -DDAMSELFLY_FUZZ=OFF &&
    cmake --build "$BUILD" -j "$(nproc)" --target damselfly-collector dsf-bench-http; } \
    >/dev/null || { echo "build failed" >&2; exit 1; }

export DSF_BUILD=$BUILD DSF_SRC=$SRC
. "$SRC/tests/integration/lib.sh"
COLLECTOR="$BUILD/collector/damselfly-collector"
SENDER="$BUILD/bench/dsf-bench-http"
TOKEN=bench-$$-token
TICK=$(getconf CLK_TCK)

cpu_seconds() { # PID: user + system CPU so far
    awk -v t="$TICK" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat"
}
now() { date +%s.%N; }
json() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$@"; }

# points_written: InfluxDB's count of points its HTTP API stored (line protocol and
# Prometheus writes alike), over every database.
points_written() {
    curl -sf "$INFLUX_URL/debug/vars" | python3 -c 'import json, sys
print(sum(v["values"].get("pointsWrittenOK", 0) for k, v in json.load(sys.stdin).items()
          if k.startswith("httpd")))'
}
# stored DB: points of the bodies in DB (not the collector's self-metrics), each
# measurement's count of its fullest field, summed.
stored() {
    python3 - "$INFLUX_URL" "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
url, db = sys.argv[1:]
def query(q):
    u = f"{url}/query?" + urllib.parse.urlencode({"db": db, "q": q})
    return json.load(urllib.request.urlopen(u, timeout=600))["results"][0].get("series", [])
total = 0
shown = query("SHOW MEASUREMENTS WITH MEASUREMENT =~ /^(cpu|mem|disk|diskio|net|system|node_.*)$/")
for (m,) in (shown or [{"values": []}])[0]["values"]:
    for s in query(f'SELECT count(*) FROM "{m}"'):
        total += max(s["values"][0][1:])
print(total)
PY
}

start_mosquitto
start_influxd
"$SENDER" lp --out "$WORK/lp" --bodies "$LP_BODIES" --lines "$LINES" >"$WORK/lp.json"
"$SENDER" rw --out "$WORK/rw" --bodies "$RW_BODIES" --samples "$SAMPLES" >"$WORK/rw.json"
LP_LINES=$(json "$(cat "$WORK/lp.json")" lines)
RW_SAMPLES=$(json "$(cat "$WORK/rw.json")" samples)
LP_HEADERS=()
if [ "${GZIP_BODIES:-0}" = 1 ]; then
    gzip "$WORK"/lp/*
    LP_HEADERS=(--header "Content-Encoding: gzip")
fi
echo "$LP_LINES lines in $LP_BODIES bodies ($(json "$(cat "$WORK/lp.json")" bytes) bytes)," \
    "$RW_SAMPLES samples in $RW_BODIES remote_write bodies ($(json "$(cat "$WORK/rw.json")" bytes)" \
    "bytes, $(json "$(cat "$WORK/rw.json")" raw_bytes) unpacked)" >&2

# run NAME POINTS PID URL FILES...: posts FILES to URL, then waits until InfluxDB stored
# POINTS more points; appends "NAME points seconds cpu(PID) sender-cpu retries influxd-cpu"
# to $WORK/runs.
run() {
    local name=$1 points=$2 pid=$3 url=$4 base t0 cpu0 influx0 out
    shift 4
    base=$(points_written)
    cpu0=$(cpu_seconds "$pid")
    influx0=$(cpu_seconds "$INFLUXD_PID")
    t0=$(now)
    out=$("$SENDER" post --url "$url" --parallel "$PARALLEL" "${SEND_HEADERS[@]}" "$@") ||
        fail "$name: a request was refused"
    all_stored() { [ "$(points_written)" -ge $((base + points)) ]; }
    wait_for 600 all_stored || fail "$name: InfluxDB took $(($(points_written) - base)) of $points points"
    local secs cpu influx_cpu
    secs=$(python3 -c "print($(now) - $t0)")
    cpu=$(python3 -c "print($(cpu_seconds "$pid") - $cpu0)")
    influx_cpu=$(python3 -c "print($(cpu_seconds "$INFLUXD_PID") - $influx0)")
    echo "$name $points $secs $cpu $(json "$out" cpu_seconds) $(json "$out" retries)" \
        "$influx_cpu" >>"$WORK/runs"
    printf '    %-28s %10.0f points/s\n' "$name" "$(python3 -c "print($points / $secs)")" >&2
}

# start_collector DB: a collector with both HTTP intakes on, writing to DB; sets CPORT, CPID.
start_collector() {
    CPORT=$(free_port)
    bg "collector-$1" "$COLLECTOR" --set id="bench-$1" --set mqtt.url="$MQTT_URL" \
        --set http.listen="127.0.0.1:$CPORT" --set http.token="$TOKEN" --set log.level=warn \
        --set output.url="$INFLUX_URL" --set output.db="$1" --set skew=24h \
        --set intake.influx=true --set intake.remote_write=true ${COLLECTOR_ARGS:-}
    CPID=$BG_PID
    wait_for 10 curl -sf "http://127.0.0.1:$CPORT/healthz" || fail "the collector did not start"
}

# start_vmagent DB: vmagent forwarding remote_write to InfluxDB's DB; sets VPORT, VPID.
start_vmagent() {
    VPORT=$(free_port)
    bg "vmagent-$1" vmagent -httpListenAddr="127.0.0.1:$VPORT" -loggerLevel=ERROR \
        -remoteWrite.url="$INFLUX_URL/api/v1/prom/write?db=$1" \
        -remoteWrite.tmpDataPath="$WORK/vmagent-$1"
    VPID=$BG_PID
    wait_for 30 curl -sf "http://127.0.0.1:$VPORT/health" || fail "vmagent did not start"
}

RW_HEADERS=(--header "Content-Encoding: snappy" --header "Content-Type: application/x-protobuf"
    --header "X-Prometheus-Remote-Write-Version: 0.1.0")
: >"$WORK/runs"
for round in $(seq "$ROUNDS"); do
    for db in "ceiling$round" "dsf$round" "vma$round" "dsfrw$round"; do
        influx_create_db "$db"
    done
    echo "round $round/$ROUNDS" >&2
    SEND_HEADERS=("${LP_HEADERS[@]}")
    run "ceiling$round" "$LP_LINES" "$INFLUXD_PID" "$INFLUX_URL/write?db=ceiling$round&precision=ns" "$WORK"/lp/*
    start_collector "dsf$round"
    SEND_HEADERS=("${LP_HEADERS[@]}" --header "Authorization: Token $TOKEN")
    run "collector$round" "$LP_LINES" "$CPID" "http://127.0.0.1:$CPORT/write?db=dsf$round&precision=ns" "$WORK"/lp/*
    stop_pid "$CPID"

    start_vmagent "vma$round"
    SEND_HEADERS=("${RW_HEADERS[@]}")
    run "vmagent$round" "$RW_SAMPLES" "$VPID" "http://127.0.0.1:$VPORT/api/v1/write" "$WORK"/rw/*
    stop_pid "$VPID"
    start_collector "dsfrw$round"
    SEND_HEADERS=("${RW_HEADERS[@]}" --header "Authorization: Bearer $TOKEN")
    run "collector-rw$round" "$RW_SAMPLES" "$CPID" "http://127.0.0.1:$CPORT/api/v1/write" "$WORK"/rw/*
    stop_pid "$CPID"
done

echo "counting the points stored..." >&2
for round in $(seq "$ROUNDS"); do
    for db in "ceiling$round" "dsf$round" "vma$round" "dsfrw$round"; do
        echo "$db $(stored "$db")" >>"$WORK/stored"
    done
done

python3 - "$WORK/runs" "$WORK/stored" "$LP_LINES" "$RW_SAMPLES" "$PARALLEL" <<'PY'
import statistics, sys
runs, stored = {}, dict(l.split() for l in open(sys.argv[2]))
for l in open(sys.argv[1]):
    name, points, secs, cpu, scpu, retries, icpu = l.split()
    kind = name.rstrip("0123456789")
    runs.setdefault(kind, []).append(
        (int(points), float(secs), float(cpu), float(scpu), int(retries), float(icpu)))
lines, samples, parallel = (int(a) for a in sys.argv[3:])
lost = lambda prefix, n: sum(n - int(v) for k, v in stored.items() if k.rstrip("0123456789") == prefix)
def row(label, kind, unit):
    r = runs[kind]
    rate = max(p / s for p, s, *_ in r)
    cpu = statistics.median(c / (p / 1e6) for p, s, c, *_ in r)
    influx = statistics.median(x[5] / (x[0] / 1e6) for x in r)
    sender = max(x[3] / x[1] * 100 for x in r)
    retries = sum(x[4] for x in r)
    print(f"  {label:32} {rate:10,.0f} {unit}/s {cpu:7.2f} {influx:7.2f}"
          f"      {sender:4.1f} %  {retries:7}")
    return rate
print(f"{lines:,} lines, {samples:,} samples per run, {parallel} requests in flight; "
      f"best of {len(runs['ceiling'])} rounds for rates, median for CPU")
print("CPU: seconds per million of the path's own process (influxd for the ceiling), and of")
print("influxd; sender: dsf-bench-http's share of one core (the most of any round)")
print(f"  {'':32} {'rate':>16} {'CPU':>7} {'influxd':>7} {'sender':>11} {'retries':>8}")
print("(a) InfluxDB line protocol, POST /write")
ceil = row("InfluxDB /write (ceiling)", "ceiling", "lines")
coll = row("collector /write -> InfluxDB", "collector", "lines")
print(f"  collector / ceiling                {coll / ceil * 100:11.1f} %")
print(f"  lines lost                         ceiling {lost('ceiling', lines)}, "
      f"collector {lost('dsf', lines)}  (must be 0)")
print("(b) Prometheus remote_write, POST /api/v1/write -> InfluxDB")
vma = row("vmagent -> /api/v1/prom/write", "vmagent", "samples")
crw = row("collector -> /write", "collector-rw", "samples")
cpu = lambda k: statistics.median(c / (p / 1e6) for p, s, c, *_ in runs[k])
print(f"  collector / vmagent                {crw / vma * 100:11.1f} % of the rate, "
      f"{cpu('collector-rw') / cpu('vmagent'):.2f} x the CPU per sample")
print(f"  samples lost                       vmagent {lost('vma', samples)}, "
      f"collector {lost('dsfrw', samples)}  (must be 0)")
PY
