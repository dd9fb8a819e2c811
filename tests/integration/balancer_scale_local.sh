#!/usr/bin/env bash
# The balancer daemon scales its pool with the local runner: it starts scale.min=2
# collectors at once; 200 agents (x4 the later load) push the pool above its target and it
# starts a 3rd collector, which takes buckets; with 50 agents, after the cooldown, it scales
# in: the victim's buckets move away first (its empty assignment confirmed by its heartbeat)
# and only then is it stopped. Zero points missing in both loads (check_seq). The low load is
# stamped 3 h back so that the two loads' series can be checked apart.
. "$(dirname "$0")/balancer_lib.sh"

MEMBERS="$WORK/members"
members_pids() {
    [ -f "$MEMBERS/children.json" ] || return 0
    python3 -c 'import json,sys; [print(c["pid"]) for c in json.load(open(sys.argv[1]))["children"]]' \
        "$MEMBERS/children.json"
}
# The runner's members outlive the balancer by design: none may outlive the test.
kill_members() {
    local pid
    for pid in $(members_pids); do kill -9 "$pid" 2>/dev/null || true; done
}
trap 'kill_members; bal_cleanup' EXIT

bal_start_stack
start_balancer b1 --set runner.kind=local --set runner.local.collector="$COLLECTOR" \
    --set runner.local.dir="$MEMBERS" --set runner.local.id_prefix=sc \
    --set runner.local.stop_timeout=10s \
    --set runner.local.set="mqtt.url=$MQTT_URL,mqtt.buckets=none,mqtt.session_expiry=1h,heartbeat=1s,output.url=$INFLUX_URL,output.db=dsf,batch.interval=200ms" \
    --set scale.min=2 --set scale.max=3 --set scale.target_points_per_s=200 \
    --set scale.target_cpu=0 --set scale.in_ratio=0.5 --set scale.sustain=3s \
    --set scale.cooldown_out=5s --set scale.cooldown_in=20s --set scale.interval=500ms

# pool_has N: N live members, each holding buckets, every bucket owned once (check_assign).
pool_json() { bal_get b1 /api/v1/pool >"$WORK/pool.json"; }
pool_has() {
    pool_json && python3 - "$WORK/pool.json" "$1" <<'PY'
import json, sys
p = [p for p in json.load(open(sys.argv[1]))["pools"] if p["name"] == "default"][0]
live = [m for m in p["members"] if m["alive"] and not m["draining"]]
held = sorted(b for m in live for b in m["buckets"])
sys.exit(not (len(live) == int(sys.argv[2]) and held == list(range(64))
              and all(m["buckets"] and m["epoch"] >= m["assigned_epoch"] for m in live)))
PY
}
decisions() { # DIRECTION
    bal_metric b1 damselfly_balancer_scale_decisions_total \
        "pool=\"default\",direction=\"$1\",reason=\"points_per_s\""
}

wait_for 30 pool_has 2 || fail "the runner did not start 2 collectors sharing 64 buckets: $(cat "$WORK/pool.json")"
[ "$(bal_metric b1 damselfly_balancer_scale_decisions_total \
    'pool="default",direction="out",reason="min"')" = 1 ] || fail "scale.min was not one decision"
log "the runner started sc-1 and sc-2; they share the 64 buckets"

log "high load: 200 agents x 3 series (600 points/s, target 200 per member)"
LOAD_AGENTS=200 LOAD_DURATION=45s start_load
wait_for 30 pool_has 3 || fail "no 3rd collector took buckets: $(cat "$WORK/pool.json")"
[ "$(decisions out)" = 1 ] || fail "the scale out is not counted with reason points_per_s"
[ "$(bal_metric b1 damselfly_balancer_runner_replicas 'pool="default"')" = 3 ] ||
    fail "the runner does not count 3 replicas"
log "scaled out: 3 collectors share the buckets"
wait_load
mv "$WORK/load.json" "$WORK/load-high.json"

log "low load: 50 agents (150 points/s), stamped 3 h back"
LOAD_AGENTS=50 LOAD_DURATION=60s start_load --start "$(($(date +%s) - 3 * 3600))000000000"
python3 "$DSF_SRC/tests/integration/check_seq.py" "$INFLUX_URL" dsf "$WORK/load-high.json" \
    --wait 30 >"$WORK/check_high.out" 2>&1 || fail "high load: $(cat "$WORK/check_high.out")"
log "high load: $(head -n 1 "$WORK/check_high.out")"
stopped() { # the ids of the pool's dead members
    python3 -c '
import json, sys
p = [p for p in json.load(open(sys.argv[1]))["pools"] if p["name"] == "default"][0]
print(" ".join(m["id"] for m in p["members"] if not m["alive"]))' "$WORK/pool.json"
}
scaled_in() { [ "$(decisions in)" = 1 ] && pool_has 2 && [ -n "$(stopped)" ]; }
wait_for 50 scaled_in || fail "the pool did not scale in to 2: $(cat "$WORK/pool.json")"
VICTIM=$(stopped)
[ "${VICTIM// /}" = "$VICTIM" ] || fail "more than one member stopped: '$VICTIM'"
log "scaled in: $VICTIM stopped"

# Before its offline status, the victim's last assignment was empty and its heartbeat showed
# that epoch: its buckets had moved away before it was stopped.
python3 - "$WORK/sub-bus.log" "$VICTIM" <<'PY' || fail "$VICTIM was stopped before its buckets moved away"
import json, sys
assign, shown = None, 0
for line in open(sys.argv[1]):
    parts = line.split(" ", 2)
    if len(parts) < 3 or parts[1] not in (f"dsf/c/{sys.argv[2]}/assign", f"dsf/c/{sys.argv[2]}/hb"):
        continue
    try:
        o = json.loads(parts[2])
    except ValueError:
        continue
    if parts[1].endswith("/assign"):
        assign = o
    elif o.get("status") == "offline":
        ok = assign is not None and assign["buckets"] == [] and shown >= assign["epoch"]
        print("offline after", assign, "shown epoch", shown)
        sys.exit(not ok)
    else:
        shown = max(shown, o.get("epoch", 0))
sys.exit("no offline status of the victim")
PY
wait_load
check_seq --wait 30
log "ok: scaled out and in, zero points missing in both loads"
