#!/usr/bin/env bash
# A storm: 400 alerts with group_by [vm] cross at once -> 400 groups due together. A receiver
# that answers in 20 ms gets them all, never more than its max_in_flight (4) at once, none
# failed; the notification log holds all 400 (written in batches, not once per notification).
# A reload in the middle changes nothing of that.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_notify_lib.sh"

N=400
start_sink hook --delay 0.02
cat >"$WORK/notify.json" <<JSON
{
  "route": {"receiver": "hook", "group_by": ["vm"], "group_wait": "0s", "group_interval": "1m"},
  "receivers": [{"name": "hook", "max_in_flight": 4,
                 "webhook_configs": [{"url": "http://127.0.0.1:$hook_PORT/"}]}]
}
JSON
start_drive "$WORK/notify.json"
line=fire
for i in $(seq 1 $N); do line="$line alertname=Storm,severity=warning,ns=ns1,mci=m1,vm=vm$i"; done
echo "$line" >&3
# A reload while most notifications still queue: they finish on the old routing, and the
# re-routed alerts are not notified twice.
sleep 0.2
drive reload
wait_for 30 has_posts hook $N || fail "only $(posts hook) of $N notifications"
failed=$(notify_metric 'damselfly_alarm_notifications_failed_total{receiver="hook"}')
sleep 0.3
stop_drive
[ "${failed%.*}" = 0 ] || fail "$failed notifications failed"
python3 - "$WORK/hook.jsonl" "$WORK/state/nflog.json" "$N" <<'PY' || fail "storm"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
n = int(sys.argv[3])
active = max(r["active"] for r in reqs)
vms = {json.loads(r["body"])["alerts"][0]["labels"]["vm"] for r in reqs}
assert len(reqs) == n and len(vms) == n, (len(reqs), len(vms))
assert active == 4, f"{active} requests at once, expected the cap of 4"
entries = json.load(open(sys.argv[2]))["entries"]
assert len(entries) == n, f"{len(entries)} log entries"
span = max(r["t"] for r in reqs) - min(r["t"] for r in reqs)
print(f"{n} groups delivered in {span:.2f} s, at most {active} requests at once; all logged")
PY
log "ok"
