#!/usr/bin/env bash
# The README's main command: `scripts/damselfly up` starts the pipeline on the embedded
# defaults (broker, InfluxDB, the balancer with its pool of two collectors, alarm engine, agent,
# and the controller healing a local MCI of 3 VMs with the starter policies), `status` reports
# every part healthy, the pool's 64 buckets shared by its two collectors, and the
# MCI Running with its agents online, a reboot through the controller's API acts for real, the agent's samples are stored in InfluxDB, the alarm engine runs the shipped
# rules, `down` stops everything it started. The broker admits only the principals `up`
# issued (an anonymous client is refused, the operator reads the stream with the options
# file `up` prints), and `bus-user add` admits a new agent on the running broker.
# docs/quickstart.md shows what `up` prints.
. "$(dirname "$0")/lib.sh"

stack_env
"$LAUNCHER" up >"$WORK/up.log" 2>&1 || fail "damselfly up: $(cat "$WORK/up.log")"
cat "$WORK/up.log"
python3 "$DSF_SRC/tests/integration/check_quickstart.py" "$DSF_SRC/docs/quickstart.md" \
    "$WORK/up.log" "$DAMSELFLY_STATE" "$DSF_SRC" "$DSF_BUILD" ||
    fail "docs/quickstart.md does not show what up prints (above)"
pids="$(cat "$DAMSELFLY_STATE"/*.pid) $(python3 -c 'import json,sys; print(" ".join(str(c["pid"]) for c in json.load(open(sys.argv[1]))["children"]))' "$DAMSELFLY_STATE/collectors/children.json")"
DSF_PIDS+=($pids) # stopped by the trap if the test fails half way
"$LAUNCHER" status >"$WORK/status.log" 2>&1 || fail "damselfly status"
for part in mosquitto influxd balancer alarm control agent "collector local-1" "collector local-2"; do
    grep -q "^$part: running" "$WORK/status.log" || fail "status: $part not running"
done
for part in mosquitto influxd balancer alarm control agent "collector local-1" "collector local-2"; do
    grep -q "^$part: running (pid [0-9]*), healthy: " "$WORK/status.log" || fail "status: $part not healthy"
done
[ "$(grep -c '^collector local-[12]: .*[:,] connected true' "$WORK/status.log")" = 2 ] ||
    fail "status: collectors not connected"
# The balancer leads and shares the 64 buckets between the two collectors, 32 each (load
# weighting may have moved one bucket per 30 s since); the alarm engine has all 64 of its own.
collector_buckets() { # ID
    sed -nE "s/^ +$1 +collector +alive +([0-9]+) buckets.*/\1/p" "$WORK/status.log"
}
pool_shared() {
    "$LAUNCHER" status >"$WORK/status.log" 2>&1
    grep -q '^balancer local: leading' "$WORK/status.log" || return 1
    local n1 n2
    n1=$(collector_buckets local-1) n2=$(collector_buckets local-2)
    [ -n "$n1" ] && [ -n "$n2" ] && [ $((n1 + n2)) = 64 ] && [ "$n1" -ge 30 ] && [ "$n2" -ge 30 ] &&
        grep -Eq '^ +local +alarm +alive +64 buckets .* moving 0$' "$WORK/status.log"
}
wait_for 20 pool_shared || fail "status does not show the pool sharing the buckets: $(cat "$WORK/status.log")"
grep -q "^broker access: users of $DAMSELFLY_STATE/bus/passwd" "$WORK/status.log" ||
    fail "status: the broker does not require credentials"
out=$(mosquitto_pub -p "$DAMSELFLY_MQTT_PORT" -V 5 -q 1 -t dsf/m/0/x/y/z -m anon 2>&1) &&
    fail "the broker of damselfly up accepted an anonymous client"
grep -qi 'not authori[sz]ed' <<<"$out" || fail "anonymous publish: unexpected error: $out"
grep -q "XDG_CONFIG_HOME=$DAMSELFLY_STATE/operator mosquitto_sub" "$WORK/up.log" ||
    fail "up does not say how the operator reads the stream"
[ "$(stat -c %a "$DAMSELFLY_STATE/bus/creds/operator")" = 600 ] || fail "operator creds not 0600"
for part in collector-local-1 collector-local-2 balancer alarm control agent; do
    [ "$(stat -c %a "$DAMSELFLY_STATE/$part-bus.json")" = 600 ] || fail "$part-bus.json not 0600"
