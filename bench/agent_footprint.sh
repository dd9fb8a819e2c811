#!/usr/bin/env bash
# Footprint of damselfly-agent beside its peers, measured in one run on this machine:
#   - peak RSS (VmHWM) while collecting every second,
#   - CPU seconds per 1000 collection cycles (all threads' CPU time over the run),
#   - binary size (stripped static agent without Kafka/TLS and with both).
# Peers: collectd (cpu, memory, df, disk, interface, load, processes plugins, 1 s interval)
# and prometheus-node-exporter (default collectors, scraped every second).
# Usage: bench/agent_footprint.sh [SECONDS]   (default 120; environment BUILD=dir to reuse)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${1:-120}
BUILD=${BUILD:-$SRC/build-bench}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dsf-bench.XXXXXX")
PIDS=()
cleanup() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for tool in collectd prometheus-node-exporter mosquitto; do
    command -v $tool >/dev/null || { echo "missing $tool: run scripts/install-deps.sh all" >&2; exit 2; }
done

build_variant() { # NAME CMAKE-ARGS...
    local dir=$BUILD/$1; shift
    if ! { cmake -S "$SRC" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DDAMSELFLY_STATIC=ON \
        -DDAMSELFLY_TESTS=OFF "$@" && cmake --build "$dir" -j "$(nproc)" --target damselfly-agent; } \
        >"$WORK/build.log" 2>&1; then
        grep -i -m5 error "$WORK/build.log" >&2
        exit 1
    fi
    strip -o "$WORK/$(basename "$dir").stripped" "$dir/agent/damselfly-agent"
}
echo "building static agents (Release)..." >&2
build_variant minimal -DDAMSELFLY_KAFKA=OFF -DDAMSELFLY_TLS=OFF
build_variant full -DDAMSELFLY_KAFKA=ON -DDAMSELFLY_TLS=ON

# cpu_seconds PID: CPU time of all the process's threads, from the scheduler's nanosecond
# accounting (utime/stime tick at 10 ms, too coarse for a light process).
cpu_seconds() { cat /proc/"$1"/task/*/schedstat | awk '{ ns += $1 } END { printf "%.6f", ns / 1e9 }'; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

MQTT_PORT=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$MQTT_PORT" >"$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" >/dev/null 2>&1 & PIDS+=($!)
sleep 0.5

start_agent() { # VARIANT: the stripped static agent of that build, pushing over MQTT
    "$WORK/$1.stripped" --set identity.ns=bench --set identity.mci=m --set identity.vm="$1" \
        --set interval=1s --set mqtt.url="tcp://127.0.0.1:$MQTT_PORT" --set http.listen= \
        --set privileges.drop=false --log-level warn &
    PIDS+=($!)
}
start_agent minimal
MIN_PID=$!
start_agent full
FULL_PID=$!

cat >"$WORK/collectd.conf" <<CONF
Interval 1
BaseDir "$WORK"
PIDFile "$WORK/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin cpu
LoadPlugin memory
LoadPlugin df
LoadPlugin disk
LoadPlugin interface
LoadPlugin load
LoadPlugin processes
CONF
collectd -f -C "$WORK/collectd.conf" >/dev/null 2>&1 & COLLECTD_PID=$!; PIDS+=($COLLECTD_PID)

NE_PORT=$(free_port)
prometheus-node-exporter --web.listen-address="127.0.0.1:$NE_PORT" >/dev/null 2>&1 &
NE_PID=$!; PIDS+=($NE_PID)
sleep 2 # let everything start; measure the steady state only

m0=$(cpu_seconds $MIN_PID); a0=$(cpu_seconds $FULL_PID); c0=$(cpu_seconds $COLLECTD_PID); n0=$(cpu_seconds $NE_PID)
scrapes=0
end=$((SECONDS + DURATION))
while [ $SECONDS -lt $end ]; do
    curl -sf "http://127.0.0.1:$NE_PORT/metrics" >/dev/null && scrapes=$((scrapes + 1))
    sleep 1
done
m1=$(cpu_seconds $MIN_PID); a1=$(cpu_seconds $FULL_PID); c1=$(cpu_seconds $COLLECTD_PID); n1=$(cpu_seconds $NE_PID)

size() { stat -c %s "$1"; }
collectd_size=$(($(size "$(command -v collectd)") + $(cat /usr/lib/collectd/{cpu,memory,df,disk,interface,load,processes}.so | wc -c)))
python3 - "$DURATION" "$scrapes" "$m0" "$m1" "$a0" "$a1" "$c0" "$c1" "$n0" "$n1" \
    "$(hwm_kib $MIN_PID)" "$(hwm_kib $FULL_PID)" "$(hwm_kib $COLLECTD_PID)" "$(hwm_kib $NE_PID)" \
    "$(size "$WORK/minimal.stripped")" "$(size "$WORK/full.stripped")" \
    "$collectd_size" "$(size "$(command -v prometheus-node-exporter)")" <<'PY'
import sys
(dur, scrapes, m0, m1, a0, a1, c0, c1, n0, n1, hm, ha, hc, hn, smin, sfull, sc, sn) = sys.argv[1:]
dur, scrapes = int(dur), int(scrapes)
per1000 = lambda x0, x1, n: (float(x1) - float(x0)) / max(n, 1) * 1000
rows = [
    ("damselfly-agent, MQTT (no TLS/Kafka)", int(hm), per1000(m0, m1, dur), int(smin)),
    ("damselfly-agent, MQTT (TLS+Kafka in)", int(ha), per1000(a0, a1, dur), int(sfull)),
    ("collectd (7 plugins)", int(hc), per1000(c0, c1, dur), int(sc)),
    ("prometheus-node-exporter", int(hn), per1000(n0, n1, scrapes), int(sn)),
]
print(f"{'process':38} {'VmHWM MiB':>10} {'CPU s/1000 cycles':>18} {'binary MB':>10}")
for name, hwm, cpu, size in rows:
    print(f"{name:38} {hwm / 1024:10.2f} {cpu:18.3f} {size / 1e6:10.2f}")
print(f"\nrun: {dur} s, 1 s interval; node_exporter scraped {scrapes} times")
print(f"static stripped agent: {int(smin) / 1e6:.2f} MB without Kafka and TLS "
      f"(target <= 3), {int(sfull) / 1e6:.2f} MB with both (target <= 8)")
agent_cpu = max(rows[0][2], rows[1][2])
print(f"agent RSS with MQTT push {int(hm) / 1024:.2f} MiB (target <= 2.5); "
      f"{int(ha) / 1024:.2f} MiB with TLS and Kafka linked in (a static binary's code is "
      f"resident about as far as its size)")
print(f"agent CPU per cycle is {rows[2][2] / max(agent_cpu, 1e-9):.1f}x below collectd and "
      f"{rows[3][2] / max(agent_cpu, 1e-9):.1f}x below node_exporter (target: below both)")
PY
