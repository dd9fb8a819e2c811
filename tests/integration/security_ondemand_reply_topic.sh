#!/usr/bin/env bash
# On-demand requests name the topic the answer goes to. The agent answers only under its own
# reply topic, dsf/a/{ns}/{mci}/{vm}/reply[/...]: a request naming another agent's metrics
# topic, an alarm topic, its own status or another agent's reply topic gets nothing published
# there, is counted and warned about; a request naming its own reply topic is answered.
. "$(dirname "$0")/lib.sh"

start_mosquitto
# Everything published anywhere while the requests are handled.
bg sub-all mosquitto_sub -V 5 -p "$MQTT_PORT" -t '#' -F '%t|%p'
sleep 0.5
HTTP=$(free_port)
M="http://127.0.0.1:$HTTP/metrics"
bg agent "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm=vm1 \
    --set interval=60s --set mqtt.url="$MQTT_URL" --set http.listen="127.0.0.1:$HTTP" \
    --set privileges.drop=false
wait_for 10 grep -q 'connected to' "$WORK/agent.log" || fail "agent did not connect"
sleep 0.5

forbidden=(
    dsf/m/0/ns1/mci1/othervm
    dsf/alarm/ns1/mci1/agent_down
    dsf/a/ns1/mci1/vm1/status
    dsf/a/ns1/mci1/vm2/reply
    dsf/a/ns1/mci1/vm1/replyx
    reply/me
)
for topic in "${forbidden[@]}"; do
    mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -t dsf/a/ns1/mci1/vm1/req -D publish response-topic \
        "$topic" -D publish correlation-data forged -m '{}'
done
mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -t dsf/a/ns1/mci1/vm1/req -m '{}' # no response topic
# Requests are handled in order: once this one is answered, the others have been handled.
timeout 15 mosquitto_rr -V 5 -p "$MQTT_PORT" -t dsf/a/ns1/mci1/vm1/req \
    -e dsf/a/ns1/mci1/vm1/reply/console1 -D publish correlation-data ok-1 -m '{"fmt":"lp"}' \
    -W 10 -F '%D|%p' >"$WORK/answer.out" || fail "no answer on the agent's own reply topic"
cut -d'|' -f2- "$WORK/answer.out" | grep -q '^mem,ns=ns1,mci=mci1,vm=vm1' ||
    fail "answer: $(head -c 300 "$WORK/answer.out")"
grep -q '^ok-1|' "$WORK/answer.out" || fail "the answer lost the correlation data"
sleep 1

for topic in "${forbidden[@]}"; do
    # The status topic carries the agent's own retained status: only answers count there.
    if grep "^$topic|" "$WORK/sub-all.log" | grep -qv '"status":"online"'; then
        fail "the agent published an answer on $topic"
    fi
done
refused=$(metric "$M" damselfly_agent_requests_refused_total 'reason="response_topic"')
answered=$(metric "$M" damselfly_agent_requests_total)
log "requests refused: $refused, answered: $answered"
[ "$refused" = 7 ] || fail "$refused requests counted as refused, want 7"
[ "$answered" = 1 ] || fail "$answered requests answered, want 1"
grep -q "refused an on-demand request with the response topic 'dsf/m/0/ns1/mci1/othervm'" \
    "$WORK/agent.log" || fail "no warning about the refused request"
log "ok"
