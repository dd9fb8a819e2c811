#!/usr/bin/env bash
# On-demand monitoring over MQTT for agents behind NAT: a request on dsf/a/{ns}/{mci}/{vm}/req
# with an MQTT v5 response topic under the agent's reply topic (dsf/a/{ns}/{mci}/{vm}/reply/...)
# and correlation data gets a fresh collection back (JSON by default, line protocol when
# asked), carrying the correlation data.
. "$(dirname "$0")/lib.sh"

start_mosquitto
agent_config "$WORK/agent.json" identity.ns=ns1 identity.mci=mci1 identity.vm=nat1 \
    interval=60s mqtt.url="$MQTT_URL" http.listen= privileges.drop=false
bg agent "$AGENT" --config "$WORK/agent.json"
wait_for 10 grep -q 'connected to' "$WORK/agent.log" || fail "agent did not connect"
sleep 0.5

request() { # PAYLOAD OUTFILE
    timeout 15 mosquitto_rr -V 5 -p "$MQTT_PORT" -t dsf/a/ns1/mci1/nat1/req \
        -e "dsf/a/ns1/mci1/nat1/reply/$RANDOM" \
        -D publish correlation-data "corr-42" -m "$1" -W 10 -F '%D|%p' >"$2"
}
request '{}' "$WORK/json.out" || fail "no answer to a JSON request"
python3 - "$WORK/json.out" <<'PY' || fail "JSON answer"
import json, sys
corr, _, body = open(sys.argv[1]).read().partition("|")
assert corr == "corr-42", f"correlation data {corr!r}"
points = json.loads(body)
names = {p["name"] for p in points}
assert {"cpu", "mem", "system"} <= names, names
assert all(p["tags"]["vm"] == "nat1" for p in points)
print(len(points), "points in the on-demand answer")
PY
request '{"fmt":"lp"}' "$WORK/lp.out" || fail "no answer to a line-protocol request"
cut -d'|' -f2- "$WORK/lp.out" | grep -q '^mem,ns=ns1,mci=mci1,vm=nat1' ||
    fail "line-protocol answer: $(head -c 300 "$WORK/lp.out")"
log "ok"
