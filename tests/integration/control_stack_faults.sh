#!/usr/bin/env bash
# What the controller's acceptance tests stand on, without the controller: ctl_stack_up 4
# brings up the authenticated broker, InfluxDB, a collector and the alarm engine, and an MCI
# of 4 local VMs whose cpu points are all stored, in well under a minute. The faults the tests
# inject are seen as the controller will see them, on the bus as the operator reads it:
# kill -9 of a VM's process group fires agent_down (its Last Will), SIGSTOP turns the deadman
# to nodata within 2 x interval + 1 s while no Last Will comes, SIGCONT resolves it; the
# store's newest point of a stopped VM stays old, and new points follow SIGCONT. After the
# broker restarts on its port, the VMs' points are stored again, a VM created then gets its
# broker user, and the operator's log goes on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"

ctl_stack_up 4
[ "$CTL_STACK_SECONDS" -le 45 ] || fail "the stack took $CTL_STACK_SECONDS s to come up"
for vm in g-1 g-2 g-3 g-4; do
    [ "$(vm_state $vm)" = Running ] || fail "$vm is $(vm_state $vm), not Running"
done
out=$(mosquitto_pub -p "$MQTT_PORT" -V 5 -q 1 -t dsf/alarm/ns1/m1/x -m forged 2>&1) || true
grep -qi 'not authori' <<<"$out" || fail "an anonymous client could publish an alarm: $out"

log "kill -9 g-2: the Last Will fires $CTL_DOWN_RULE"
pgid=$(vm_pgid g-2)
pid=$(vm_field g-2 pid)
wpid=$(vm_field g-2 wpid)
[ "$(ps -o pgid= -p "$wpid" | tr -d ' ')" = "$pgid" ] || fail "the workload is not in g-2's process group"
vm_kill9 g-2
t0=$VM_SIGNAL_MS
wait_for 10 alarm_event_seen "$CTL_DOWN_RULE" firing g-2 || fail "no $CTL_DOWN_RULE firing event for g-2"
t1=$(alarm_event_first_ms "$CTL_DOWN_RULE" firing g-2 "$t0")
log "$CTL_DOWN_RULE firing for g-2 $((t1 - t0)) ms after the kill"
[ $((t1 - t0)) -le 3000 ] || fail "$CTL_DOWN_RULE took $((t1 - t0)) ms"
gone() { ! kill -0 "$1" 2>/dev/null; }
wait_for 5 gone "$pid" || fail "g-2's agent $pid survived kill -9"
wait_for 5 gone "$wpid" || fail "g-2's workload $wpid survived kill -9"
[ "$(vm_state g-2)" = Failed ] || fail "g-2 is $(vm_state g-2) after kill -9, not Failed"
wait_for 8 alarm_event_seen "$CTL_NODATA_RULE" nodata g-2 || fail "no $CTL_NODATA_RULE nodata event for g-2"
for vm in g-1 g-3 g-4; do
    [ "$(alarm_event_count "$CTL_DOWN_RULE" firing $vm)" = 0 ] || fail "$CTL_DOWN_RULE fired for $vm too"
done

log "SIGSTOP g-3: nodata within 2 x interval + 1 s, and no Last Will"
before=$(influx_last_point_ms g-3)
vm_stop g-3
t0=$VM_SIGNAL_MS
wait_for 10 alarm_event_seen "$CTL_NODATA_RULE" nodata g-3 || fail "no $CTL_NODATA_RULE nodata event for g-3"
t1=$(alarm_event_first_ms "$CTL_NODATA_RULE" nodata g-3 "$t0")
log "$CTL_NODATA_RULE nodata for g-3 $((t1 - t0)) ms after SIGSTOP"
[ $((t1 - t0)) -le $((2 * CTL_INTERVAL_MS + 1000)) ] || fail "nodata took $((t1 - t0)) ms"
[ "$(ps -o stat= -p "$(vm_field g-3 pid)" | cut -c1)" = T ] || fail "g-3's agent is not stopped"
[ "$(alarm_event_count "$CTL_DOWN_RULE" firing g-3)" = 0 ] || fail "a stopped agent sent its Last Will at once"
last=$(influx_last_point_ms g-3)
[ "$last" -le $((t0 + 1000)) ] || fail "g-3 stored a point taken $((last - t0)) ms after SIGSTOP"
log "g-3's newest stored point: $((t0 - last)) ms before SIGSTOP (was $((t0 - before)) ms)"
vm_cont g-3
t2=$VM_SIGNAL_MS
delay=$(first_point_after g-3 "$t2" 10) || fail "g-3 stored nothing after SIGCONT"
log "g-3's first point after SIGCONT taken $delay ms later"
wait_for 8 alarm_event_seen "$CTL_NODATA_RULE" resolved g-3 || fail "g-3's nodata alarm did not resolve"
[ "$(alarm_event_count "$CTL_DOWN_RULE" firing g-3)" = 0 ] || fail "g-3's agent went offline after all"
for vm in g-1 g-4; do
    [ "$(alarm_event_count "$CTL_NODATA_RULE" nodata $vm)" = 0 ] || fail "$vm went nodata, untouched"
done
log "the broker restarts on its port: the agents, the collector and the operator's log come back"
ctl_broker_stop
sleep 3
ctl_broker_start "$MQTT_PORT"
t3=$(now_ms)
for vm in g-1 g-3 g-4; do
    first_point_after $vm "$t3" 30 >/dev/null || fail "$vm stored nothing after the broker came back"
done
# A new VM's broker user reaches the restarted broker (the SIGHUP goes to its new pid).
ctl_fed scale-out ns1 m1 g 1 >"$WORK/fed-scale.out" 2>&1 || fail "scale-out: $(cat "$WORK/fed-scale.out")"
first_point_after g-5 "$t3" 30 >/dev/null || fail "g-5, created after the restart, stores nothing"
vm_kill9 g-4
wait_for 10 alarm_event_seen "$CTL_DOWN_RULE" firing g-4 "$VM_SIGNAL_MS" ||
    fail "the operator's log missed g-4's $CTL_DOWN_RULE after the broker restart"
log "ok"
