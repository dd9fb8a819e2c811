#!/usr/bin/env bash
# The Kafka path: samples on dsf.metrics (librdkafka's mock cluster) are evaluated by the
# engine in group dsf-alarm; the event lands on dsf.alarms keyed ns/mci; the engine commits
# what it evaluated, so a restarted engine does not evaluate the old samples again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"

# dsf.metrics has one partition per bucket (mqtt.buckets_total, 64): consumers refuse a
# message whose partition is not its key's bucket.
start_kafka_mock kafka --topic dsf.metrics:64 --topic dsf.alarms:1
rule hot '{"name":"hot","select":{"measurement":"cpu","field":"usage_user"},"crit":90}'
ksend() {
    "$BUS_SEND" --kafka "$BOOTSTRAP" --topic "dsf/m/$(bucket ns1/mci1/vm1 64)/ns1/mci1/vm1" \
        --key ns1/mci1/vm1 --fmt lp "$1" || fail "dsf-bus-send --kafka failed"
}
start_kafka_alarm() {
    ALARM_PORT=$(free_port)
    API="http://127.0.0.1:$ALARM_PORT"
    bg "alarm-$SECONDS" "$ALARM" --set id=k1 --set input=kafka --set kafka.brokers="$BOOTSTRAP" \
        --set rules.dir="$WORK/rules" --set state.dir="$WORK/state" \
        --set http.listen="127.0.0.1:$ALARM_PORT" --set log_level=debug
    ALARM_PID=$BG_PID
    wait_for 10 curl -sf "$API/healthz" || fail "the engine did not start"
}
start_kafka_alarm
t=$(now_ns)
ksend "cpu,cpu=cpu-total usage_user=95 $t"
wait_for 30 state_is hot firing || fail "the sample on dsf.metrics did not fire the rule"
# The state turns firing before the engine's producer has delivered the event (it lingers
# to batch): read the topic until the event is there, or 30 s have passed.
event_stored() {
    timeout 10 kcat -b "$BOOTSTRAP" -C -t dsf.alarms -o beginning -c 1 -e -q -f '%k %s\n' \
        >"$WORK/alarms.txt" || fail "kcat could not read dsf.alarms"
    grep -q '^ns1/mci1 {"rule":"hot","state":"firing"' "$WORK/alarms.txt"
}
wait_for 30 event_stored ||
    fail "dsf.alarms does not hold the firing event keyed ns1/mci1: $(cat "$WORK/alarms.txt")"
ksend "cpu,cpu=cpu-total usage_user=10 $((t + 1000000000))"
wait_for 30 state_is hot none || fail "the alarm did not resolve"
sleep 1.5 # one commit interval
stop_pid "$ALARM_PID"
rm -f "$WORK/state/alarm-state.json"
start_kafka_alarm
sleep 8 # group join and assignment
[ "$(metric "$API/metrics" damselfly_alarm_samples_total)" = 0 ] ||
    fail "the restarted engine evaluated samples it had committed"
state_is hot none || fail "old samples fired the rule again"
log "ok"
