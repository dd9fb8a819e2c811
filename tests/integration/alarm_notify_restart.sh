#!/usr/bin/env bash
# Restart while a group fires: the notifier is freed and created again on the same state
# directory, the engine pushes the firing alert again -> no duplicate firing notification;
# nor after a reload of the routing file (a bad one is refused, the old one kept). A clean
# shutdown with flush sends the groups still waiting.
# The kept log still lets changes through: a new VM in the group is notified, and after one
# more restart the resolution is.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_notify_lib.sh"

start_sink hook
cat >"$WORK/notify.json" <<JSON
{
  "route": {"receiver": "hook", "group_by": ["alertname", "mci"], "group_wait": "300ms",
            "group_interval": "1s", "repeat_interval": "1h",
            "routes": [{"matchers": ["alertname=Backup"], "group_wait": "1h"}]},
  "receivers": [{"name": "hook", "webhook_configs": [{"url": "http://127.0.0.1:$hook_PORT/"}]}]
}
JSON
start_drive "$WORK/notify.json"
L1=alertname=DiskFull,severity=critical,ns=ns1,mci=m1,vm=vm1
L2=alertname=DiskFull,severity=critical,ns=ns1,mci=m1,vm=vm2
drive fire $L1
# logged N: the notification log holds a notification of N firing alerts (it is written once
# the receiver has answered, a moment after the sink saw the request).
logged() {
    python3 -c 'import json, sys
e = json.load(open(sys.argv[1]))["entries"]
sys.exit(0 if any(len(x["firing"]) == int(sys.argv[2]) for x in e) else 1)' "$WORK/state/nflog.json" "$1"
}
wait_for 5 has_posts hook 1 || fail "no first notification"
wait_for 5 logged 1 || fail "no notification log in the state directory"
drive restart
drive fire $L1
sleep 2.5
drive fire $L1
sleep 1
[ "$(posts hook)" -eq 1 ] || fail "$(posts hook) notifications after the restart, expected still 1"
# A reload with a bad routing file is refused naming the key and keeps the old routing; a good
# reload re-routes the firing alert without notifying it again.
cp "$WORK/notify.json" "$WORK/good.json"
sed -i 's/"group_wait"/"group_wiat"/' "$WORK/notify.json"
drive reload
grep -q "reload: $WORK/notify.json: route: unknown key 'group_wiat'" "$WORK/drive.log" ||
    fail "bad reload not reported with the file and key"
[ "$(notify_metric damselfly_alarm_notify_reloads_failed_total)" = 1 ] || fail "failed reload not counted"
cp "$WORK/good.json" "$WORK/notify.json"
drive reload
drive fire $L1
sleep 1.5
[ "$(posts hook)" -eq 1 ] || fail "$(posts hook) notifications after a reload, expected still 1"
drive fire $L2
wait_for 5 has_posts hook 2 || fail "a new alert in the group was not notified after the restart"
wait_for 5 logged 2 || fail "the second notification was not logged"
drive restart
drive resolve $L1 $L2
wait_for 5 has_posts hook 3 || fail "the resolution was not notified after the second restart"
sleep 1.5
[ "$(posts hook)" -eq 3 ] || fail "$(posts hook) notifications, expected 3"
# A clean shutdown with flush sends what still waits (here a group_wait of 1 h).
drive fire alertname=Backup,severity=warning,ns=ns1,mci=m1,vm=vm1
stop_drive quit_flush
[ "$(posts hook)" -eq 4 ] || fail "the waiting group was not flushed at shutdown"
python3 - "$WORK/hook.jsonl" <<'PY' || fail "bodies"
import json, sys
b = [json.loads(json.loads(l)["body"]) for l in open(sys.argv[1])][:3]
got = [(x["status"], sorted((a["labels"]["vm"], a["status"]) for a in x["alerts"])) for x in b]
want = [("firing", [("vm1", "firing")]),
        ("firing", [("vm1", "firing"), ("vm2", "firing")]),
        ("resolved", [("vm1", "resolved"), ("vm2", "resolved")])]
assert got == want, got
print("no duplicate after restart; new alert and resolution still notified")
PY
log "ok"
