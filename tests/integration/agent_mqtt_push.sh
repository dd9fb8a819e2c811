#!/usr/bin/env bash
# Real mosquitto: messages arrive on the bucket topic with the identity tags, seq runs
# without gaps over 30 cycles, and kill -9 of the agent flips the retained status offline.
. "$(dirname "$0")/lib.sh"

start_mosquitto
bg sub mosquitto_sub -V 5 -p "$MQTT_PORT" -t 'dsf/#' -F '%t|%r|%P|%x'
sleep 0.5
agent_config "$WORK/agent.json" identity.ns=ns1 identity.mci=mci1 identity.vm=vm1 \
    identity.csp=aws identity.region=ap-northeast-2 interval=1s mqtt.url="$MQTT_URL" \
    mqtt.keepalive:=2 http.listen= privileges.drop=false
bg agent "$AGENT" --config "$WORK/agent.json"
AGENT_PID=$BG_PID

status() {
    mosquitto_sub -V 5 -p "$MQTT_PORT" -t dsf/a/ns1/mci1/vm1/status -C 1 -W 3 2>/dev/null
}
wait_for 10 sh -c "$(declare -f status); MQTT_PORT=$MQTT_PORT status | grep -q '\"online\"'" ||
    fail "retained status never said online"

log "collecting 32 cycles"
count_msgs() { grep -c '^dsf/m/' "$WORK/sub.log" || true; }
deadline=$((SECONDS + 60))
while [ "$(count_msgs)" -lt 32 ] && [ $SECONDS -lt $deadline ]; do sleep 1; done
python3 "$DSF_SRC/tests/integration/check_stream.py" "$WORK/sub.log" \
    --ns ns1 --mci mci1 --vm vm1 --min 30 || fail "stream check"
grep '^dsf/m/' "$WORK/sub.log" | sed -n 2p | cut -d'|' -f4 |
    python3 -c 'import sys; print(bytes.fromhex(sys.stdin.read().strip()).decode())' \
        >"$WORK/second.lp"
grep -q '^cpu,cpu=cpu-total' "$WORK/second.lp" || fail "second message has no cpu-total line"

log "kill -9 the agent"
kill -9 "$AGENT_PID"
wait_for 15 sh -c "$(declare -f status); MQTT_PORT=$MQTT_PORT status | grep -q '\"offline\"'" ||
    fail "retained status did not flip to offline after kill -9"
log "status is offline"
