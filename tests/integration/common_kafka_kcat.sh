#!/usr/bin/env bash
# The Kafka wire contract seen by an independent client: dsf-bus-send publishes keyed
# messages with seq/boot/fmt headers through the bus API into dsf-kafka-mock (librdkafka's
# mock cluster), and kcat reads them back from dsf.metrics: key, headers, value, and the
# partition being the bucket fnv1a32(key) % 64.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

MOCK="$DSF_BUILD/tests/tools/dsf-kafka-mock"
SEND="$DSF_BUILD/tests/tools/dsf-bus-send"
command -v kcat >/dev/null || fail "kcat is not installed (apt-get install kcat)"
[ -x "$MOCK" ] || fail "$MOCK is missing (build with DAMSELFLY_KAFKA=ON)"
[ -x "$SEND" ] || fail "$SEND is missing (build with DAMSELFLY_KAFKA=ON)"


start_kafka_mock kafka-mock --brokers 3 --topic dsf.metrics:64 --topic dsf.alarms:4
log "mock cluster at $BOOTSTRAP"

meta=$(timeout 20 kcat -b "$BOOTSTRAP" -L -t dsf.metrics 2>&1) || fail "kcat -L failed: $meta"
grep -q 'topic "dsf.metrics" with 64 partitions' <<<"$meta" ||
    fail "kcat -L does not show dsf.metrics with 64 partitions: $meta"
grep -q ' 3 brokers:' <<<"$meta" || fail "kcat -L does not show 3 brokers: $meta"

b1=$(bucket ns1/mci1/vm1 64)
b2=$(bucket ns1/mci1/vm2 64)
timeout 30 "$SEND" --kafka "$BOOTSTRAP" --topic "dsf/m/$b1/ns1/mci1/vm1" --key ns1/mci1/vm1 \
    --seq 7 --boot x1 --fmt lp 'cpu usage_idle=1 1' 'cpu usage_idle=2 2' 'cpu usage_idle=3 3' \
    >"$WORK/send1.log" 2>&1 || fail "dsf-bus-send (vm1) failed: $(cat "$WORK/send1.log")"
timeout 30 "$SEND" --kafka "$BOOTSTRAP" --topic "dsf/m/$b2/ns1/mci1/vm2" --key ns1/mci1/vm2 \
    --seq 1 --boot y2 --fmt json '{"m":"mem"}' \
    >"$WORK/send2.log" 2>&1 || fail "dsf-bus-send (vm2) failed: $(cat "$WORK/send2.log")"
log "published 4 messages"

got=$(timeout 30 kcat -b "$BOOTSTRAP" -C -t dsf.metrics -o beginning -e -q \
    -f '%k|%h|%p|%s\n' 2>"$WORK/kcat.log") || fail "kcat -C failed: $(cat "$WORK/kcat.log")"
want="ns1/mci1/vm1|seq=7,boot=x1,fmt=lp|$b1|cpu usage_idle=1 1
ns1/mci1/vm1|seq=8,boot=x1,fmt=lp|$b1|cpu usage_idle=2 2
ns1/mci1/vm1|seq=9,boot=x1,fmt=lp|$b1|cpu usage_idle=3 3
ns1/mci1/vm2|seq=1,boot=y2,fmt=json|$b2|{\"m\":\"mem\"}"
# Each key keeps its order; the two partitions may come back in either order.
sorted_got=$(sort -s -t'|' -k1,1 <<<"$got")
[ "$sorted_got" = "$want" ] || fail "kcat read
$got
want (key|headers|partition|value)
$want"
log "kcat sees keys, headers and bucket partitions"

# A topic outside dsf.metrics: alarms map to dsf.alarms.
timeout 30 "$SEND" --kafka "$BOOTSTRAP" --topic dsf/alarm/ns1/mci1/cpu_high '{"state":"crit"}' \
    >"$WORK/send3.log" 2>&1 || fail "dsf-bus-send (alarm) failed: $(cat "$WORK/send3.log")"
got=$(timeout 30 kcat -b "$BOOTSTRAP" -C -t dsf.alarms -o beginning -e -q -f '%s\n' \
    2>"$WORK/kcat2.log") || fail "kcat -C dsf.alarms failed: $(cat "$WORK/kcat2.log")"
[ "$got" = '{"state":"crit"}' ] || fail "dsf.alarms holds '$got'"

# A fixed port: the first broker listens on and advertises 127.0.0.1:PORT.
port=$(free_port)
start_kafka_mock kafka-mock-port --port "$port" --topic t:2
[ "$BOOTSTRAP" = "127.0.0.1:$port" ] || fail "--port $port gave bootstrap $BOOTSTRAP"
meta=$(timeout 20 kcat -b "127.0.0.1:$port" -L 2>&1) || fail "kcat -L on port $port: $meta"
grep -q "broker 1 at 127.0.0.1:$port" <<<"$meta" || fail "broker 1 not on port $port: $meta"
# The same port again is refused with a clear error, not a crash.
if "$MOCK" --port "$port" >"$WORK/busy.out" 2>"$WORK/busy.log"; then
    fail "a second mock on port $port started"
fi
grep -q "cannot listen on 127.0.0.1:$port" "$WORK/busy.log" ||
    fail "no clear error for a busy port: $(cat "$WORK/busy.log")"
log "PASS"
