#!/usr/bin/env bash
# A collector killed with -9 (its Will arrives at once): its buckets are reassigned within 3 s
# and applied by the others, its retained assignment is emptied (a restart consumes nothing
# it no longer owns), and every bucket is consumed again. A collector stopped with SIGSTOP
# (no Will): the same within 3 missed heartbeats.
. "$(dirname "$0")/balancer_lib.sh"

bal_start_stack
for c in c1 c2 c3 c4; do start_collector $c; done
start_balancer b1
wait_for 15 owned "c1 c2 c3 c4" || fail "not every bucket owned once by c1-c4"
leading b1 || fail "b1 does not lead"

t0=$(date +%s.%N)
kill -9 "${COLLECTOR_PID[c1]}"
wait_for 10 owned "c2 c3 c4" || fail "c1's buckets not reassigned to c2-c4 and applied"
took=$($CHECK assigned_at "$WORK/sub-bus.log" "c2 c3 c4" "$t0")
applied=$($CHECK owned_at "$WORK/sub-bus.log" "c2 c3 c4" "$t0")
log "kill -9 c1: reassigned after ${took} s, applied after ${applied} s"
python3 -c "import sys; sys.exit(0 if $took <= 3.0 else 1)" || fail "reassigned after $took s, more than 3 s"
python3 -c "import sys; sys.exit(0 if $applied <= 4.5 else 1)" || fail "applied after $applied s"
grep "dsf/c/c1/assign" "$WORK/sub-bus.log" | tail -n 1 | grep -q '"buckets":\[\]' ||
    fail "c1's retained assignment still names buckets: $(grep dsf/c/c1/assign "$WORK/sub-bus.log" | tail -n 1)"
[ "$(bal_metric b1 damselfly_balancer_moves_total 'reason="death"')" = 16 ] ||
    fail "moves_total{death} is $(bal_metric b1 damselfly_balancer_moves_total 'reason="death"'), expected 16"
wait_for 5 bal_metric b1 damselfly_balancer_failover_seconds || true
fo=$(bal_metric b1 damselfly_balancer_failover_seconds)
python3 -c "import sys; sys.exit(0 if 0 < $fo <= 4.5 else 1)" || fail "failover_seconds is $fo"
log "c1's retained assignment emptied; 16 moves by death; failover_seconds $fo"

before=$(points_in "c2 c3 c4")
send_each "$(seq -s ' ' 0 63)" after-kill
wait_for 10 stored_is after-kill 64 || fail "$(stored after-kill) of 64 lines stored after the failover"
sleep 1
[ $(($(points_in "c2 c3 c4") - before)) = 64 ] || fail "c2-c4 took in $(($(points_in "c2 c3 c4") - before)) lines, expected 64"
log "every bucket consumed once by c2-c4"

t0=$(date +%s.%N)
kill -STOP "${COLLECTOR_PID[c2]}"
wait_for 10 owned "c3 c4" || { kill -9 "${COLLECTOR_PID[c2]}"; fail "c2's buckets not reassigned after SIGSTOP"; }
took=$($CHECK assigned_at "$WORK/sub-bus.log" "c3 c4" "$t0")
kill -9 "${COLLECTOR_PID[c2]}"
log "SIGSTOP c2: reassigned after ${took} s"
python3 -c "import sys; sys.exit(0 if $took <= 3.5 else 1)" || fail "reassigned after $took s, more than 3 missed beats"
grep -q "member c2 is dead (missed heartbeats)" "$WORK"/balancer-b1-*.log || fail "no log line for c2's missed beats"
log "ok"
