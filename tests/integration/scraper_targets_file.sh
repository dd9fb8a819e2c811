#!/usr/bin/env bash
# Agentless monitoring from a targets file: a real prometheus-node-exporter listed in a
# file_sd file is scraped every second; its node_* samples are stored by the collector with
# the VM's identity tags (an exporter's own ns and site labels kept as exported_ns and exported_site), the VM's retained
# status is online. Stop the exporter: after scrape.max_failures failed scrapes the status
# is offline and the alarm engine's agent_down rule fires (the time it took is printed).
# Start it again: online, the alarm resolves. A second target with the same identity and one
# without vm are refused and counted; removing the target from the file clears its status.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"
. "$(dirname "$0")/scraper_lib.sh"

scraper_pipeline
EPORT=$(free_port)
# The textfile collector serves a sample with labels of the scraper's own names.
mkdir -p "$WORK/textfile"
printf '# TYPE scrape_probe gauge\nscrape_probe{ns="foreign",site="theirs"} 42\n' >"$WORK/textfile/probe.prom"
start_exporter() {
    bg "exporter-$SECONDS" "$EXPORTER" --web.listen-address="127.0.0.1:$EPORT" \
        --collector.disable-defaults --collector.loadavg --collector.meminfo \
        --collector.textfile --collector.textfile.directory="$WORK/textfile"
    EXPORTER_PID=$BG_PID
    wait_for 10 curl -sf "http://127.0.0.1:$EPORT/metrics" || fail "the exporter did not start"
}
start_exporter
cat >"$WORK/targets.json" <<JSON
[{"targets": ["127.0.0.1:$EPORT"], "labels": {"ns": "ns1", "mci": "mci1", "vm": "vm1", "site": "lab"}},
 {"targets": ["127.0.0.1:$EPORT"], "labels": {"ns": "ns1", "mci": "mci1", "vm": "vm1"}},
 {"targets": ["127.0.0.1:$EPORT"], "labels": {"ns": "ns1", "mci": "mci1"}}]
JSON
start_scraper --set scrape.targets_file="$WORK/targets.json"

log "the exporter's samples are stored with the VM's identity"
wait_for 20 status_is ns1/mci1/vm1 online || fail "the VM's status is not online: '$(retained_status ns1/mci1/vm1)'"
mosquitto_sub -p "$MQTT_PORT" -V 5 -t dsf/a/ns1/mci1/vm1/status -C 1 -W 2 >"$WORK/status.json" ||
    fail "no retained status"
python3 - "$DSF_SRC/schemas/agent-status.schema.json" "$WORK/status.json" <<'PY' ||
import json, sys, jsonschema
status = json.load(open(sys.argv[2]))
jsonschema.validate(status, json.load(open(sys.argv[1])))
assert status["via"] == "scraper" and status["scraper"] == "s1", status
assert (status["ns"], status["mci"], status["vm"]) == ("ns1", "mci1", "vm1"), status
PY
    fail "the status published on the VM's behalf does not follow agent-status.schema.json: $(cat "$WORK/status.json")"
wait_for 20 stored_some node_load1 vm1 || fail "no node_load1 of vm1 stored"
wait_for 20 stored_some node_memory_MemTotal_bytes vm1 || fail "no node_memory_MemTotal_bytes of vm1 stored"
tags=$(influx_query dsf "SELECT * FROM node_load1 WHERE vm='vm1' LIMIT 1")
for want in '"ns"' '"mci"' '"site"' '"lab"' '"ns1"' '"mci1"'; do
    grep -q "$want" <<<"$tags" || fail "node_load1 lacks $want: $tags"
done
wait_for 20 stored_some scrape_probe vm1 || fail "no scrape_probe of vm1 stored"
probe=$(influx_query dsf "SELECT * FROM scrape_probe WHERE vm='vm1' LIMIT 1")
python3 - "$probe" <<'PY' || fail "the exporter's own ns and site labels were not kept as exported_*: $probe"
import json, sys
s = json.loads(sys.argv[1])["results"][0]["series"][0]
row = dict(zip(s["columns"], s["values"][0]))
assert row["ns"] == "ns1" and row["exported_ns"] == "foreign", row
assert row["site"] == "lab" and row["exported_site"] == "theirs", row
assert row["value"] == 42, row
PY
[ "$(metric "$SAPI/metrics" damselfly_scraper_targets_refused_total)" = 2 ] ||
    fail "the duplicate and the target without vm were not both refused"
[ "$(targets_in up)" = 1 ] || fail "$(targets_in up) targets up, want 1"
curl -sf "$SAPI/healthz" | grep -q '"targets":{"pending":0,"up":1,"down":0}' ||
    fail "healthz does not list the target: $(curl -s "$SAPI/healthz")"
published=$(metric "$SAPI/metrics" damselfly_scraper_lines_published_total)
[ "$published" -gt 0 ] || fail "no lines published"
state_is agent_down none || fail "agent_down is $(alarm_state agent_down) while the exporter answers"

log "stop the exporter: offline after 2 failed scrapes, the alarm fires"
ok_before=$(scrapes ok)
stop_pid "$EXPORTER_PID"
stopped=$(date +%s.%N)
wait_for 20 status_is ns1/mci1/vm1 offline || fail "the status did not go offline"
offline=$(date +%s.%N)
wait_for 20 state_is agent_down firing || fail "agent_down did not fire: $(alarm_state agent_down)"
fired=$(date +%s.%N)
refused=$(scrapes refused)
[ "$refused" -ge 2 ] || fail "$refused refused scrapes counted, want at least 2"
[ "$(targets_in down)" = 1 ] || fail "the target is not counted down"
log "status offline $(python3 -c "print(round($offline - $stopped, 2))") s and agent_down firing" \
    "$(python3 -c "print(round($fired - $stopped, 2))") s after the exporter stopped" \
    "(interval 1 s, max_failures 2, rule for 1 s)"

log "start it again: online, the alarm resolves"
start_exporter
wait_for 20 status_is ns1/mci1/vm1 online || fail "the status did not come back online"
wait_for 20 state_is agent_down none || fail "agent_down did not resolve: $(alarm_state agent_down)"
[ "$(scrapes ok)" -gt "$ok_before" ] || fail "no good scrape counted after the restart"
[ "$(events agent_down firing)" = 1 ] || fail "$(events agent_down firing) firing events, want 1"

log "the target removed from the file: its status is cleared"
echo '[]' >"$WORK/targets.json"
wait_for 10 status_is ns1/mci1/vm1 "" || fail "the status was not cleared: '$(retained_status ns1/mci1/vm1)'"
[ "$(targets_in up)" = 0 ] || fail "the removed target is still counted"
stop_scraper_clean
log "ok"
