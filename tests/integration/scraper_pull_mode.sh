#!/usr/bin/env bash
# Pull mode: a local MCI whose agents have push off (damselfly.monitoring=pull) is pulled by
# the scraper from the agents' /api/v1/snapshot?format=lp with the pull token. The agents'
# clocks run 120 s behind the host's (tests/tools/dsf-clock-offset.c): the points stored carry
# the agents' own timestamps, not the scraper's, which would be 120 s later. Freezing one VM
# (SIGSTOP of its process group) makes it offline and fires its agent_down alarm (time
# printed); the other stays online; SIGCONT brings it back online.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"
. "$(dirname "$0")/scraper_lib.sh"

OFFSET_S=-120
SHIM="$DSF_BUILD/tests/tools/libdsf-clock-offset.so"
[ -f "$SHIM" ] || fail "$SHIM is missing: build the tree first"
# The agent binary the driver installs: the real agent with its clock moved.
SCRAPER_AGENT_BINARY="$WORK/agent-behind"
printf '#!/bin/sh\nDSF_CLOCK_OFFSET_S=%s LD_PRELOAD=%s exec %s "$@"\n' "$OFFSET_S" "$SHIM" "$AGENT" \
    >"$SCRAPER_AGENT_BINARY"
chmod 755 "$SCRAPER_AGENT_BINARY"

cat >"$WORK/spec.json" <<'JSON'
{"vm": [{"name": "p", "subGroupSize": 2, "csp": "local", "region": "r1",
         "label": {"damselfly.monitoring": "pull"}, "workload": ["sleep", "3600"]}]}
JSON
scraper_mci_stack "$WORK/spec.json"
[ "${CTL_VMS[*]}" = "p-1 p-2" ] || fail "the MCI has VMs '${CTL_VMS[*]}', not p-1 p-2"
start_fed_scraper

log "both agents are pulled: online, their cpu points stored"
for vm in p-1 p-2; do
    wait_for 20 vm_status_is $vm online || fail "$vm is not online: '$(vm_status $vm)'"
    wait_for 20 influx_has_points $vm || fail "no cpu point of $vm stored"
done
sleep 3
log "the stored times are the agents' own"
for vm in p-1 p-2; do
    now=$(now_ms)
    last=$(influx_last_point_ms $vm)
    lag=$((now - last))
    log "$vm: newest stored cpu point $lag ms before now (the agent's clock: ${OFFSET_S} s)"
    [ "$lag" -ge 110000 ] && [ "$lag" -le 130000 ] ||
        fail "$vm's newest point is $lag ms old, not the agent's -120 s: re-stamped by the scraper?"
    recent=$(stored_in "$CTL_DB" "SELECT count(usage_idle) FROM cpu WHERE vm='$vm' AND time > now() - 60s")
    [ "$recent" = 0 ] || fail "$recent cpu points of $vm stamped by the scraper's clock"
done
# The pulled lines are Telegraf's, as the agent renders them: the snapshot's measurements.
TOKEN=$(<"$FED_DIR/local/pull.token")
curl -sf -H "Authorization: Bearer $TOKEN" "http://$(vm_field p-1 address)/api/v1/snapshot?format=lp" \
    >"$WORK/snap.lp" || fail "the snapshot of p-1 failed"
influx_query "$CTL_DB" "SHOW MEASUREMENTS WHERE vm='p-1'" >"$WORK/measurements.json"
for m in $(sed 's/[ ,].*//' "$WORK/snap.lp" | sort -u); do
    grep -q "\"$m\"" "$WORK/measurements.json" || fail "the agent's measurement $m is not stored for p-1"
done
[ "$(metric "$SAPI/metrics" damselfly_scraper_samples_rejected_total 'reason="line_protocol"')" = 0 ] ||
    fail "the scraper rejected agent lines"

log "freeze p-2: offline, agent_down fires; p-1 stays online"
vm_stop p-2
t0=$VM_SIGNAL_MS
wait_for 30 alarm_event_seen agent_down firing p-2 "$t0" || fail "agent_down did not fire for p-2"
fired=$(alarm_event_first_ms agent_down firing p-2 "$t0")
log "agent_down firing for p-2 $((fired - t0)) ms after SIGSTOP (scrape.interval 1 s, max_failures 2)"
vm_status_is p-2 offline || fail "p-2 is '$(vm_status p-2)', not offline"
vm_status_is p-1 online || fail "p-1 is '$(vm_status p-1)': freezing p-2 touched it"
[ "$(alarm_event_count agent_down firing p-1)" = 0 ] || fail "agent_down fired for p-1"
timeouts=$(metric "$SAPI/metrics" damselfly_scraper_scrapes_total 'result="timeout"')
[ "$timeouts" -ge 2 ] || fail "$timeouts timed-out scrapes counted, want at least 2"
vm_cont p-2
wait_for 20 vm_status_is p-2 online || fail "p-2 did not come back online"
wait_for 20 alarm_event_seen agent_down resolved p-2 "$t0" || fail "agent_down did not resolve for p-2"
stop_scraper_clean
log "ok"
