#!/usr/bin/env bash
# Grouping: 10 VMs of one MCI cross at once with group_by [mci] -> one notification naming all
# 10; while the engine keeps re-pushing the unchanged firing alerts nothing is repeated before
# repeat_interval (4 s), and exactly one repeat comes after it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_notify_lib.sh"

start_sink slack
cat >"$WORK/notify.json" <<JSON
{
  "route": {"receiver": "team", "group_by": ["mci"], "group_wait": "500ms",
            "group_interval": "1s", "repeat_interval": "4s"},
  "receivers": [{"name": "team", "slack_configs": [{"api_url": "http://127.0.0.1:$slack_PORT/slack"}]}]
}
JSON
start_drive "$WORK/notify.json"
# The 10 alerts cross in the same evaluation: one line, pushed in one go.
push_all() {
    echo "fire $(for i in $(seq 1 10); do printf 'alertname=HighCPU,severity=warning,ns=ns1,mci=m1,vm=vm%s ' "$i"; done)" >&3
}
push_all
start=$SECONDS
wait_for 5 has_posts slack 1 || fail "no notification for the group"
# The engine re-pushes firing alerts periodically, as Prometheus does.
for _ in 1 2 3; do sleep 1; push_all; done
[ "$(posts slack)" -eq 1 ] || fail "$(posts slack) notifications before repeat_interval, expected 1"
wait_for 4 has_posts slack 2 || fail "no repeat after repeat_interval"
push_all
sleep 1.5
[ "$(posts slack)" -eq 2 ] || fail "$(posts slack) notifications, expected exactly 2 (one repeat)"
stop_drive
python3 - "$WORK/slack.jsonl" <<'PY' || fail "slack messages"
import json, re, sys
msgs = [json.loads(json.loads(l)["body"]) for l in open(sys.argv[1])]
for m in msgs:
    a = m["attachments"][0]
    assert a["title"] == "[FIRING:10] HighCPU (mci=m1)", a["title"]
    assert a["color"] == "warning", a["color"]
    for i in range(1, 11):
        assert re.search(rf"vm=vm{i}\b", a["text"]), f"vm{i} missing from {a['text']!r}"
print("one notification naming all 10 VMs, one repeat after repeat_interval")
PY
log "ok"
