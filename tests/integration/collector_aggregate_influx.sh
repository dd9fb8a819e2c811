#!/usr/bin/env bash
# Aggregation: 2 s samples from three VMs go through mosquitto to a collector that folds them
# into 10 s windows; the same samples go straight to a second InfluxDB database. The stored
# 10 s points must equal InfluxDB's own GROUP BY time(10s) over the raw data (mean, min, max,
# last, sum, count; integers keep last by default), a sample arriving after its window was
# emitted is dropped and counted, messages are acked only once their window's point is
# stored, a copy of a message is not folded twice, and the windows still open at shutdown are
# written before the collector exits.
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
# acks_check VM WANT [FROM]: every seq in WANT (like 1-30,40) was acked to VM and, with FROM,
# none from FROM on.
acks_check() {
    python3 - "$WORK/acks.log" "$@" <<'PY'
import json, sys
log, vm, spec = sys.argv[1:4]
not_from = int(sys.argv[4]) if len(sys.argv) > 4 else None
want = set()
for part in spec.split(","):
    lo, _, hi = part.partition("-")
    want.update(range(int(lo), int(hi or lo) + 1))
acked = set()
for line in open(log):
    topic, _, payload = line.partition(" ")
    if topic.split("/")[4] == vm:
        for lo, hi in json.loads(payload)["ranges"]:
            acked.update(range(lo, hi + 1))
early = sorted(s for s in acked if not_from is not None and s >= not_from)
print(f"{vm}: acked {len(acked)} messages; not acked: {sorted(want - acked)}; acked early: {early}")
sys.exit(0 if want <= acked and not early else 1)
PY
}
SEND="$DSF_BUILD/tests/tools/dsf-bus-send"
VM1_TOPIC="dsf/m/$(bucket ns1/mci1/vm1 64)/ns1/mci1/vm1"
VM1_BOOT=b000000000000001
[ -x "$SEND" ] || fail "$SEND is missing (build with DAMSELFLY_KAFKA=ON)"
start_mosquitto
start_influxd
for db in agg raw; do
    influx_create_db "$db"
done
CPORT=$(free_port)
RULES="cpu window=10s usage_user=mean usage_system=min usage_idle=max usage_iowait=last"
RULES+=",mem window=10s,net window=10s bytes_recv=sum packets_recv=count"
bg acks mosquitto_sub -V 5 -p "$MQTT_PORT" -t 'dsf/a/+/+/+/ack' -F '%t %p'
bg collector "$COLLECTOR" --set id=agg1 --set mqtt.url="$MQTT_URL" \
    --set output.url="$INFLUX_URL" --set output.db=agg --set batch.interval=200ms \
    --set http.listen="127.0.0.1:$CPORT" --set aggregate.rules="$RULES" --set aggregate.grace=2s
COLLECTOR_PID=$BG_PID
wait_for 10 curl -sf "http://127.0.0.1:$CPORT/healthz" || fail "collector did not start"
sleep 0.5

