# Sourced by scripts/damselfly: `status`, each part of the stack with its health, the pool,
# the demo MCI, the alarms firing and the last actions, from the parts' own APIs.

status() {
    local name
    for name in "${PARTS[@]}"; do
        part_status "$name" "$STATE/$name.pid" "$(health_of "$name")"
    done
    local id pid n
    while read -r id pid; do
        n=${id##*-}
        if kill -0 "$pid" 2>/dev/null; then
            echo "collector $id: running (pid $pid), $(health "http://127.0.0.1:$((COLLECTOR_PORT_BASE + n))/healthz")"
        else
            echo "collector $id: stopped"
        fi
    done < <(pool_members)
    if grep -qx 'allow_anonymous false' "$STATE/mosquitto.conf" 2>/dev/null; then
        echo "broker access: users of $BUS/passwd, ACL $BUS/acl"
    elif [ -f "$STATE/mosquitto.conf" ]; then
        echo "broker access: anonymous, no ACL"
    fi
    status_alarms
    status_control
    status_balancer
    local stored
    stored=$(curl -sfG "$INFLUX_URL/query" --data-urlencode db=damselfly \
        --data-urlencode 'q=SELECT count(usage_idle) FROM cpu' 2>/dev/null |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["results"][0]; print(r["series"][0]["values"][0][1] if "series" in r else 0)' 2>/dev/null) ||
        stored="unknown (InfluxDB does not answer on $INFLUX_URL)"
    echo "cpu points stored in InfluxDB (database damselfly): $stored"
}

part_status() { # NAME PIDFILE HEALTH: one line, "NAME: running (pid N), HEALTH" or "NAME: stopped"
    if running "$1"; then echo "$1: running (pid $(cat "$2")), $3"; else echo "$1: stopped"; fi
}

# health_of PART: how PART answers where it serves (only asked of a running part).
health_of() {
    case $1 in
        mosquitto) port_open "$MQTT_PORT" && echo "healthy: listening on 127.0.0.1:$MQTT_PORT" ||
            echo "UNHEALTHY: nothing listens on 127.0.0.1:$MQTT_PORT" ;;
        influxd) curl -sf -o /dev/null "$INFLUX_URL/ping" && echo "healthy: $INFLUX_URL/ping answers" ||
            echo "UNHEALTHY: no answer on $INFLUX_URL/ping" ;;
        balancer) health "http://$BALANCER_HTTP/healthz" ;;
        alarm) health "http://$ALARM_HTTP/healthz" ;;
        control) health "http://$CONTROL_HTTP/healthz" ;;
        agent) health "http://$HTTP/healthz" ;;
    esac
}

# health URL: a daemon's /healthz in one line: "healthy: key value, ..." when its status is ok.
health() {
    local body
    body=$(curl -s --max-time 5 "$1" 2>/dev/null) || { echo "UNHEALTHY: no answer on $1"; return; }
    python3 -c '
import json, sys
try:
    d = json.loads(sys.argv[1])
except ValueError:
    sys.exit(print("UNHEALTHY: %s answered %r" % (sys.argv[2], sys.argv[1][:80])))
st = d.pop("status", "unknown")
words = ", ".join("%s %s" % (k, json.dumps(v)) for k, v in d.items())
print(("healthy: " if st == "ok" else "UNHEALTHY (%s): " % st) + words)
' "$body" "$1"
}

# status_alarms: the alarms firing (or nodata) as the alarm engine's API lists them.
status_alarms() {
    local token=$STATE/alarm/http.token
    [ -f "$token" ] || return 0
    curl -sf -H "Authorization: Bearer $(cat "$token")" "http://$ALARM_HTTP/api/v1/alarms" \
        2>/dev/null | python3 -c '
import json, sys, time
alarms = [a for a in json.load(sys.stdin)["alarms"] if a["state"] in ("firing", "nodata")]
print("alarms firing: %d" % len(alarms))
for a in alarms:
    group = dict(a.get("labels") or {}, **(a.get("group") or {}))
    where = "/".join(group.get(k, "-") for k in ("ns", "mci", "vm"))
    since = time.strftime("%H:%M:%S", time.gmtime((a.get("starts_at") or 0) / 1e9))
    print("  %-10s %-7s %-5s %s since %s UTC" % (a["rule"], a["state"], a["severity"] or "-",
                                               where, since))
' 2>/dev/null || echo "alarms: no answer on http://$ALARM_HTTP/api/v1/alarms"
}

# status_balancer: the collector pools as the balancer (state $STATE/balancer) sees them.
status_balancer() {
    local token=$STATE/balancer/http.token
    [ -f "$token" ] || return 0
    curl -sf -H "Authorization: Bearer $(cat "$token")" "http://$BALANCER_HTTP/api/v1/pool" \
        2>/dev/null | python3 -c '
import json, sys
p = json.load(sys.stdin)
print("balancer %s: %s (leader %s, epoch %s)" % (p["id"], "leading" if p["leading"] else "standby",
                                                 p["leader"] or "none", p["epoch"]))
for pool in p["pools"]:
    print("  pool %s%s" % (pool["name"], "" if pool["known"] else " (unknown)"))
    for m in pool["members"]:
        state = ("dead" if not m["alive"] else "draining" if m["draining"] else
                 "unresponsive" if m.get("unresponsive") else "alive")
        print("    %-16s %-9s %-12s %3d buckets  %8.1f points/s  cpu %.2f  moving %d" % (
            m["id"], m.get("role", "collector"), state, len(m["buckets"]), m["points_per_s"],
            m["cpu"], m["moves_in_flight"]))
' 2>/dev/null || echo "balancer: no answer on http://$BALANCER_HTTP/api/v1/pool"
}

# status_control: the demo MCI as the controller sees it, and its last actions.
status_control() {
    local token=$STATE/control/http.token
    [ -f "$token" ] || return 0
    local auth="Authorization: Bearer $(cat "$token")"
    curl -sf -H "$auth" "http://$CONTROL_HTTP/api/v1/mci/$DEMO_NS/$DEMO_MCI" 2>/dev/null |
        python3 -c '
import json, sys
m = json.load(sys.stdin)
print("MCI %s/%s: %s" % (m.get("ns"), m.get("id", m.get("name")), m["status"]))
for vm in m.get("vm", []):
    print("  %-12s %-10s agent %s" % (vm["id"], vm["status"], m["agents"].get(vm["id"], "unknown")))
' 2>/dev/null || echo "MCI $DEMO_NS/$DEMO_MCI: the controller does not answer"
    curl -sf -H "$auth" "http://$CONTROL_HTTP/api/v1/actions?limit=5" 2>/dev/null | python3 -c '
import json, sys
acts = json.load(sys.stdin)["actions"]
print("last actions:" if acts else "last actions: none")
for a in acts:
    print("  %s %s on %s/%s/%s: %s %s" % (a["id"], a["policy"], a["ns"], a["mci"], a["target"],
          a["phase"], a.get("outcome", "")))
' 2>/dev/null || true
}