done
for f in "$DAMSELFLY_STATE"/bus/creds/*; do cat "$f"; echo; done >"$WORK/passwords"
ps -eo args >"$WORK/ps.out"
grep -qFf "$WORK/passwords" "$WORK/ps.out" && fail "a bus password is on a command line"
XDG_CONFIG_HOME="$DAMSELFLY_STATE/operator" timeout 10 \
    mosquitto_sub -p "$DAMSELFLY_MQTT_PORT" -V 5 -t 'dsf/m/+/default/local/+' -C 1 >"$WORK/one.msg" ||
    fail "no message from the agent started by damselfly up"
grep -q '^cpu,cpu=cpu-total,ns=default,mci=local' "$WORK/one.msg" || fail "unexpected message"
curl -sf "http://$DAMSELFLY_HTTP/api/v1/snapshot" >/dev/null || fail "pull endpoint"
stored() {
    "$LAUNCHER" status | grep -Eq '^cpu points stored in InfluxDB \(database damselfly\): [1-9]'
}
wait_for 20 stored || fail "no cpu point reached InfluxDB: $("$LAUNCHER" status 2>&1)"
"$LAUNCHER" status | grep '^cpu points stored'
token=$DAMSELFLY_STATE/alarm/http.token # the alarm API's token, made at its first start
[ "$(stat -c %a "$token")" = 600 ] || fail "the alarm API's token file is missing or not 0600"
grep -qF "alarm API token: $token" "$WORK/up.log" || fail "up does not say where the token is"
auth=(-H "Authorization: Bearer $(cat "$token")")
code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "http://$DAMSELFLY_ALARM_HTTP/api/v1/reload")
[ "$code" = 401 ] || fail "an API write without the token got HTTP $code, not 401"
code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" -XPOST \
    "http://$DAMSELFLY_ALARM_HTTP/api/v1/reload")
[ "$code" = 200 ] || fail "an API write with the token got HTTP $code"
rules=$(curl -sf "${auth[@]}" "http://$DAMSELFLY_ALARM_HTTP/api/v1/rules" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d.get("rules", d) if isinstance(d, dict) else d))') ||
    fail "the alarm engine's rules API does not answer"
[ "$rules" -eq "$(ls "$DSF_SRC"/deploy/alarm.d/*.json | wc -l)" ] ||
    fail "the alarm engine loaded $rules rules, not those of deploy/alarm.d"
"$LAUNCHER" bus-user add ns9/mci9/vm9 >"$WORK/bus-user.log" 2>&1 ||
    fail "bus-user add: $(cat "$WORK/bus-user.log")"
vm9() { # TOPIC: publish as agent ns9/mci9/vm9
    mosquitto_pub -p "$DAMSELFLY_MQTT_PORT" -V 5 -q 1 -u ns9/mci9/vm9 \
        -P "$(cat "$DAMSELFLY_STATE/bus/creds/ns9%2Fmci9%2Fvm9")" -t "$1" -m x
}
wait_for 5 vm9 dsf/m/0/ns9/mci9/vm9 || fail "an agent added by bus-user cannot publish to the running broker"
# An agent's credentials cannot speak for up's own agent, nor ack anything.
for topic in "dsf/m/0/default/local/$(hostname)" "dsf/a/default/local/$(hostname)/ack" \
    dsf/a/ns9/mci9/vm9/ack; do
    out=$(vm9 "$topic" 2>&1) || true # mosquitto_pub exits 0 after a refused QoS 1 publish
    grep -qi 'not authori[sz]ed' <<<"$out" || fail "agent ns9/mci9/vm9 could publish on $topic: $out"
done
# The demo MCI under the controller: Running with 3 VMs whose agents are online, the starter
# policies loaded and acting (not dry runs), and a reboot asked of the API really happens.
demo_ok() {
    "$LAUNCHER" status >"$WORK/status.log" 2>&1
    stack_demo_running "$WORK/status.log"
}
wait_for 30 demo_ok || fail "status does not show the demo MCI healthy: $(cat "$WORK/status.log")"
cat "$WORK/status.log"
ctoken=$DAMSELFLY_STATE/control/http.token
[ "$(stat -c %a "$ctoken")" = 600 ] || fail "the controller's token file is missing or not 0600"
cauth=(-H "Authorization: Bearer $(cat "$ctoken")")
curl -sf "${cauth[@]}" "http://$DAMSELFLY_CONTROL_HTTP/api/v1/policies" >"$WORK/policies.json" ||
    fail "the controller's API does not answer"
python3 - "$WORK/policies.json" "$DSF_SRC/deploy/policies" <<'PY' || fail "the starter policies are not loaded as shipped"
import json, os, sys
got = json.load(open(sys.argv[1]))["policies"]
want = [f for f in os.listdir(sys.argv[2]) if f.endswith(".json")]
assert len(got) == len(want), (got, want)
assert not any(p["dry_run"] for p in got), got
PY
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$DAMSELFLY_CONTROL_HTTP/api/v1/actions")
[ "$code" = 401 ] || fail "the controller's API without the token got HTTP $code, not 401"
before=$(stack_agent_pid demo-2) || fail "no pid for demo-2"
curl -sf "${cauth[@]}" -XPOST "http://$DAMSELFLY_CONTROL_HTTP/api/v1/actions" \
    -d '{"action": "reboot", "ns": "default", "mci": "demo", "vm": "demo-2"}' >/dev/null ||
    fail "a manual reboot was refused"
rebooted() { [ "$(stack_agent_pid demo-2)" != "$before" ]; }
wait_for 30 rebooted || fail "demo-2 was not rebooted"
demo_pids=$(ps -eo pid,args | awk -v d="$DAMSELFLY_STATE/federation" 'index($0, d) { print $1 }')
"$LAUNCHER" down >"$WORK/down.log" 2>&1 || fail "damselfly down"
sleep 1
for pid in $pids $demo_pids; do
    kill -0 "$pid" 2>/dev/null && fail "process $pid still runs after down"
done
log "ok"