# 60 s of samples every 2 s (off the window grid, plus one on a window's first nanosecond),
# starting two minutes ago on a 10 s boundary. Two messages cross a window boundary out of
# order (within the grace). Each VM's payloads are published as seq 1..30.
T0=$(( ($(date +%s) / 10 * 10 - 120) * 1000000000 ))
python3 - "$WORK" "$T0" "$SEND" "$MQTT_URL" "$INFLUX_URL" <<'PY' || fail "sending the samples failed"
import random, subprocess, sys, urllib.request
work, t0, send, mqtt, influx = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rnd = random.Random(7)
raw = []
for vm in ("vm1", "vm2", "vm3"):
    msgs = []
    for k in range(30):
        ts = t0 + k * 2_000_000_000 + (0 if k == 10 else 137_000_000 + k * 1_000_003)
        lines = []
        for cpu in ("cpu0", "cpu1", "cpu-total"):
            v = [round(rnd.uniform(-5, 100), rnd.choice((1, 3, 9))) for _ in range(4)]
            lines.append(f"cpu,cpu={cpu},host={vm}.example,ns=ns1,mci=mci1,vm={vm} "
                         f"usage_user={v[0]},usage_system={v[1]},usage_idle={v[2]},"
                         f"usage_iowait={v[3]} {ts}")
        used = rnd.randrange(1 << 30, 1 << 33)
        lines.append(f"mem,host={vm}.example used={used}i,used_percent={used / (1 << 34) * 100} {ts}")
        lines.append(f"net,interface=eth0,host={vm}.example bytes_recv={rnd.randrange(0, 10**12)}i,"
                     f"packets_recv={rnd.randrange(0, 10**6)}i,drop_in=0i {ts}")
        msgs.append("\n".join(lines) + "\n")
        # what the collector stores for a line: the identity tags the topic adds
        raw += [l if l.startswith("cpu") else l.replace(" ", ",ns=ns1,mci=mci1,vm=" + vm + " ", 1)
                for l in lines]
    msgs[4], msgs[5] = msgs[5], msgs[4]    # 9.x s arrives after 10.x s: inside the grace
    msgs[14], msgs[15] = msgs[15], msgs[14]
    h = 2166136261 # the agent's bucket: fnv1a32("ns1/mci1/vm") % 64
    for b in f"ns1/mci1/{vm}".encode():
        h = ((h ^ b) * 16777619) & 0xffffffff
    topic = f"dsf/m/{h % 64}/ns1/mci1/{vm}"
    boot = f"b{int(vm[2:]):015x}" # 16 hex digits, as agents make them
    subprocess.run([send, "--mqtt", mqtt, "--topic", topic, "--seq", "1", "--boot", boot]
                   + msgs, check=True)
    open(f"{work}/{vm}.first", "w").write(msgs[0])
req = urllib.request.Request(influx + "/write?db=raw&precision=ns", data="\n".join(raw).encode())
urllib.request.urlopen(req).read()
PY
sleep 1.5
# The last window (samples 50..58 s, seq 26..30) is still open: its messages are not acked.
for vm in vm1 vm2 vm3; do
    acks_check "$vm" 1-25 26 || fail "acks for $vm before its window was stored"
done
# The open windows are emitted once quiet for window + grace (12 s).
windows_emitted() { metric "http://127.0.0.1:$CPORT/metrics" damselfly_collector_aggregate_windows_total; }
late_dropped() { metric "http://127.0.0.1:$CPORT/metrics" damselfly_collector_dropped_points_total 'reason="late"'; }
emitted_all() { local w; w=$(windows_emitted); [ "${w%.*}" -ge 90 ]; }
wait_for 20 emitted_all || fail "windows emitted: $(windows_emitted), expected 90"
sleep 1
windows=$(metric "http://127.0.0.1:$CPORT/metrics" damselfly_collector_aggregate_windows_total)
log "windows emitted: $windows"
[ "${windows%.*}" = 90 ] || fail "expected 90 windows (3 VMs x 5 series x 6 windows), got $windows"

# Neither a copy of a message sent again (seq 1 of vm1: a duplicate) nor a new message with
# samples for a window already emitted (late) changes a stored point; both are counted. The
# raw database gets neither.
"$SEND" --mqtt "$MQTT_URL" --topic "$VM1_TOPIC" --seq 1 --boot "$VM1_BOOT" \
    "$(cat "$WORK/vm1.first")" || fail "sending the copy failed"
"$SEND" --mqtt "$MQTT_URL" --topic "$VM1_TOPIC" --seq 31 --boot "$VM1_BOOT" \
    "$(sed 's/=[0-9.]*,/=999,/g' "$WORK/vm1.first")" || fail "sending the late message failed"
duplicates() { metric "http://127.0.0.1:$CPORT/metrics" damselfly_collector_aggregate_duplicates_total; }
counted() { [ "$(late_dropped)" = 5 ] && [ "$(duplicates)" = 5 ]; }
wait_for 5 counted || fail "late lines counted: $(late_dropped), duplicates: $(duplicates); expected 5 and 5"
sleep 0.5

