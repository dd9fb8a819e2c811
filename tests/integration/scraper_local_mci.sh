#!/usr/bin/env bash
# Agentless healing: a local MCI whose VM runs no agent, only a real prometheus-node-exporter
# (label damselfly.monitoring=exporter), is scraped from the federation's model; its samples
# are stored with the VM's identity and its status is online. The controller runs with the
# starter agent-down policy (deploy/policies/agent-down.json). kill -9 of the VM: the scraper
# marks it offline, agent_down fires, the policy reboots the VM, the new exporter answers,
# the scraper marks it online and the controller records the heal (times printed).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"
. "$(dirname "$0")/scraper_lib.sh"

cat >"$WORK/spec.json" <<'JSON'
{"vm": [{"name": "exp", "subGroupSize": 1, "csp": "local", "region": "r1",
         "label": {"damselfly.monitoring": "exporter"},
         "workload": ["prometheus-node-exporter", "--web.listen-address=127.0.0.1:{port}",
                      "--collector.disable-defaults", "--collector.loadavg"]}]}
JSON
scraper_mci_stack "$WORK/spec.json"
[ "${CTL_VMS[*]}" = exp-1 ] || fail "the MCI has VMs '${CTL_VMS[*]}', not exp-1"
start_fed_scraper

log "the exporter VM is scraped: online, samples stored with its identity"
wait_for 20 vm_status_is exp-1 online || fail "exp-1 is not online: '$(vm_status exp-1)'"
load_points() { stored_in "$CTL_DB" "SELECT count(value) FROM node_load1 WHERE ns='ns1' AND mci='m1' AND vm='exp-1' $1"; }
has_load() { [ "$(load_points "${1:-}")" -gt 0 ]; }
wait_for 20 has_load || fail "no node_load1 of ns1/m1/exp-1 stored"

cp "$DSF_SRC/deploy/policies/agent-down.json" "$CTL_POLICIES/"
ctl_start
sleep 2
[ "$(ctl_calls)" = 0 ] || fail "the controller called the federation layer on a healthy MCI"

log "kill -9 the VM: offline, agent_down, the policy reboots it"
old_pid=$(vm_field exp-1 pid)
vm_kill9 exp-1
t0=$VM_SIGNAL_MS
wait_for 30 alarm_event_seen agent_down firing exp-1 "$t0" || fail "agent_down did not fire for exp-1"
fired=$(alarm_event_first_ms agent_down firing exp-1 "$t0")
log "agent_down firing $((fired - t0)) ms after the kill (scrape.interval 1 s, max_failures 2)"
wait_for 60 ctl_audit_has "$AUDIT_HEALED" || fail "no healed end in the audit"
healed=$(now_ms)
log "healed (audit) $((healed - t0)) ms after the kill"
[ "$(ctl_calls reboot)" = 1 ] || fail "$(ctl_calls reboot) reboot calls, want 1"
new_pid=$(vm_field exp-1 pid)
[ "$new_pid" != "$old_pid" ] || fail "exp-1 still runs $old_pid: it was not rebooted"
vm_status_is exp-1 online || fail "exp-1 is '$(vm_status exp-1)' after the heal"
wait_for 20 has_load "AND time > ${t0}ms" || fail "no node_load1 of exp-1 stored after the reboot"
[ "$(metric "$SAPI/metrics" damselfly_scraper_scrapes_total 'result="refused"')" -ge 2 ] ||
    fail "the failed scrapes were not counted as refused"
ctl_stop
stop_scraper_clean
log "ok"
