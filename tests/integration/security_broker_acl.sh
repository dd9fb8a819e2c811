#!/usr/bin/env bash
# mosquitto run with the files of `scripts/damselfly bus-acl` enforces the trust model of
# docs/security.md: an anonymous client or a wrong password is refused at CONNECT; each
# principal may publish exactly its topics (a denied QoS 1 publish gets reason 135 and never
# reaches a subscriber), an agent reads only its own ack, a collector only its own assignment
# (a pool's shared principal, collectors.POOL, any collector's, and nothing else more);
# a foreign retained status cannot replace an agent's, only control and the operator may
# clear one (a removed VM's); and 400 samples of usage_idle=0
# published with agent vm2's credentials on agent vm1's topic reach neither a subscriber nor
# the alarm engine, whose cpu_hot rule fires when vm1 itself sends them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"

start_mosquitto_auth --agent ns1/mci1/vm1 --agent ns1/mci1/vm2 --collector c1 --alarm a1 \
    --balancer --control --collector-pool k8s --scraper s1
B=$(bucket ns1/mci1/vm1 64)
B2=$(bucket ns1/mci1/vm2 64)
M1="dsf/m/$B/ns1/mci1/vm1"
A1=dsf/a/ns1/mci1/vm1
A2=dsf/a/ns1/mci1/vm2

# as NAME mosquitto_pub|mosquitto_sub ARGS...: the client logged in as principal NAME.
as() {
    local name=$1 tool=$2; shift 2
    "$tool" -p "$MQTT_PORT" -V 5 -u "$name" -P "$(mqtt_creds "$name")" "$@"
}
# as_bg NAME TOOL ARGS...: the same in the background, its pid (the client's own, not a
# subshell's, which would leave the client running when killed) in DSF_PIDS.
as_bg() {
    local name=$1 tool=$2; shift 2
    "$tool" -p "$MQTT_PORT" -V 5 -u "$name" -P "$(mqtt_creds "$name")" "$@" &
    DSF_PIDS+=($!)
}

log "anonymous clients and wrong passwords are refused at CONNECT"
out=$(mosquitto_pub -p "$MQTT_PORT" -V 5 -q 1 -t "$M1" -m anonymous 2>&1) &&
    fail "an anonymous client published: $out"
grep -qi 'not authori[sz]ed' <<<"$out" || fail "anonymous publish: unexpected error: $out"
out=$(mosquitto_pub -p "$MQTT_PORT" -V 5 -q 1 -u ns1/mci1/vm1 -P wrong -t "$M1" -m x 2>&1) &&
    fail "a wrong password was accepted"
grep -qi 'not authori[sz]ed' <<<"$out" || fail "wrong password: unexpected error: $out"

# Everything any principal manages to publish reaches the operator, who reads dsf/#.
as_bg operator mosquitto_sub -t 'dsf/#' -F '%t %p' >"$WORK/sub-all.log" 2>&1
seen() { grep -Fxq -- "$1 $2" "$WORK/sub-all.log"; }
ping_operator() { # the subscriber may connect after a first request: send until it sees one
    as operator mosquitto_pub -q 1 -t "$A1/req" -m ready && sleep 0.2 && seen "$A1/req" ready
}
wait_for 10 ping_operator || fail "the operator's subscription receives nothing"

n=0
# allowed NAME TOPIC [mosquitto_pub options]: NAME's publish is confirmed and delivered.
allowed() {
    local name=$1 topic=$2 out; shift 2
    n=$((n + 1))
    out=$(as "$name" mosquitto_pub -q 1 -t "$topic" -m "probe-$n" "$@" 2>&1) ||
        fail "$name could not publish on $topic: $out"
    [ -z "$out" ] || fail "$name publishing on $topic: $out"
    wait_for 5 seen "$topic" "probe-$n" || fail "$name's message on $topic did not arrive"
}
DENIED=()
# denied NAME TOPIC [mosquitto_pub options]: the broker answers reason 135 (not authorized);
# that the message never arrives is checked once all are sent.
denied() {
    local name=$1 topic=$2 out; shift 2
    n=$((n + 1))
    out=$(as "$name" mosquitto_pub -q 1 -t "$topic" -m "probe-$n" "$@" 2>&1) || true
    grep -q 'Not authorized' <<<"$out" ||
        fail "$name was allowed to publish on $topic (mosquitto_pub said: '$out')"
    DENIED+=("$topic probe-$n")
}

