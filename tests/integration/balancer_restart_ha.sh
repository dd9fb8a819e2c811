#!/usr/bin/env bash
# The balancer killed with -9 and restarted reads the retained assignments back and moves
# nothing. With a standby running, killing the leader (-9, then SIGSTOP) makes the standby
# lead within 5 s; a stopped leader that comes back steps down and publishes nothing. The
# capture of every assignment shows no bucket in two assignments beyond a move's overlap.
. "$(dirname "$0")/balancer_lib.sh"

assigns() { grep -c '/assign ' "$WORK/sub-bus.log" || true; }
within() { python3 -c "import sys; sys.exit(0 if $1 <= $2 else 1)"; }

bal_start_stack
for c in c1 c2 c3 c4; do start_collector $c; done
start_balancer b1
wait_for 15 owned "c1 c2 c3 c4" || fail "not every bucket owned once by c1-c4"
cp "$WORK/owners.json" "$WORK/before.json"
n0=$(assigns)

kill -9 "${BPID[b1]}"
start_balancer b1
wait_for 10 leading b1 || fail "the restarted b1 does not lead"
sleep 3
[ "$(assigns)" = "$n0" ] || fail "the restarted balancer published $(($(assigns) - n0)) assignments"
owned "c1 c2 c3 c4" || fail "ownership changed across the restart"
[ "$(moved "$WORK/before.json" "$WORK/owners.json")" = "0 " ] || fail "buckets moved across the restart"
for r in join death drain load timeout; do
    [ "$(bal_metric b1 damselfly_balancer_moves_total "reason=\"$r\"")" = 0 ] || fail "moves_total{$r} is not 0 after the restart"
done
last=$(grep -o '"epoch":[0-9]*' "$WORK/sub-bus.log" | grep -v '"epoch":0$' | cut -d: -f2 | sort -n | tail -n 1)
[ "$(bal_metric b1 damselfly_balancer_epoch)" -ge "$last" ] || fail "the restarted balancer's epoch is below the retained $last"
log "kill -9 and restart: nothing moved, nothing published, epoch kept"

start_balancer b2
sleep 3
leading b1 || fail "b1 lost the lead when b2 started"
leading b2 && fail "b2 leads beside b1"
t0=$(date +%s.%N)
kill -9 "${BPID[b1]}"
wait_for 10 leading b2 || fail "the standby b2 did not take over"
took=$(python3 -c "import time; print(f'{time.time() - $t0:.2f}')")
log "kill -9 the leader: b2 leads after $took s"
within "$took" 5 || fail "b2 took over after $took s, more than 5 s"

kill -9 "${COLLECTOR_PID[c1]}"
wait_for 10 owned "c2 c3 c4" || fail "the new leader did not reassign c1's buckets"
log "the new leader reassigns a dead collector's buckets"

start_balancer b1
sleep 3
leading b1 && fail "the restarted b1 leads beside b2"
t0=$(date +%s.%N)
kill -STOP "${BPID[b2]}"
wait_for 10 leading b1 || { kill -CONT "${BPID[b2]}"; fail "b1 did not take over from the stopped b2"; }
took=$(python3 -c "import time; print(f'{time.time() - $t0:.2f}')")
log "SIGSTOP the leader: b1 leads after $took s"
n1=$(assigns)
kill -CONT "${BPID[b2]}"
within "$took" 5 || fail "b1 took over after $took s, more than 5 s"
wait_for 10 bal_metric b2 damselfly_balancer_leader || fail "b2 does not answer after SIGCONT"
sleep 3
leading b2 && fail "b2 still leads after coming back"
leading b1 || fail "b1 lost the lead to the stopped leader coming back"
[ "$(assigns)" = "$n1" ] || fail "$(($(assigns) - n1)) assignments published after b2 came back (nothing moved)"
grep -q "no longer leading" "$WORK"/balancer-b2-*.log || fail "b2 did not log stepping down"
log "the stopped leader came back, stepped down, published nothing"

worst=$($CHECK doubles "$WORK/sub-bus.log" 2.5) || fail "double assignment: $worst"
log "no bucket in two assignments beyond a move's overlap (longest $worst s)"
log "ok"