python3 - "$INFLUX_URL" "$T0" <<'PY' || fail "aggregated points differ from GROUP BY time(10s)"
import json, math, sys, urllib.parse, urllib.request
url, t0 = sys.argv[1], int(sys.argv[2])
def query(db, q):
    u = url + "/query?" + urllib.parse.urlencode({"db": db, "q": q, "epoch": "ns"})
    res = json.load(urllib.request.urlopen(u))["results"][0]
    out = {}
    for s in res.get("series", []):
        for row in s["values"]:
            out[(s["name"], tuple(sorted(s["tags"].items())), row[0])] = dict(zip(s["columns"][1:], row[1:]))
    return out
span = f"time >= {t0} AND time < {t0 + 60 * 10**9}"
checks = {
    "cpu": "mean(usage_user) AS usage_user, min(usage_system) AS usage_system, "
           "max(usage_idle) AS usage_idle, last(usage_iowait) AS usage_iowait",
    "mem": "last(used) AS used, mean(used_percent) AS used_percent",
    "net": "sum(bytes_recv) AS bytes_recv, count(packets_recv) AS packets_recv, last(drop_in) AS drop_in",
}
bad = 0
for m, sel in checks.items():
    want = query("raw", f"SELECT {sel} FROM {m} WHERE {span} GROUP BY time(10s), * fill(none)")
    got = query("agg", f"SELECT * FROM {m} WHERE {span} GROUP BY *")
    print(f"{m}: {len(got)} aggregated points, {len(want)} from GROUP BY time(10s)")
    if set(got) != set(want) or len(got) == 0:
        print("  series/times differ:", sorted(set(got) ^ set(want))[:5])
        bad += 1
        continue
    for k in want:
        for f, w in want[k].items():
            g = got[k].get(f)
            if f in ("usage_user", "used_percent"):  # means: the same sum, maybe rounded apart
                same = g is not None and math.isclose(g, w, rel_tol=1e-12, abs_tol=1e-12)
            else:
                same = g == w and type(g) is type(w)
            if not same:
                print(f"  {k} {f}: collector {g!r}, InfluxDB {w!r}")
                bad += 1
sys.exit(1 if bad else 0)
PY

# Windows open at shutdown are written before the collector exits.
T1=$((T0 + 70 * 1000000000))
"$SEND" --mqtt "$MQTT_URL" --topic "$VM1_TOPIC" --seq 40 --boot "$VM1_BOOT" \
    "cpu,cpu=cpu0,host=vm1.example usage_user=1.5,usage_system=2,usage_idle=3,usage_iowait=4 $((T1 + 1))
cpu,cpu=cpu0,host=vm1.example usage_user=2.5,usage_system=1,usage_idle=5,usage_iowait=6 $((T1 + 2))" ||
    fail "sending the last window failed"
sleep 0.5
stop_pid "$COLLECTOR_PID"
got=$(influx_query agg "SELECT * FROM cpu WHERE time = $T1 AND cpu = 'cpu0' AND vm = 'vm1'")
echo "$got" | python3 -c '
import json, sys
r = json.load(sys.stdin)["results"][0]["series"][0]
row = dict(zip(r["columns"], r["values"][0]))
assert (row["usage_user"], row["usage_system"], row["usage_idle"], row["usage_iowait"]) == (2, 1, 5, 6), row
' || fail "the window open at shutdown was not written: $got"
# Every message is acked once its window is stored: vm1's late seq 31 and its copy of seq 1
# too (those drops are final), and seq 40, whose window was written at shutdown. Acks of
# messages with nothing left to store go out with the next write.
for vm in vm1 vm2 vm3; do
    want=1-30
    [ $vm = vm1 ] && want=1-31,40
    acks_check "$vm" "$want" || fail "not every message of $vm was acked"
done
log "ok"
