#!/usr/bin/env bash
# The webhook receiver sends Alertmanager's v4 body: every field is checked against what
# Alertmanager itself would send (fingerprint algorithm included), for a firing group, a
# partly resolved one and a resolved one. A second endpoint with max_alerts 1 gets
# truncatedAlerts, and fails its first two requests with 503 + Retry-After: the notification
# arrives on the third attempt and the retries are counted.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_notify_lib.sh"

start_sink hook
start_sink flaky --fail-first 2 --fail-status 503 --retry-after 1
cat >"$WORK/notify.json" <<JSON
{
  "global": {"external_url": "http://damselfly.test:9095"},
  "route": {"receiver": "ops", "group_by": ["alertname", "mci"], "group_wait": "300ms",
            "group_interval": "1s", "repeat_interval": "1h"},
  "receivers": [{"name": "ops", "retry": {"initial": "100ms", "max": "2s", "attempts": 5},
    "webhook_configs": [{"url": "http://127.0.0.1:$hook_PORT/hook"},
                        {"url": "http://127.0.0.1:$flaky_PORT/flaky", "max_alerts": 1}]}]
}
JSON
start_drive "$WORK/notify.json"
L1=alertname=HighCPU,severity=critical,ns=ns1,mci=m1,vm=vm1
L2=alertname=HighCPU,severity=critical,ns=ns1,mci=m1,vm=vm2
drive fire $L1 $L2
wait_for 10 has_posts hook 1 || fail "no webhook notification"
wait_for 10 has_posts flaky 1 || fail "the flaky endpoint never got through"
drive resolve $L1
wait_for 10 has_posts hook 2 || fail "no notification of the resolved vm1"
drive resolve $L2
wait_for 10 has_posts hook 3 || fail "no resolved notification"
sleep 1.5
retried=$(notify_metric 'damselfly_alarm_notifications_retried_total{receiver="ops"}')
stop_drive
[ "${retried%.*}" -ge 2 ] || fail "retries counted: $retried, expected >= 2"

python3 - "$WORK/hook.jsonl" "$WORK/flaky.jsonl" <<'PY' || fail "v4 body"
import datetime, json, sys
hook = [json.loads(l) for l in open(sys.argv[1])]
flaky = [json.loads(l) for l in open(sys.argv[2])]
assert len(hook) == 3, f"{len(hook)} webhook requests, expected 3 (firing, vm1 resolved, resolved)"

def fp(labels):  # Alertmanager's model.LabelSet.Fingerprint: FNV-1a 64, 0xff separators
    h = 14695981039346656037
    for k in sorted(labels):
        for part in (k, labels[k]):
            for b in part.encode() + b"\xff":
                h = ((h ^ b) * 1099511628211) & (2**64 - 1)
    return f"{h:016x}"

def rfc3339(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))

keys = {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
        "commonLabels", "commonAnnotations", "externalURL", "alerts"}
akeys = {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
want_status = [("firing", ["firing", "firing"]), ("firing", ["resolved", "firing"]),
               ("resolved", ["resolved"])]
for req, (status, alert_status) in zip(hook, want_status):
    assert req["path"] == "/hook" and req["content_type"] == "application/json", req
    b = json.loads(req["body"])
    assert set(b) == keys, f"keys {sorted(b)}"
    assert b["version"] == "4" and b["receiver"] == "ops", b
    assert b["groupKey"] == '{}:{alertname="HighCPU",mci="m1"}', b["groupKey"]
    assert b["truncatedAlerts"] == 0 and b["status"] == status, (b["status"], status)
    assert b["groupLabels"] == {"alertname": "HighCPU", "mci": "m1"}, b["groupLabels"]
    assert b["externalURL"] == "http://damselfly.test:9095", b["externalURL"]
    vms = sorted(a["labels"]["vm"] for a in b["alerts"])
    common = {"alertname": "HighCPU", "severity": "critical", "ns": "ns1", "mci": "m1"}
    if len(vms) == 1:
        common["vm"] = vms[0]
    assert b["commonLabels"] == common, b["commonLabels"]
    assert b["commonAnnotations"].get("value") == "97.5", b["commonAnnotations"]
    assert ("summary" in b["commonAnnotations"]) == (len(vms) == 1), b["commonAnnotations"]
    got = sorted((a["labels"]["vm"], a["status"]) for a in b["alerts"])
    assert [s for _, s in got] == alert_status, got
    for a in b["alerts"]:
        assert set(a) == akeys, f"alert keys {sorted(a)}"
        assert a["fingerprint"] == fp(a["labels"]), (a["fingerprint"], fp(a["labels"]))
        assert a["generatorURL"] == "http://damselfly.test/rules/x"
        assert a["annotations"]["summary"] == f"HighCPU on {a['labels']['vm']}"
        start = rfc3339(a["startsAt"])
        if a["status"] == "firing":
            assert a["endsAt"] == "0001-01-01T00:00:00Z", a["endsAt"]
        else:
            assert rfc3339(a["endsAt"]) >= start, a
# The flaky endpoint: two 503s, then the body, truncated to one alert.
assert [r["status"] for r in flaky[:3]] == [503, 503, 200], [r["status"] for r in flaky]
b = json.loads(flaky[2]["body"])
assert len(b["alerts"]) == 1 and b["truncatedAlerts"] == 1, (len(b["alerts"]), b["truncatedAlerts"])
print("3 v4 bodies with every field right; truncatedAlerts and retries after 503 work")
PY
log "ok"
