#!/usr/bin/env bash
# Slack and email: a critical alert gives exactly one Slack message coloured "danger" and one
# email (python3's smtpd) with Date, Message-ID, From, To, Subject, MIME headers; the
# resolution gives one "good" message and a second email. An email receiver left at the
# default (STARTTLS required) refuses the plain-text server: nothing sent, counted as failed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_notify_lib.sh"

start_sink slack
start_smtp_sink
cat >"$WORK/notify.json" <<JSON
{
  "global": {"external_url": "http://alarm.example:9095"},
  "route": {"receiver": "team", "group_by": ["alertname", "mci"], "group_wait": "200ms",
            "group_interval": "1s", "repeat_interval": "1h",
            "routes": [{"matchers": ["severity=~\"crit.*\""], "receiver": "strict", "continue": true},
                       {"matchers": ["severity=~\"crit.*\""], "receiver": "team"}]},
  "receivers": [
    {"name": "team",
     "slack_configs": [{"api_url": "http://127.0.0.1:$slack_PORT/services/T0/B0/x", "channel": "#ops"}],
     "email_configs": [{"to": "ops@example.org", "from": "Damselfly <alarm@example.org>",
                        "smarthost": "127.0.0.1:$SMTP_PORT", "require_tls": false}]},
    {"name": "strict", "retry": {"attempts": 1},
     "email_configs": [{"to": "boss@example.org", "from": "alarm@example.org",
                        "smarthost": "127.0.0.1:$SMTP_PORT"}]}]
}
JSON
python3 -c 'import json, sys, jsonschema
jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))' \
    "$WORK/notify.json" "$DSF_SRC/schemas/alarm-notify.schema.json" || fail "routing file vs schema"
start_drive "$WORK/notify.json"
L=alertname=HighCPU,severity=critical,ns=ns1,mci=m1,vm=vm7
drive fire $L
wait_for 5 has_posts slack 1 || fail "no Slack message"
wait_for 5 test -s "$WORK/mail/1.eml" || fail "no email"
sleep 1.5
[ "$(posts slack)" -eq 1 ] || fail "$(posts slack) Slack messages, expected exactly 1"
drive resolve $L
wait_for 5 has_posts slack 2 || fail "no resolved Slack message"
wait_for 5 test -s "$WORK/mail/2.eml" || fail "no resolved email"
sleep 1.5
[ "$(posts slack)" -eq 2 ] || fail "$(posts slack) Slack messages, expected 2"
[ ! -e "$WORK/mail/3.eml" ] || fail "the STARTTLS-required receiver sent over plain text"
failed=$(notify_metric 'damselfly_alarm_notifications_failed_total{receiver="strict"}')
sent=$(notify_metric 'damselfly_alarm_notifications_sent_total{receiver="team"}')
stop_drive
[ "${failed%.*}" -ge 1 ] || fail "refused plain-text SMTP not counted as failed ($failed)"
[ "${sent%.*}" -eq 4 ] || fail "team sent $sent, expected 4 (2 Slack, 2 email)"
grep -q 'STARTTLS\|SSL\|TLS' "$WORK/drive.log" || fail "the failure does not say why"

python3 - "$WORK/slack.jsonl" "$WORK/mail" <<'PY' || fail "content"
import email, email.utils, json, sys, os
reqs = [json.loads(l) for l in open(sys.argv[1])]
assert all(r["path"] == "/services/T0/B0/x" for r in reqs)
bodies = [json.loads(r["body"]) for r in reqs]
colours = [b["attachments"][0]["color"] for b in bodies]
assert colours == ["danger", "good"], colours
first = bodies[0]
assert first["channel"] == "#ops", first
att = first["attachments"][0]
assert att["title"] == "[FIRING:1] HighCPU (mci=m1)", att["title"]
assert att["title_link"] == "http://alarm.example:9095"
assert "vm=vm7" in att["text"] and "HighCPU on vm7" in att["text"], att["text"]
assert bodies[1]["attachments"][0]["title"].startswith("[RESOLVED] HighCPU"), bodies[1]
mails = [email.message_from_bytes(open(os.path.join(sys.argv[2], f"{i}.eml"), "rb").read()) for i in (1, 2)]
env = json.load(open(os.path.join(sys.argv[2], "1.json")))
assert env == {"from": "alarm@example.org", "to": ["ops@example.org"]}, env
ids = set()
for m, subject in zip(mails, ["[FIRING:1] HighCPU (mci=m1)", "[RESOLVED] HighCPU (mci=m1)"]):
    assert m["From"] == "Damselfly <alarm@example.org>", m["From"]
    assert m["To"] == "ops@example.org", m["To"]
    assert m["Subject"] == subject, m["Subject"]
    assert email.utils.parsedate_to_datetime(m["Date"]) is not None, m["Date"]
    mid = m["Message-ID"]
    assert mid.startswith("<") and mid.endswith("@example.org>"), mid
    ids.add(mid)
    assert m["MIME-Version"] == "1.0" and m["Content-Type"].startswith("text/plain"), m.items()
    body = m.get_payload()
    assert "vm=vm7" in body and "HighCPU on vm7" in body, body
assert len(ids) == 2, "Message-IDs must differ"
print("Slack: danger then good, exactly 2; email: 2 messages with RFC 5322 headers; STARTTLS enforced")
PY
log "ok"
