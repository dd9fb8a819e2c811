#!/usr/bin/env bash
# Two collectors share the 64 buckets by assignments published by hand (what the balancer
# will do); 200 agents (dsf-bench-load --acks: they keep and resend what no collector acked)
# send 3 series each at 1 message/s. Collector 1 is killed with -9 in the middle and its
# buckets are handed to collector 2 by a new assignment: every point of every agent series
# is in the store exactly once (check_seq.py), and every message was acked.
. "$(dirname "$0")/balancer_lib.sh"

bal_start_stack
start_collector c1
start_collector c2
E1=$(next_epoch)
assign c1 "$E1" 0-31
E2=$(next_epoch)
assign c2 "$E2" 32-63
wait_epoch c1 "$E1"
wait_epoch c2 "$E2"
log "c1 owns buckets 0-31, c2 32-63"

LOAD_DURATION=30s start_load
# Kill c1 once it has stored and acked part of the load: the messages it took after its last
# ack, and those the broker queues for its session, are only stored if the agents resend them.
c1_acked() { [ "$(collector_metric c1 damselfly_collector_acks_total 'result="published"')" -ge 1000 ]; }
wait_for 30 c1_acked || fail "collector 1 acked no 1000 messages in 30 s"
sleep 1
kill_collector c1
E3=$(next_epoch)
assign c2 "$E3" 0-63
E4=$(next_epoch)
assign c1 "$E4" # a restarted c1 would consume nothing
wait_epoch c2 "$E3"
log "killed c1 with -9; c2 owns all 64 buckets"

wait_load
[ "$(load_field resent)" -gt 0 ] || fail "no message was resent: the kill proved nothing"
[ "$(load_field unacked)" = 0 ] || fail "unacked messages remain"
check_seq --wait 30
log "ok: zero points missing, none duplicated"
