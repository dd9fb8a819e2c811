#!/usr/bin/env bash
# A collector that follows assignments with a persistent session consumes only what it owns
# after a restart: c1 owns buckets 3 and 5, is killed (-9), the balancer moves bucket 5 away
# while it is down (retained, higher epoch), agents on buckets 3 and 5 keep publishing into
# its session. Restarted, c1 stores every point of the bucket-3 agent (what its session
# queued before the assignment arrived is dropped unacked and resent by the agent), none of
# the bucket-5 agent (counted as unowned), and the broker stops routing bucket 5 to it.
. "$(dirname "$0")/lib.sh"

follower_stack
assign() { mosquitto_pub -V 5 -p "$MQTT_PORT" -q 1 -r -t dsf/c/c1/assign -m "$1"; }
vm_in() { # BUCKET PREFIX: the first PREFIX-N whose agent ns1/mci1/PREFIX-N is in BUCKET
    local i=0
    until [ "$(bucket "ns1/mci1/$2-$i" 64)" = "$1" ]; do i=$((i + 1)); done
    echo "$2-$i"
}
VA=$(vm_in 3 vm-a) VB=$(vm_in 5 vm-b)
declare -A APORT
for vm in "$VA" "$VB"; do
    APORT[$vm]=$(free_port)
    bg "agent-$vm" "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm="$vm" \
        --set interval=1s --set mqtt.url="$MQTT_URL" --set buffer.ack=collector \
        --set buffer.ack_timeout=3s --set http.listen="127.0.0.1:${APORT[$vm]}" \
        --set privileges.drop=false --set inputs.synthetic.enabled=true \
        --set inputs.synthetic.series=1 --set inputs.cpu.enabled=false \
        --set inputs.mem.enabled=false --set inputs.swap.enabled=false \
        --set inputs.disk.enabled=false --set inputs.diskio.enabled=false \
        --set inputs.net.enabled=false --set inputs.system.enabled=false \
        --set inputs.processes.enabled=false --set inputs.container.enabled=false
done
stored() { # VM -> points stored for it
    influx_query dsf "SELECT count(f0) FROM synthetic WHERE vm='$1'" |
        python3 -c 'import json,sys; s=json.load(sys.stdin)["results"][0].get("series"); print(s[0]["values"][0][1] if s else 0)'
}
has_stored() { [ "$(stored "$1")" -gt 0 ]; }
unowned() { metric "http://127.0.0.1:$CPORT/metrics" damselfly_collector_messages_unowned_total; }

start_follower
assign '{"epoch":1,"buckets":[3,5]}'
wait_for 5 follower_hb_is 1 2 || fail "epoch 1 not applied: $(tail -n 1 "$WORK/hb.log")"
wait_for 15 has_stored "$VA" || fail "nothing stored for $VA (bucket 3)"
wait_for 15 has_stored "$VB" || fail "nothing stored for $VB (bucket 5)"
kill -9 "$COLLECTOR_PID"
log "c1 killed owning buckets 3 and 5"

assign "{\"epoch\":2,\"buckets\":[3]}"
sleep 4 # both agents publish into c1's session
before=$(stored "$VB")
start_follower
wait_for 5 follower_hb_is 2 1 || fail "epoch 2 not applied after the restart"
some_unowned() { [ "$(unowned)" -gt 0 ]; }
wait_for 10 some_unowned ||
    fail "no message of the session's queue counted as unowned (bucket 5)"
sleep 5 # more than the agents' ack_timeout: bucket 5's resends must not reach c1
u1=$(unowned)
sleep 4
u2=$(unowned)
[ "$u1" = "$u2" ] || fail "bucket 5 still reaches c1 after epoch 2: unowned $u1 -> $u2"
[ "$(stored "$VB")" = "$before" ] ||
    fail "$VB (bucket 5, not owned) stored by c1: $before -> $(stored "$VB") points"
log "bucket 5: $u2 queued messages dropped as unowned, none stored, no longer routed to c1"

# Every message the bucket-3 agent sent is acked (stored), including those the session
# queued before epoch 2 arrived and c1 dropped as unowned.
drained() { [ "$(metric "http://127.0.0.1:${APORT[$VA]}/metrics" damselfly_agent_buffer_messages)" = 0 ]; }
wait_for 30 drained || fail "$VA still holds unacknowledged messages"
sent=$(metric "http://127.0.0.1:${APORT[$VA]}/metrics" damselfly_agent_seq)
has_all() { [ "$(stored "$VA")" -ge "$sent" ]; }
wait_for 10 has_all || fail "$VA (bucket 3): $(stored "$VA") points stored, the agent sent $sent"
log "bucket 3: all $sent points stored"
log "ok"
