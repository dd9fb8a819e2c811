#!/usr/bin/env bash
# The on-disk spool: with a small memory buffer, samples taken while the broker is away go to
# the spool; the agent is stopped and started again during the outage (a new boot), and after
# the broker returns every sample of both runs arrives, the first run's before the second's,
# each in order with no seq gap.
. "$(dirname "$0")/lib.sh"

start_mosquitto
bg sub mosquitto_sub -V 5 -p "$MQTT_PORT" -c -i dsf-spool-sub -x 3600 -q 1 -t 'dsf/m/#' \
    -F '%t|%r|%P|%x'
sleep 0.5
PORT=$(free_port)
agent_config "$WORK/agent.json" identity.ns=ns1 identity.mci=mci1 identity.vm=sp interval=1s \
    mqtt.url="$MQTT_URL" mqtt.keepalive:=2 privileges.drop=false http.listen="127.0.0.1:$PORT" \
    buffer.max_bytes=12KiB buffer.spool_dir="$WORK/spool" buffer.spool_fsync=true \
    inputs.processes.enabled=false inputs.container.enabled=false
seq_now() { metric "http://127.0.0.1:$PORT/metrics" damselfly_agent_seq; }
count() { grep -c '^dsf/m/[0-9]*/ns1/mci1/sp|' "$WORK/sub.log" || true; }

bg agent1 "$AGENT" --config "$WORK/agent.json"
FIRST=$BG_PID
wait_for 20 sh -c "[ \$(grep -c '/sp|' '$WORK/sub.log' || true) -ge 3 ]" || fail "no messages"
stop_pid "$MOSQUITTO_PID"
log "broker stopped; the first run keeps sampling for 10 s"
sleep 10
spooled=$(metric "http://127.0.0.1:$PORT/metrics" damselfly_agent_spool_messages)
[ "${spooled%.*}" -ge 3 ] || fail "nothing spooled while the broker was away ($spooled)"
last1=$(seq_now)
stop_pid "$FIRST"
files=$(find "$WORK/spool" -name '*.msg' | wc -l)
log "first run stopped at seq $last1 with $files message(s) on disk"
[ "$files" -ge "$((last1 - 3))" ] || fail "the unconfirmed messages were not saved at shutdown"

bg agent2 "$AGENT" --config "$WORK/agent.json"
sleep 6
start_mosquitto "$MQTT_PORT"
log "broker back"
want() { echo $((last1 + $(seq_now))); }
caught_up() { [ "$(count)" -ge "$(want)" ]; }
wait_for 40 caught_up || fail "only $(count) of $(want) messages arrived"
stop_pid "$BG_PID"
sleep 0.5
grep '|seq:' "$WORK/sub.log" | grep '/sp|' >"$WORK/sp.stream"
python3 "$DSF_SRC/tests/integration/check_stream.py" "$WORK/sp.stream" --ns ns1 --mci mci1 \
    --vm sp --boots 2 --min "$(count)" || fail "spooled samples lost or out of order"
[ -z "$(find "$WORK/spool" -name '*.msg')" ] || fail "the spool was not emptied"
log "ok"
