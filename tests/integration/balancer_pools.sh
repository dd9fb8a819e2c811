#!/usr/bin/env bash
# Tenant pools: pools.map ns-gold=gold. Collector g1 (pool gold) owns every bucket for the
# prefix ns-gold alone; d1 and d2 (default) own every bucket but exclude ns-gold, dropping its
# messages unacked (counted as unowned). Lines of ns-gold VMs are stored once, by g1; the rest
# by d1 and d2. kill -9 g1: the default pool no longer excludes ns-gold and stores what is
# sent after that, nothing lost. Before that the balancer restarts with ns-old no longer
# mapped to gold: g1 keeps ns-old until d1 and d2 confirmed they stopped excluding it.
. "$(dirname "$0")/balancer_lib.sh"

among() { $CHECK owned_among "$WORK/sub-bus.log" "$1" >/dev/null; }
last_assign() { grep " dsf/c/$1/assign " "$WORK/sub-bus.log" | tail -n 1; }
LISTS='"ns-gold","ns-old"'
excluding() { last_assign "$1" | grep -qF "\"exclude\":[$LISTS]"; }
not_excluding() { last_assign "$1" | grep -q '"buckets":\[[0-9]' && ! last_assign "$1" | grep -q exclude; }
both() { "$1" d1 && "$1" d2; }

# send_ns NS TAG N: one line for each of N VMs of NS (mci m1), on the bucket its key hashes to.
send_ns() {
    python3 - "$1" "$3" <<'PY' >"$WORK/send.list"
import sys
ns, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    h = 2166136261
    for c in f"{ns}/m1/vm-{i}".encode():
        h = ((h ^ c) * 16777619) & 0xffffffff
    print(h % 64, f"vm-{i}")
PY
    local b vm
    while read -r b vm; do
        printf 'bal,vm=%s,run=%s x=1i %s\n' "$vm" "$2" "$(date +%s%N)" |
            mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -t "dsf/m/$b/$1/m1/$vm" -s \
                -D publish user-property fmt lp || fail "could not publish for $1/m1/$vm"
    done <"$WORK/send.list"
}
unowned() { collector_sum "$1" damselfly_collector_messages_unowned_total; } # IDS

bal_start_stack
start_collector g1 --set pool=gold
for c in d1 d2; do start_collector $c; done
start_balancer b1 --set pools.map=ns-gold=gold,ns-old=gold
wait_for 15 among "g1" || fail "g1 does not own every bucket of pool gold"
last_assign g1 | grep -qF "\"prefixes\":[$LISTS]" || fail "g1's assignment has no prefixes: $(last_assign g1)"
wait_for 15 both excluding || fail "d1, d2 do not exclude ns-gold: $(last_assign d1)"
wait_for 10 among "d1 d2" || fail "d1, d2 do not share every bucket (confirmed)"
log "g1 owns ns-gold, ns-old in every bucket; d1, d2 share the buckets excluding them"

kill -9 "${BPID[b1]}"
wait "${BPID[b1]}" 2>/dev/null || true
t0=$(date +%s.%N)
start_balancer b1 --set pools.map=ns-gold=gold
LISTS='"ns-gold"'
gold_only() { last_assign g1 | grep -qF '"prefixes":["ns-gold"]'; }
wait_for 20 both excluding || fail "d1, d2 still exclude ns-old: $(last_assign d1)"
wait_for 10 gold_only || fail "g1 kept ns-old: $(last_assign g1)"
python3 - "$WORK/sub-bus.log" "$t0" <<'PY' || fail "g1 dropped ns-old before d1, d2 stopped excluding it"
import json, sys
t0, given, confirmed, taken = float(sys.argv[2]), {}, {}, None
for line in open(sys.argv[1]):
    t, topic, payload = line.rstrip("\n").split(" ", 2)
    if float(t) < t0 or not payload:
        continue
    who, leaf, o = topic.split("/")[2], topic.split("/")[3], json.loads(payload)
    if leaf == "assign" and who in ("d1", "d2") and o.get("exclude") == ["ns-gold"]:
        given.setdefault(who, o["epoch"])
    elif leaf == "hb" and who in given and o.get("epoch", 0) >= given[who]:
        confirmed.setdefault(who, float(t))
    elif leaf == "assign" and who == "g1" and o.get("prefixes") == ["ns-gold"] and taken is None:
        taken = float(t)
print(given, confirmed, taken)
assert taken and len(confirmed) == 2 and taken >= max(confirmed.values())
PY
log "restart without ns-old: g1 dropped it only after d1, d2 confirmed they take it again"

g0=$(points_in g1) d0=$(points_in "d1 d2") u0=$(unowned "d1 d2")
send_ns ns-gold gold1 20
send_ns ns1 plain1 20
wait_for 15 stored_is gold1 20 || fail "ns-gold lines stored: $(stored gold1) of 20"
wait_for 15 stored_is plain1 20 || fail "ns1 lines stored: $(stored plain1) of 20"
sleep 1
[ $(($(points_in g1) - g0)) = 20 ] || fail "g1 took $(($(points_in g1) - g0)) lines, not the 20 of ns-gold"
[ $(($(points_in "d1 d2") - d0)) = 20 ] ||
    fail "d1, d2 took $(($(points_in "d1 d2") - d0)) lines, not the 20 of ns1"
[ $(($(unowned "d1 d2") - u0)) = 20 ] ||
    fail "d1, d2 dropped $(($(unowned "d1 d2") - u0)) ns-gold messages as unowned, not 20"
log "ns-gold stored once by g1, ns1 by d1 and d2; the default pool dropped ns-gold unacked"

kill_collector g1
wait_for 10 both not_excluding || fail "the default pool still excludes ns-gold: $(last_assign d1)"
wait_for 10 among "d1 d2" || fail "d1, d2 did not confirm their assignments without exclude"
last_assign g1 | grep -q '"buckets":\[\]' || fail "g1's retained assignment still names buckets"
d0=$(points_in "d1 d2")
send_ns ns-gold gold2 20
wait_for 15 stored_is gold2 20 || fail "ns-gold lines after g1 died stored: $(stored gold2) of 20"
sleep 1
[ $(($(points_in "d1 d2") - d0)) = 20 ] ||
    fail "d1, d2 took $(($(points_in "d1 d2") - d0)) ns-gold lines, not 20"
log "kill -9 g1: d1, d2 take ns-gold again, all 20 lines stored"
log "ok"