log "an agent publishes only under its own identity"
allowed ns1/mci1/vm1 "$M1"
allowed ns1/mci1/vm1 dsf/m/7/ns1/mci1/vm1 # any bucket: the collectors check it
allowed ns1/mci1/vm1 "$A1/status" -r
vm1_status=probe-$n
allowed ns1/mci1/vm1 "$A1/reply"
allowed ns1/mci1/vm1 "$A1/reply/r1"
denied ns1/mci1/vm1 "dsf/m/$B2/ns1/mci1/vm2"
denied ns1/mci1/vm1 "dsf/m/$B/ns1/mci1/vm2"
denied ns1/mci1/vm1 "$A2/ack"
denied ns1/mci1/vm1 "$A1/ack" # its own acks come from collectors only
denied ns1/mci1/vm1 "$A1/req"
denied ns1/mci1/vm1 "$A2/status" -r
denied ns1/mci1/vm1 "$A2/reply"
denied ns1/mci1/vm1 dsf/c/x/assign
denied ns1/mci1/vm1 dsf/c/c1/hb
denied ns1/mci1/vm1 dsf/alarm/ns1/mci1/cpu_hot
denied ns1/mci1/vm1 dsf/action/ns1/mci1
denied ns1/mci1/vm1 dsf/dlq
denied ns1/mci1/vm2 "$A1/status" -r # a foreign retained status

log "collector, balancer, alarm engine, control and operator: each its own topics"
allowed collector.c1 "$A1/ack"
allowed collector.c1 "$A2/ack"
allowed collector.c1 dsf/c/c1/hb
allowed collector.c1 dsf/dlq
denied collector.c1 "$M1"
denied collector.c1 dsf/c/c2/hb
denied collector.c1 dsf/c/c1/assign
denied collector.c1 dsf/alarm/ns1/mci1/cpu_hot
denied collector.c1 "$A1/status" -r
allowed balancer dsf/c/c1/assign -r
allowed balancer dsf/c/c2/assign -r
allowed balancer dsf/b/leader -r # the balancers' HA records (docs/balancer.md)
allowed balancer dsf/b/b1/alive -r
denied collector.c1 dsf/b/leader -r
denied balancer "$M1"
denied balancer "$A1/ack"
allowed alarm.a1 dsf/alarm/ns1/mci1/cpu_hot
denied alarm.a1 "$M1"
denied alarm.a1 "$A1/ack"
denied alarm.a1 dsf/action/ns1/mci1
allowed alarm.a1 dsf/e/a1/hb
denied alarm.a1 dsf/e/a2/hb # the role and the id are the topic's: no engine speaks for another
denied alarm.a1 dsf/c/x/hb  # nor for a collector
denied alarm.a1 dsf/e/a1/assign
denied collector.c1 dsf/e/c1/hb
# A pool's shared principal (pods named by their Deployment): any collector id, nothing more.
allowed collectors.k8s dsf/c/damselfly-collector-7d9f-x2k4/hb
allowed collectors.k8s dsf/c/c1/hb
allowed collectors.k8s "$A1/ack"
denied collectors.k8s dsf/c/c1/assign
denied collectors.k8s dsf/e/a1/hb
denied collectors.k8s "$M1"
denied collectors.k8s dsf/b/leader -r
denied collector.c1 dsf/e/a1/hb
allowed balancer dsf/e/a1/assign -r
allowed balancer dsf/e/a2/assign -r
denied balancer dsf/e/a1/hb
allowed control dsf/action/ns1/mci1
allowed control "$A1/req"
denied control "$A1/ack"
denied control dsf/alarm/ns1/mci1/cpu_hot
denied control dsf/c/c1/assign
allowed operator "$A2/req"
denied operator "$M1"
denied operator "$A1/ack"
denied operator dsf/c/c1/assign
# The scraper speaks for the VMs it pulls (metrics, retained status) and for nothing else.
allowed scraper.s1 "$M1"
allowed scraper.s1 dsf/a/ns9/m9/v9/status -r
allowed scraper.s1 dsf/scraper/s1/status -r
denied scraper.s1 dsf/scraper/s2/status -r
denied scraper.s1 dsf/action/ns1/mci1
denied scraper.s1 dsf/alarm/ns1/mci1/cpu_hot
denied scraper.s1 "$A1/ack"
denied scraper.s1 "$A1/req"
denied scraper.s1 "$A1/reply"
denied scraper.s1 dsf/c/c1/hb
denied scraper.s1 dsf/c/c1/assign
denied scraper.s1 dsf/dlq

