#!/usr/bin/env bash
# Broker stopped for 20 s, then restarted: every sample taken meanwhile arrives, in order,
# with no seq gap. A second agent with a small buffer cap runs through the same outage:
# its drop counter equals the number of samples missing at the subscriber.
. "$(dirname "$0")/lib.sh"

start_mosquitto
# A persistent subscriber session (-c, session expiry) keeps receiving across the restart.
bg sub mosquitto_sub -V 5 -p "$MQTT_PORT" -c -i dsf-test-sub -x 3600 -q 1 -t 'dsf/m/#' \
    -F '%t|%r|%P|%x'
sleep 0.5
HTTP_BIG=$(free_port)
HTTP_SMALL=$(free_port)
common=(identity.ns=ns1 identity.mci=mci1 interval=1s mqtt.url="$MQTT_URL" mqtt.keepalive:=2
    privileges.drop=false inputs.processes.enabled=false inputs.container.enabled=false)
agent_config "$WORK/big.json" "${common[@]}" identity.vm=big http.listen="127.0.0.1:$HTTP_BIG"
agent_config "$WORK/small.json" "${common[@]}" identity.vm=small \
    http.listen="127.0.0.1:$HTTP_SMALL" buffer.max_bytes=12KiB
bg agent-big "$AGENT" --config "$WORK/big.json"
BIG=$BG_PID
bg agent-small "$AGENT" --config "$WORK/small.json"
SMALL=$BG_PID

count() { grep -c "^dsf/m/[0-9]*/ns1/mci1/$1|" "$WORK/sub.log" || true; }
at_least() { [ "$(count "$1")" -ge "$2" ]; }
wait_for 20 at_least small 4 || fail "no messages before the outage"

log "stopping the broker for 20 s"
stop_pid "$MOSQUITTO_PID"
sleep 20
before=$(metric "http://127.0.0.1:$HTTP_BIG/metrics" damselfly_agent_buffer_messages)
log "agent 'big' holds $before messages; restarting the broker"
[ "${before%.*}" -ge 15 ] || fail "the buffer did not hold the samples taken during the outage"
start_mosquitto "$MQTT_PORT"

seq_now() { metric "http://127.0.0.1:$1/metrics" damselfly_agent_seq; }
caught_up() { at_least big "$(seq_now "$HTTP_BIG")"; }
wait_for 30 caught_up || fail "the replay did not arrive"
sleep 2
# Stop both agents cleanly, then compare what was sent with what arrived.
last_big=$(seq_now "$HTTP_BIG")
dropped=$(metric "http://127.0.0.1:$HTTP_SMALL/metrics" damselfly_agent_dropped_messages_total \
    'reason="buffer_full"')
stop_pid "$BIG"
stop_pid "$SMALL"
sleep 1
log "big: sent up to seq $last_big; small: dropped $dropped"
grep '|seq:' "$WORK/sub.log" | grep '/big|' >"$WORK/big.stream"
grep '|seq:' "$WORK/sub.log" | grep '/small|' >"$WORK/small.stream"
python3 "$DSF_SRC/tests/integration/check_stream.py" "$WORK/big.stream" --ns ns1 --mci mci1 \
    --vm big --min "$last_big" || fail "samples lost or out of order across the outage"
[ "$dropped" -gt 0 ] || fail "the small buffer dropped nothing: the test would prove nothing"
python3 "$DSF_SRC/tests/integration/check_stream.py" "$WORK/small.stream" --ns ns1 --mci mci1 \
    --vm small --expect-missing "$dropped" || fail "drop counter does not match what is missing"
