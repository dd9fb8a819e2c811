#!/usr/bin/env bash
# On-demand monitoring over MQTT for agents behind NAT: a request on dsf/a/{ns}/{mci}/{vm}/req
# with an MQTT v5 response topic under the agent's reply topic (dsf/a/{ns}/{mci}/{vm}/reply/...)
# and correlation data gets a fresh collection back (JSON by default, line protocol when
# asked), carrying the correlation data; a netlatency request one measurement to the literal
# addresses it names. Names to look up, too many peers, long timeouts and unreadable payloads
# are answered with an error and counted.
. "$(dirname "$0")/lib.sh"

start_mosquitto
HTTP_PORT=$(free_port)
agent_config "$WORK/agent.json" identity.ns=ns1 identity.mci=mci1 identity.vm=nat1 \
    interval=60s mqtt.url="$MQTT_URL" http.listen="127.0.0.1:$HTTP_PORT" privileges.drop=false
bg agent "$AGENT" --config "$WORK/agent.json"
AGENT_PID=$BG_PID
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

# netlatency on demand: one measurement to the literal addresses asked for (the broker
# listens, a closed port does not), answered as the input's points.
closed=$(free_port)
request "{\"input\":\"netlatency\",\"peers\":[\"127.0.0.1:$MQTT_PORT\",\"127.0.0.1:$closed\"],\"timeout_ms\":500}" \
    "$WORK/nl.out" || fail "no answer to a netlatency request"
python3 - "$WORK/nl.out" "$MQTT_PORT" "$closed" <<'PY' || fail "netlatency answer: $(head -c 400 "$WORK/nl.out")"
import json, sys
corr, _, body = open(sys.argv[1]).read().partition("|")
by_peer = {p["tags"]["peer"]: p["fields"] for p in json.loads(body) if p["name"] == "netlatency"}
up, down = "127.0.0.1:" + sys.argv[2], "127.0.0.1:" + sys.argv[3]
assert set(by_peer) == {up, down}, by_peer
assert by_peer[up]["success"] == 1 and 0 <= by_peer[up]["rtt_ms"] < 500, by_peer[up]
assert by_peer[down]["success"] == 0 and "rtt_ms" not in by_peer[down], by_peer[down]
PY
# What the network must not make it do: look names up, connect to hundreds of peers, wait
# long; and what it cannot read. Each is answered with an error and counted.
many=$(python3 -c 'import json; print(json.dumps({"input": "netlatency", "peers": ["127.0.0.1:%d" % (1000 + i) for i in range(65)]}))')
refused=0
for payload in '{"input":"netlatency","peers":["localhost:22"]}' "$many" \
    '{"input":"netlatency","peers":["127.0.0.1:22\nlocalhost"]}' \
    '{"input":"netlatency","peers":["127.0.0.1:22"],"timeout_ms":600000}' \
    '{"input":"disk"}' '{"fmt":"xml"}' 'not json'; do
    request "$payload" "$WORK/refused.out" || fail "no answer to the refused request $payload"
    cut -d'|' -f2- "$WORK/refused.out" | grep -q '^{"error":' ||
        fail "request $payload: $(head -c 300 "$WORK/refused.out"), expected an error"
    refused=$((refused + 1))
done
n=$(metric "http://127.0.0.1:$HTTP_PORT/metrics" damselfly_agent_requests_refused_total 'reason="payload"')
[ "$n" = "$refused" ] || fail "requests refused for their payload: $n, expected $refused"
grep -q localhost "$WORK/agent.log" && fail "the agent logged peer bytes it refused"
kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died"
log "ok"