log "read: an agent gets its own ack only, a collector its own assignment only"
as_bg ns1/mci1/vm1 mosquitto_sub -t "$A1/ack" -t "$A2/ack" -t 'dsf/m/#' -t 'dsf/alarm/#' \
    -t 'dsf/c/#' -F '%t %p' >"$WORK/sub-vm1.log" 2>&1
as_bg collector.c1 mosquitto_sub -t 'dsf/c/+/assign' -t "$A1/ack" -F '%t %p' \
    >"$WORK/sub-c1.log" 2>&1
sleep 1
as collector.c1 mosquitto_pub -q 1 -t "$A2/ack" -m ack-for-vm2 || fail "collector ack"
as ns1/mci1/vm2 mosquitto_pub -q 1 -t "dsf/m/$B2/ns1/mci1/vm2" -m vm2-data || fail "vm2 data"
as alarm.a1 mosquitto_pub -q 1 -t dsf/alarm/ns1/mci1/r -m an-alarm || fail "alarm event"
as collector.c1 mosquitto_pub -q 1 -t "$A1/ack" -m ack-for-vm1 || fail "collector ack"
wait_for 5 grep -Fxq "$A1/ack ack-for-vm1" "$WORK/sub-vm1.log" || fail "vm1 did not get its ack"
sleep 0.5
[ "$(cat "$WORK/sub-vm1.log")" = "$A1/ack ack-for-vm1" ] ||
    fail "agent vm1 read other topics: $(cat "$WORK/sub-vm1.log")"
# The retained assignments of a1 and a2: engine a1 reads its own only.
as alarm.a1 mosquitto_sub -t 'dsf/e/+/assign' -W 2 -F '%t %p' >"$WORK/sub-a1.log" 2>&1 || true
grep -q '^dsf/e/a1/assign ' "$WORK/sub-a1.log" || fail "engine a1 did not get its assignment"
grep -q '^dsf/e/a2/assign ' "$WORK/sub-a1.log" &&
    fail "engine a1 read another engine's assignment: $(cat "$WORK/sub-a1.log")"
grep -q 'dsf/c/c1/assign' "$WORK/sub-c1.log" || fail "collector c1 did not get its assignment"
grep -q 'dsf/c/c2/assign\|ack-for-vm1' "$WORK/sub-c1.log" &&
    fail "collector c1 read another's assignment or an ack: $(cat "$WORK/sub-c1.log")"
# The scraper writes metrics and reads nothing of the pipeline (statuses aside).
as_bg scraper.s1 mosquitto_sub -t 'dsf/m/#' -t "$A1/req" -t 'dsf/alarm/#' -F '%t %p' \
    >"$WORK/sub-s1.log" 2>&1
