#!/usr/bin/env bash
# Wrong bucket: a message for ns1/mci1/vm1 on a bucket that is not fnv1a32("ns1/mci1/vm1") % 64
# used to be stored under that identity. Broker ACLs let an agent publish on any bucket of its
# own identity (dsf/m/+/%u), so the collectors check it: such a message is refused, on the
# DLQ with the reason, counted, not stored; the same lines on the right bucket are stored.
# The alarm engine, which reads every bucket, refuses and counts it too (it would count that
# agent's samples twice). With Kafka the partition is the bucket: a message produced to another partition than its
# key's is refused the same way, and its offset is still committed past.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
start_mosquitto
start_influxd
influx_create_db dsf
B=$(bucket ns1/mci1/vm1 64)
WRONG=$(((B + 7) % 64))
count() { # MEASUREMENT -> points stored
    influx_query dsf "SELECT count(x) FROM $1" | python3 -c '
import json, sys
s = json.load(sys.stdin)["results"][0].get("series")
print(s[0]["values"][0][1] if s else 0)'
}
refused() { metric "http://127.0.0.1:$1/metrics" damselfly_collector_messages_rejected_total 'reason="wrong_bucket"'; }

log "MQTT: bucket $WRONG instead of $B"
CPORT=$(free_port)
bg dlq mosquitto_sub -V 5 -p "$MQTT_PORT" -t dsf/dlq -F '%p'
bg collector "$COLLECTOR" --set id=c1 --set mqtt.url="$MQTT_URL" --set output.url="$INFLUX_URL" \
    --set output.db=dsf --set batch.interval=200ms --set http.listen="127.0.0.1:$CPORT"
connected() { curl -sf "http://127.0.0.1:$1/healthz" | grep -q '"connected":true'; }
wait_for 10 connected "$CPORT" || fail "collector did not connect"
start_alarm
sleep 0.5 # its subscriptions
pub() { # BUCKET MEASUREMENT
    printf '%s,host=h1 x=1i %s\n' "$2" "$(date +%s%N)" |
        mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -t "dsf/m/$1/ns1/mci1/vm1" -s \
            -D publish user-property fmt lp
}
pub "$WRONG" wrongm
pub "$B" rightm
stored_right() { [ "$(count rightm)" = 1 ]; }
wait_for 10 stored_right || fail "the message on the right bucket was not stored"
sleep 0.5
[ "$(count wrongm)" = 0 ] || fail "the message on bucket $WRONG was stored under ns1/mci1/vm1"
[ "$(refused "$CPORT")" = 1 ] || fail "wrong_bucket counter: $(refused "$CPORT"), expected 1"
grep -q "\"reason\":\"bucket $WRONG is not the agent's" "$WORK/dlq.log" ||
    fail "no DLQ message naming the wrong bucket: $(cat "$WORK/dlq.log")"
alarm_dropped() { metric "$API/metrics" damselfly_alarm_dropped_total "reason=\"$1\""; }
[ "$(alarm_dropped wrong_bucket)" = 1 ] ||
    fail "alarm engine: wrong_bucket counter $(alarm_dropped wrong_bucket), expected 1"
log "MQTT: refused, on the DLQ, counted (collector and alarm engine); the right bucket stored"

log "Kafka: partition $WRONG instead of $B"
start_kafka_mock kafka --topic dsf.metrics:64 --topic dsf.dlq:1
KPORT=$(free_port)
bg collector-kafka "$COLLECTOR" --set id=k1 --set input=kafka --set kafka.brokers="$BOOTSTRAP" \
    --set output.url="$INFLUX_URL" --set output.db=dsf --set batch.interval=200ms \
    --set http.listen="127.0.0.1:$KPORT"
KAFKA_PID=$BG_PID
wait_for 10 curl -sf "http://127.0.0.1:$KPORT/healthz" || fail "Kafka collector did not start"
produce() { # PARTITION MEASUREMENT
    printf '%s,host=h1 x=1i %s\n' "$2" "$(date +%s%N)" |
        kcat -P -b "$BOOTSTRAP" -t dsf.metrics -p "$1" -k ns1/mci1/vm1 -H fmt=lp -H seq=1 \
            -H boot=00000000000000b1 || fail "kcat could not produce"
}
produce "$WRONG" wrongk
produce "$B" rightk
stored_rightk() { [ "$(count rightk)" = 1 ]; }
wait_for 30 stored_rightk || fail "the message on the right partition was not stored"
sleep 1
[ "$(count wrongk)" = 0 ] || fail "the message on partition $WRONG was stored under ns1/mci1/vm1"
[ "$(refused "$KPORT")" = 1 ] || fail "Kafka wrong_bucket counter: $(refused "$KPORT"), expected 1"
caught_up() { [ "$(metric "http://127.0.0.1:$KPORT/metrics" damselfly_collector_kafka_lag_messages)" = 0 ]; }
wait_for 10 caught_up || fail "the Kafka collector did not consume past the refused message"
stop_pid "$KAFKA_PID"
K2PORT=$(free_port)
bg collector-kafka2 "$COLLECTOR" --set id=k2 --set input=kafka --set kafka.brokers="$BOOTSTRAP" \
    --set output.url="$INFLUX_URL" --set output.db=dsf --set http.listen="127.0.0.1:$K2PORT"
wait_for 10 curl -sf "http://127.0.0.1:$K2PORT/healthz" || fail "second Kafka collector did not start"
assigned() { grep -q "assigned 64 partitions" "$WORK/collector-kafka2.log"; }
wait_for 30 assigned || fail "the next collector of the group got no partitions"
sleep 3 # time to fetch
again=$(metric "http://127.0.0.1:$K2PORT/metrics" damselfly_collector_messages_total)
[ "$again" = 0 ] || fail "the next collector of the group read $again messages again: offsets not committed"
log "Kafka: refused and counted, its offset committed; the right partition stored"
log "ok"
