#!/usr/bin/env bash
# GET /api/v1/overview, the web console's first page in one answer, against a model with
# known MCIs: ns1/m1 of 3 local VMs (one suspended: its status string, its states counted,
# its agent offline once its Last Will is out) and ns2/m2 of 1; alarms published as the engine publishes them (one for
# a VM and one for a whole MCI firing, one fired then resolved); actions started through the
# API (the last 20 of 22 listed, newest first, with the state the actions API says); the
# breaker closed. Every value is checked against what the test set up, and the route takes
# the same token as the rest of the API (401 without it or with a wrong one). An action's
# audit records come with it, the same after a restart. A model of 100 MCIs x 10 VMs is
# answered and counted right.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"

ctl_light_up 3
cat >"$WORK/spec2.json" <<EOF
{"name": "m2", "vm": [{"name": "w", "subGroupSize": 1, "csp": "local", "region": "r2",
  "workload": $CTL_WORKLOAD}]}
EOF
ctl_fed create-mci ns2 m2 --spec "$WORK/spec2.json" >"$WORK/m2.out" 2>&1 || fail "create-mci ns2 m2: $(cat "$WORK/m2.out")"
ctl_fed vm suspend "$CTL_NS" "$CTL_MCI" g-3 >"$WORK/suspend.out" 2>&1 || fail "suspend g-3: $(cat "$WORK/suspend.out")"
ctl_policy heal '{"name": "heal", "match": {"rule": "agent_down", "state": "firing"},
 "steps": [{"action": "reboot"}], "cooldown": "0s", "hold": "0s"}'
ctl_start --set dry_run=true --set guards.rate_per_hour=1000 --set guards.mci_fraction=1

log "who may: the token holders"
for auth in "" "Authorization: Bearer x$CTL_TOKEN"; do
    s=$(curl -s -o /dev/null -w '%{http_code}' ${auth:+-H "$auth"} "$CTL_URL/api/v1/overview")
    [ "$s" = 401 ] || fail "GET /api/v1/overview with '${auth:-no token}': $s, expected 401"
done

log "alarms: g-1 firing, the MCI ns1/m1 firing, g-2 fired and resolved"
fire g-1 1
alarm_publish agent_down firing g-2 2
alarm_publish agent_down resolved g-2 2 none
now=$(date +%s%N)
as_alarm_engine mosquitto_pub -p "$MQTT_PORT" -V 5 -q 1 -t "dsf/alarm/$CTL_NS/$CTL_MCI/cpu_avg_hot" -m \
    '{"rule":"cpu_avg_hot","state":"firing","previous":"pending","severity":"warn","previous_severity":"none","group":{"ns":"'"$CTL_NS"'","mci":"'"$CTL_MCI"'"},"value":5,"threshold":20,"op":"<","ts":'"$now"',"sample_ts":'"$now"',"pending_since":0,"starts_at":'"$now"',"ends_at":0,"changed_at":'"$now"',"labels":{},"annotations":{},"engine":"a1"}' ||
    fail "cannot publish cpu_avg_hot"

log "22 manual actions (dry run)"
for i in $(seq 1 22); do
    ctl_api POST /api/v1/actions "{\"action\":\"reboot\",\"ns\":\"$CTL_NS\",\"mci\":\"$CTL_MCI\",\"vm\":\"g-$((i % 2 + 1))\"}" >/dev/null
    [ "$CTL_STATUS" = 202 ] || fail "manual action $i: $CTL_STATUS $CTL_BODY"
done

overview_ok() {
    ctl_api GET /api/v1/overview >"$WORK/overview.json"
    ctl_api GET '/api/v1/actions?limit=20' >"$WORK/actions.json"
    "$CTL_PY" - "$WORK/overview.json" "$WORK/actions.json" >"$WORK/check.out" 2>&1 <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
acts = json.load(open(sys.argv[2]))["actions"]
def want(cond, what):
    if not cond:
        sys.exit(f"{what}: {json.dumps(o)[:1500]}")
mcis = {f"{m['ns']}/{m['mci']}": m for m in o["mcis"]}
want(sorted(mcis) == ["ns1/m1", "ns2/m2"], "MCIs")
m1, m2 = mcis["ns1/m1"], mcis["ns2/m2"]
want(m1["status"] == "Partial-Suspended:1 (R:2/3)", f"ns1/m1 status {m1['status']}")
want(m1["vms"] == 3 and m1["vm_states"] == {"Running": 2, "Suspended": 1}, "ns1/m1 VM states")
want(m1["agents"] == {"online": 2, "offline": 1, "unknown": 0}, f"ns1/m1 agents {m1['agents']}")
want(m2["status"] == "Running:1 (R:1/1)" and m2["vm_states"] == {"Running": 1}, "ns2/m2")
want(m1["breaker_open"] is False and m2["breaker_open"] is False, "MCI breakers")
firing = sorted((a["rule"], a["vm"], a["severity"]) for a in o["alarms_firing"])
want(firing == [("agent_down", "ns1/m1/g-1", "crit"), ("cpu_avg_hot", "mci=m1,ns=ns1", "warn")],
     f"alarms firing {firing}")
want(all(a["state"] == "firing" and a["since_ms"] > 0 for a in o["alarms_firing"]), "alarm fields")
want(o["breaker"]["state"] == "closed" and o["breaker"]["paused"] is False, "breaker")
want(len(o["actions"]) == 20, f"{len(o['actions'])} actions, expected the last 20")
want([a["id"] for a in o["actions"]] == [a["id"] for a in acts], "actions are not the API's newest 20")
want([a["state"] for a in o["actions"]] == [a["state"] for a in acts], "action states differ from the API's")
want(all(a["state"] for a in o["actions"]), "an action without a state")
PY
}
log "the overview holds what was set up"
# The suspended agent goes offline when the broker gives up on it (its Last Will).
wait_for 40 overview_ok || fail "GET /api/v1/overview: $(cat "$WORK/check.out")"

