#!/usr/bin/env bash
# A real agent watches a CPU burner (procstat); the burner starts burning and the rule
# (cpu_usage > 30 for 2 s) goes pending, then firing after `for`; the events are on the bus
# and in a real InfluxDB (dsf_alarm), and the notifier delivers exactly one firing
# notification to a webhook, a local Slack sink and a real SMTP sink (python3's smtpd; the
# email with Date, Message-ID, From, To and Subject); the burner stops burning (it stays
# alive, idle) and the alarm resolves, as the API, the bus and a resolved notification on
# each receiver show.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"

start_mosquitto
start_influxd
influx_create_db dsf
rule burner '{"name":"burner","select":{"measurement":"procstat","field":"cpu_usage",
  "tags":[{"tag":"pattern","op":"=","value":"dsf-burner"}]},
  "window":"2s","reduce":"avg","crit":{"threshold":30,"reset":15},"for":"2s",
  "labels":{"team":"ops"},"annotations":{"summary":"{{vm}} burns {{value}}% CPU"}}'
capture_events
bg sink python3 "$DSF_SRC/tests/tools/notify_sink.py" "$WORK/hook.port" "$WORK/hook.jsonl"
wait_for 10 test -s "$WORK/hook.port" || fail "the webhook sink did not start"
bg slack python3 "$DSF_SRC/tests/tools/notify_sink.py" "$WORK/slack.port" "$WORK/slack.jsonl"
bg smtp python3 "$DSF_SRC/tests/tools/smtp_sink.py" "$WORK/smtp.port" "$WORK/mail"
wait_for 10 test -s "$WORK/slack.port" || fail "the Slack sink did not start"
wait_for 10 test -s "$WORK/smtp.port" || fail "the SMTP sink did not start"
cat >"$WORK/notify.json" <<JSON
{"route": {"receiver": "hook", "group_by": ["alertname", "vm"], "group_wait": "0s",
           "group_interval": "1s", "repeat_interval": "1h"},
 "receivers": [{"name": "hook",
   "webhook_configs": [{"url": "http://127.0.0.1:$(cat "$WORK/hook.port")/hook"}],
   "slack_configs": [{"api_url": "http://127.0.0.1:$(cat "$WORK/slack.port")/services/T0/B0/x",
                      "channel": "#ops"}],
   "email_configs": [{"to": "ops@example.org", "from": "Damselfly <alarm@example.org>",
                      "smarthost": "127.0.0.1:$(cat "$WORK/smtp.port")", "require_tls": false}]}]}
JSON
start_alarm --set output.url="$INFLUX_URL" --set output.db=dsf --set output.interval=50ms \
    --set notify.config="$WORK/notify.json"
# Burns while $WORK/burn exists, idles otherwise; its command line names it for procstat.
bg burner python3 -c '
import os, sys, time
while True:
    if os.path.exists(sys.argv[1]):
        end = time.time() + 0.05
        while time.time() < end:
            pass
    else:
        time.sleep(0.05)' "$WORK/burn" dsf-burner
agent_config "$WORK/agent.json" identity.ns=ns1 identity.mci=mci1 identity.vm=vm1 interval=1s \
    mqtt.url="$MQTT_URL" http.listen=127.0.0.1:0 privileges.drop=false \
    inputs.processes.enabled=false inputs.procstat.enabled=true \
    'inputs.procstat.patterns:=["dsf-burner"]'
bg agent "$AGENT" --config "$WORK/agent.json"
wait_for 15 sh -c "curl -sf '$API/healthz' | grep -q '\"series\":[1-9]'" ||
    fail "no procstat samples of the burner reached the engine"
sleep 2
state_is burner none || fail "the idle burner raised the alarm"
touch "$WORK/burn"
log "burning"
wait_for 10 state_is burner pending || fail "the alarm did not go pending"
log "pending"
wait_for 10 state_is burner firing || fail "the alarm did not fire after for"
log "firing"
python3 - "$WORK/sub-events.log" <<'PY' || fail "the bus does not show pending, then firing after for"
import json, sys
ev = [json.loads(l.split(" ", 1)[1]) for l in open(sys.argv[1]) if l.startswith("dsf/alarm/ns1/mci1/burner ")]
states = [e["state"] for e in ev]
assert states[:2] == ["pending", "firing"], states
p, f = ev[0], ev[1]
assert f["previous"] == "pending" and f["severity"] == "crit", f
assert f["starts_at"] - p["pending_since"] >= 2e9, (p["pending_since"], f["starts_at"])
assert f["group"] == {"ns": "ns1", "mci": "mci1", "vm": "vm1"}, f["group"]
assert f["labels"] == {"team": "ops"} and f["annotations"]["summary"].startswith("vm1 burns "), f
assert f["value"] > 30, f["value"]
print("pending -> firing after %.2f s at %.1f%% CPU" % ((f["starts_at"] - p["pending_since"]) / 1e9, f["value"]))
PY
# The API lists the firing alarm as its event, engine included, so a reader keys it alike.
curl -sf "$API/api/v1/alarms" >"$WORK/alarms.json" || fail "GET /api/v1/alarms failed"
python3 - "$WORK/alarms.json" "$WORK/sub-events.log" "$DSF_SRC/schemas/alarm-event.schema.json" <<'PY' ||
import json, sys
listed = [a for a in json.load(open(sys.argv[1]))["alarms"] if a["rule"] == "burner"]
assert len(listed) == 1, listed
a = listed[0]
want = set(json.load(open(sys.argv[3]))["required"]) - {"previous", "previous_severity", "ts"}
assert set(a) == want, sorted(set(a) ^ want)
f = [json.loads(l.split(" ", 1)[1]) for l in open(sys.argv[2]) if l.startswith("dsf/alarm/ns1/mci1/burner ")][1]
for k in ("engine", "rule", "state", "severity", "group", "starts_at", "labels"):
    assert a[k] == f[k], (k, a[k], f[k])
