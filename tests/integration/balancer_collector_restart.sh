#!/usr/bin/env bash
# A collector with a persistent session (mqtt.session_expiry) killed with -9: its buckets move
# to the other, and lines sent meanwhile queue in its broker session too. Restarted, it finds
# its retained assignment emptied and consumes none of them (the collector drops what it does
# not own, unacknowledged); once the balancer gives it buckets again, a line to every bucket
# is taken in exactly once, by each collector for the buckets it owns.
# Needs the collector side of the contract (docs/balancer.md "Collectors").
. "$(dirname "$0")/balancer_lib.sh"

bal_start_stack
start_collector c1
start_collector c2
start_balancer b1
wait_for 15 owned "c1 c2" || fail "not every bucket owned once by c1 and c2"
mine() { python3 -c 'import json,sys; print(" ".join(k for k, v in json.load(open(sys.argv[1])).items() if v == sys.argv[2]))' "$WORK/owners.json" "$1"; }
old_c1=$(mine c1)

kill -9 "${COLLECTOR_PID[c1]}"
wait_for 10 owned c2 || fail "c1's buckets did not move to c2"
send_each "$old_c1" down
n_down=$(wc -w <<<"$old_c1")
wait_for 10 stored_is down "$n_down" || fail "$(stored down) of $n_down lines sent while c1 was down stored"
log "c1 killed: its $n_down buckets moved to c2, which consumed the lines sent meanwhile"

start_collector c1
wait_for 15 owned "c1 c2" || fail "c1 got no buckets back after its restart"
sleep 2
in_c1=$(points_in c1)
[ "$in_c1" = 0 ] || fail "the restarted c1 took in $in_c1 lines queued for buckets it no longer owned"
log "restarted c1 consumed none of the $n_down lines queued in its session"

owned "c1 c2" || fail "ownership not settled"
now_c1=$(mine c1)
before1=$(points_in c1) before2=$(points_in c2)
send_each "$(seq -s ' ' 0 63)" after
wait_for 10 stored_is after 64 || fail "$(stored after) of 64 lines stored"
sleep 1
d1=$(($(points_in c1) - before1)) d2=$(($(points_in c2) - before2))
log "one line per bucket: c1 took $d1 (owns $(wc -w <<<"$now_c1")), c2 took $d2"
[ "$d1" = "$(wc -w <<<"$now_c1")" ] || fail "c1 took in $d1 lines, but owns $(wc -w <<<"$now_c1") buckets"
[ $((d1 + d2)) = 64 ] || fail "$((d1 + d2)) lines taken in for 64 sent: a bucket consumed twice or not at all"
log "ok"
