#!/usr/bin/env bash
# Grafana's dashboards (deploy/grafana) work on first open: `scripts/damselfly up` fills a real
# InfluxDB from real agents, collectors, the alarm engine and the controller; once an alarm
# fires and an action ran, every dashboard's model is valid, every datasource reference is the
# provisioned datasource, every variable's query returns values and every panel's and
# annotation's query, with the macros and variables substituted, returns rows. The daemons'
# own counters are there as dsf_internal, one series set per daemon instance.
. "$(dirname "$0")/lib.sh"

stack_env
# The shipped rules and one that fires on every VM (no policy acts on it), in a copy: the
# source tree stays as it is.
export DAMSELFLY_RULES=$WORK/rules
cp -r "$DSF_SRC/deploy/alarm.d" "$DAMSELFLY_RULES"
echo '{"name": "grafana_probe", "select": {"measurement": "mem", "field": "used_percent"},
  "op": ">", "warn": {"threshold": 0}}' >"$DAMSELFLY_RULES/grafana_probe.json"
"$LAUNCHER" up >"$WORK/up.log" 2>&1 || fail "damselfly up: $(cat "$WORK/up.log")"
pids="$(cat "$DAMSELFLY_STATE"/*.pid) $(python3 -c 'import json,sys; print(" ".join(str(c["pid"]) for c in json.load(open(sys.argv[1]))["children"]))' "$DAMSELFLY_STATE/collectors/children.json")"
DSF_PIDS+=($pids) # stopped by the trap if the test fails half way
INFLUX=http://127.0.0.1:$DAMSELFLY_INFLUX_PORT
query() { curl -sfG "$INFLUX/query" --data-urlencode db=damselfly --data-urlencode "q=$1"; }
demo_ok() {
    "$LAUNCHER" status >"$WORK/status.log" 2>&1
    stack_demo_running "$WORK/status.log"
}
wait_for 60 demo_ok || fail "the demo MCI is not Running: $(cat "$WORK/status.log")"

# An action: a reboot through the controller.
cauth=(-H "Authorization: Bearer $(cat "$DAMSELFLY_STATE/control/http.token")")
curl -sf "${cauth[@]}" -XPOST "http://$DAMSELFLY_CONTROL_HTTP/api/v1/actions" \
    -d '{"action": "reboot", "ns": "default", "mci": "demo", "vm": "demo-2"}' >/dev/null ||
    fail "the controller refused a manual reboot"

# Every daemon instance writes dsf_internal: the pool's two collectors, balancer, alarm, control.
internal_ids() {
    query 'SHOW TAG VALUES FROM "dsf_internal" WITH KEY = "id"' >"$WORK/ids.json" &&
        query 'SHOW TAG VALUES FROM "dsf_internal" WITH KEY = "daemon"' >"$WORK/daemons.json" &&
        for v in local-1 local-2; do grep -q "\"$v\"" "$WORK/ids.json" || return 1; done &&
        for v in collector balancer alarm control; do grep -q "\"$v\"" "$WORK/daemons.json" || return 1; done
}
wait_for 40 internal_ids || fail "dsf_internal lacks a daemon: $(cat "$WORK/ids.json" "$WORK/daemons.json")"

# Rates need two dsf_internal rounds (internal.interval, 10 s): the checker is retried until then.
check() {
    python3 "$DSF_SRC/tests/integration/check_grafana.py" "$DSF_SRC/deploy/grafana" "$INFLUX" \
        ns=default mci=demo vm=demo-1 >"$WORK/check.log" 2>&1
}
wait_for 90 check || fail "dashboards: $(cat "$WORK/check.log")"
cat "$WORK/check.log"
# The check fails when a panel names a field or a measurement that the pipeline does not write.
cp -r "$DSF_SRC/deploy/grafana" "$WORK/bad"
python3 - "$WORK/bad/dashboards" <<'PY'
import json, sys
for name, old, new in (("vm.json", '"used_percent"', '"no_such_field"'),
                       ("mci.json", 'FROM "netlatency"', 'FROM "no_such_measurement"')):
    path = f"{sys.argv[1]}/{name}"
    d = json.load(open(path))
    t = next(t for p in d["panels"] for t in p["targets"] if old in t["query"])
    t["query"] = t["query"].replace(old, new)
    json.dump(d, open(path, "w"))
PY
python3 "$DSF_SRC/tests/integration/check_grafana.py" "$WORK/bad" "$INFLUX" ns=default mci=demo \
    vm=demo-1 >"$WORK/bad.log" 2>&1 && fail "the check passed dashboards with unknown names"
for name in no_such_field no_such_measurement; do
    grep -q "no rows: .*$name" "$WORK/bad.log" || fail "the check did not name $name: $(cat "$WORK/bad.log")"
done
# Nothing of the daemons' own counters was lost on the way.
query 'SELECT last("dsf_internal_points_total") FROM "dsf_internal" WHERE "outcome" =~ /dropped|failed/ GROUP BY "daemon", "outcome"' >"$WORK/drops.json"
python3 - "$WORK/drops.json" <<'PY' || fail "dsf_internal points were dropped: $(cat "$WORK/drops.json")"
import json, sys
series = json.load(open(sys.argv[1]))["results"][0].get("series", [])
assert len(series) == 8, series  # 4 daemons x (dropped, failed)
assert all(v[1] == 0 for s in series for v in s["values"]), series
PY
"$LAUNCHER" down >"$WORK/down.log" 2>&1 || fail "damselfly down: $(cat "$WORK/down.log")"
log "ok"