assert a["engine"] == "a1", a["engine"]
print("listed as on the bus:", {k: a[k] for k in ("engine", "rule", "group", "starts_at")})
PY
    fail "GET /api/v1/alarms does not list the firing alarm as its event (engine included)"
rm -f "$WORK/burn"
log "idle"
wait_for 15 state_is burner none || fail "the alarm did not resolve when the burner stopped"
sleep 1
[ "$(events burner firing)" = 1 ] || fail "$(events burner firing) firing events, want 1"
[ "$(events burner resolved)" = 1 ] || fail "$(events burner resolved) resolved events, want 1"
python3 - "$INFLUX_URL" <<'PY' || fail "InfluxDB does not hold the alarm's events"
import json, sys, urllib.parse, urllib.request
q = urllib.parse.urlencode({"db": "dsf", "q": "SELECT state, severity, value, vm FROM dsf_alarm WHERE rule = 'burner'"})
res = json.load(urllib.request.urlopen(sys.argv[1] + "/query?" + q))["results"][0]
rows = res["series"][0]["values"] if "series" in res else []
states = [r[1] for r in rows]
assert states == ["pending", "firing", "resolved"], states
assert rows[1][2] == "crit" and rows[1][3] > 30 and rows[1][4] == "vm1", rows[1]
print("dsf_alarm in InfluxDB:", states)
PY
check_event_schema
wait_for 10 sh -c "[ \$(wc -l <'$WORK/hook.jsonl') -ge 2 ]" || fail "no resolved notification"
sleep 1 # nothing more may come
python3 - "$WORK/hook.jsonl" <<'PY' || fail "the webhook did not get one firing and one resolved notification"
import json, sys
bodies = [json.loads(json.loads(l)["body"]) for l in open(sys.argv[1])]
firing = [b for b in bodies if b["status"] == "firing"]
resolved = [b for b in bodies if b["status"] == "resolved"]
assert len(firing) == 1 and len(resolved) == 1, [b["status"] for b in bodies]
labels = firing[0]["alerts"][0]["labels"]
want = {"alertname": "burner", "severity": "crit", "ns": "ns1", "mci": "mci1", "vm": "vm1", "team": "ops"}
assert all(labels.get(k) == v for k, v in want.items()), labels
assert firing[0]["alerts"][0]["annotations"]["summary"].startswith("vm1 burns "), firing[0]
print("webhook: 1 firing, 1 resolved notification with labels", labels)
PY
wait_for 10 sh -c "[ \$(wc -l <'$WORK/slack.jsonl') -ge 2 ] && [ -s '$WORK/mail/2.eml' ]" ||
    fail "Slack or email did not get the resolved notification"
python3 - "$WORK/slack.jsonl" "$WORK/mail" <<'PY' || fail "Slack or email notifications are wrong"
import email, email.utils, json, os, sys
slack = [json.loads(json.loads(l)["body"]) for l in open(sys.argv[1])]
assert len(slack) == 2, f"{len(slack)} Slack messages, want one firing and one resolved"
colours = [m["attachments"][0]["color"] for m in slack]
assert colours == ["danger", "good"], colours
assert "burner" in json.dumps(slack[0]) and "vm1" in json.dumps(slack[0]), slack[0]
names = sorted(f for f in os.listdir(sys.argv[2]) if f.endswith(".eml"))
assert names == ["1.eml", "2.eml"], names
for n in names:
    m = email.message_from_bytes(open(os.path.join(sys.argv[2], n), "rb").read())
    assert email.utils.parsedate_to_datetime(m["Date"]) is not None, m["Date"]
    assert m["Message-ID"] and m["Message-ID"].startswith("<"), m["Message-ID"]
    assert m["From"] == "Damselfly <alarm@example.org>" and m["To"] == "ops@example.org", (m["From"], m["To"])
    assert "burner" in m["Subject"], m["Subject"]
print("Slack:", colours, "; email subjects:", [email.message_from_bytes(open(os.path.join(sys.argv[2], n), "rb").read())["Subject"] for n in names])
PY
stop_alarm_clean
log "ok"