log "an action's audit records, the same after a restart"
id=$("$CTL_PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["actions"][0]["id"])' "$WORK/overview.json")
ctl_api GET "/api/v1/actions/$id" >"$WORK/action-before.json"
ctl_stop
ctl_start --set dry_run=true
ctl_api GET "/api/v1/actions/$id" >"$WORK/action-after.json"
"$CTL_PY" - "$WORK/action-before.json" "$WORK/action-after.json" "$CTL_AUDIT" <<'PY' || fail "the action's audit records are wrong"
import json, sys
before, after = (json.load(open(p))["audit"] for p in sys.argv[1:3])
log = [json.loads(l) for l in open(sys.argv[3])]
want = [r for r in log if r.get("action") == json.load(open(sys.argv[1]))["id"]]
if [r["event"] for r in before] != ["decision", "end"] or before[0]["verdict"] != "dry_run":
    sys.exit(f"records {before}")
if before != want or after != want:
    sys.exit(f"records differ from the audit log: {before} / {after} / {want}")
PY
ctl_stop

log "100 MCIs x 10 VMs"
"$CTL_PY" - "$WORK/bigfed/mci" <<'PY'
import json, os, sys
for i in range(100):
    d = os.path.join(sys.argv[1], f"ns{i % 10}")
    os.makedirs(d, exist_ok=True)
    spec = {"name": "w", "subGroupSize": 1, "csp": "aws", "region": "ap-northeast-2"}
    vms = [{"id": f"w-{k}", "subGroupId": "w", "status": "Suspended" if k == 10 and i % 2 else "Running",
            "targetAction": "None", "targetStatus": "None", "autogen": False, "spec": spec,
            "address": "", "nativeId": f"vm-{i}-{k}", "message": "", "createdMs": 1, "updatedMs": 1}
           for k in range(1, 11)]
    json.dump({"version": 1, "ns": f"ns{i % 10}", "id": f"mci{i}", "driver": "tumblebug",
               "description": "", "status": "", "createdMs": 1, "updatedMs": 1,
               "subGroups": [{"id": "w", "template": spec}], "vm": vms},
              open(os.path.join(d, f"mci{i}.json"), "w"))
PY
port=$(free_port)
bg control-big "$CONTROL" --set id=k2 --set policies.dir="$CTL_POLICIES" --set state.dir="$WORK/big" \
    --set federation.dir="$WORK/bigfed" --set mqtt.url="$MQTT_URL" --set http.listen="127.0.0.1:$port"
wait_for 15 curl -sf "http://127.0.0.1:$port/healthz" || fail "the second controller does not answer"
# Its speed is bench/console_overview.sh's to measure (a test on a shared machine asserts no
# time); the time is logged.
t=$(curl -s -o "$WORK/big.json" -w '%{http_code} %{time_total}' \
    -H "Authorization: Bearer $(cat "$WORK/big/http.token")" "http://127.0.0.1:$port/api/v1/overview")
log "GET /api/v1/overview: $t s"
[ "${t% *}" = 200 ] || fail "GET /api/v1/overview of 100 MCIs answered ${t% *}"
"$CTL_PY" - "$WORK/big.json" <<'PY' || fail "the overview of 100 MCIs is wrong"
import json, sys
o = json.load(open(sys.argv[1]))
m = {f"{x['ns']}/{x['mci']}": x for x in o["mcis"]}
assert len(m) == 100, len(m)
assert m["ns0/mci0"]["status"] == "Running:10 (R:10/10)", m["ns0/mci0"]
assert m["ns1/mci1"]["status"] == "Partial-Suspended:1 (R:9/10)", m["ns1/mci1"]
assert sum(x["vms"] for x in o["mcis"]) == 1000
PY
stop_pid "$BG_PID"
log "PASS"