sleep 1
as ns1/mci1/vm1 mosquitto_pub -q 1 -t "$M1" -m for-no-scraper || fail "vm1 data"
as operator mosquitto_pub -q 1 -t "$A1/req" -m req-for-no-scraper || fail "operator request"
wait_for 5 seen "$M1" for-no-scraper || fail "vm1's data did not reach the operator"
sleep 0.5
[ ! -s "$WORK/sub-s1.log" ] || fail "the scraper read what it must not: $(cat "$WORK/sub-s1.log")"
as collectors.k8s mosquitto_sub -t 'dsf/c/+/assign' -W 2 -F '%t %p' >"$WORK/sub-k8s.log" 2>&1 || true
grep -q '^dsf/c/c1/assign ' "$WORK/sub-k8s.log" && grep -q '^dsf/c/c2/assign ' "$WORK/sub-k8s.log" ||
    fail "the pool principal does not read its members' assignments: $(cat "$WORK/sub-k8s.log")"

log "no denied message reached the operator's subscription"
as operator mosquitto_pub -q 1 -t "$A1/req" -m last || fail "the operator's last request"
wait_for 5 seen "$A1/req" last || fail "the operator's last request did not arrive"
sleep 0.5
for probe in "${DENIED[@]}"; do
    ! grep -Fxq -- "$probe" "$WORK/sub-all.log" || fail "a denied message arrived: $probe"
done
status=$(as operator mosquitto_sub -t "$A1/status" -C 1 -W 5 -F '%p') ||
    fail "no retained status for vm1"
[ "$status" = "$vm1_status" ] || fail "vm1's retained status was replaced by '$status'"
log "${#DENIED[@]} denied publishes never arrived"

log "control and operator may clear an agent's retained status (what a VM removal does)"
for who in control operator; do
    allowed ns1/mci1/vm2 "$A2/status" -r
    out=$(as "$who" mosquitto_pub -q 1 -t "$A2/status" -r -n 2>&1) ||
        fail "$who could not clear $A2/status: $out"
    [ -z "$out" ] || fail "$who clearing $A2/status: $out"
    left=$(as operator mosquitto_sub -t "$A2/status" -C 1 -W 2 -F '%p' 2>/dev/null) || true
    [ -z "$left" ] || fail "$A2/status still holds '$left' after $who cleared it"
done
out=$(as alarm.a1 mosquitto_pub -q 1 -t "$A1/status" -r -n 2>&1) || true
grep -q 'Not authorized' <<<"$out" || fail "alarm.a1 could clear $A1/status: '$out'"

log "vm2's credentials cannot feed samples for vm1 to the alarm engine"
rule cpu_hot '{"name":"cpu_hot","select":{"measurement":"cpu","field":"usage_idle"},
  "window":"10s","reduce":"avg","op":"<","crit":{"threshold":5,"reset":10},"for":"0s"}'
start_alarm --set mqtt.username=alarm.a1 --set mqtt.password="$(mqtt_creds alarm.a1)"
idle_lines() { # 400 samples of usage_idle=0 for vm1, one message each
    local now i
    now=$(now_ns)
    for i in $(seq 400); do
        echo "cpu,cpu=cpu-total,ns=ns1,mci=mci1,vm=vm1 usage_idle=0 $((now - (400 - i) * 1000000))"
    done
}
before=$(wc -l <"$WORK/sub-all.log")
idle_lines | as ns1/mci1/vm2 mosquitto_pub -q 1 -t "$M1" -l >"$WORK/inject.out" 2>&1 || true
[ "$(grep -c 'Not authorized' "$WORK/inject.out")" = 400 ] ||
    fail "not all 400 injected samples were refused: $(sort "$WORK/inject.out" | uniq -c)"
sleep 2
grep -q usage_idle <(tail -n +$((before + 1)) "$WORK/sub-all.log") &&
    fail "an injected sample reached the operator"
state_is cpu_hot none || fail "the injected samples fired cpu_hot: $(alarm_state cpu_hot)"
idle_lines | as ns1/mci1/vm1 mosquitto_pub -q 1 -t "$M1" -l || fail "vm1's own samples"
wait_for 10 state_is cpu_hot firing ||
    fail "vm1's own samples did not fire cpu_hot (state $(alarm_state cpu_hot))"
log "ok"
