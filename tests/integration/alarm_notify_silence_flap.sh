#!/usr/bin/env bash
# Silences through the API (Alertmanager's JSON shapes): a silence on vm1 suppresses its
# alert (counted), vm2 of the same group is still notified; a resolved/firing flap of vm2
# within group_interval sends nothing more; expiring the silence lets vm1 through.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_notify_lib.sh"

start_sink hook
API_PORT=$(free_port)
API="http://127.0.0.1:$API_PORT/api/v1/silences"
cat >"$WORK/notify.json" <<JSON
{
  "route": {"receiver": "ops", "group_by": ["mci"], "group_wait": "200ms",
            "group_interval": "3s", "repeat_interval": "1h"},
  "receivers": [{"name": "ops", "webhook_configs": [{"url": "http://127.0.0.1:$hook_PORT/"}]}]
}
JSON
start_drive "$WORK/notify.json" "127.0.0.1:$API_PORT"
L1=alertname=HighMem,severity=warning,ns=ns1,mci=m1,vm=vm1
L2=alertname=HighMem,severity=warning,ns=ns1,mci=m1,vm=vm2

# A bad silence is refused naming the key.
code=$(curl -s -o "$WORK/bad.json" -w '%{http_code}' -XPOST "$API" \
    -d '{"matchers":[{"name":"vm","value":"(","isRegex":true}],"endsAt":"2099-01-01T00:00:00Z"}')
[ "$code" = 400 ] && grep -q "matchers\[0\]" "$WORK/bad.json" || fail "bad silence: $code $(cat "$WORK/bad.json")"
ends=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
curl -sf -XPOST "$API" -H 'Content-Type: application/json' -d '{"matchers":[{"name":"vm","value":"vm1","isRegex":false}],
     "endsAt":"'"$ends"'","createdBy":"test","comment":"maintenance of vm1"}' >"$WORK/created.json" ||
    fail "silence not created"
SID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["silenceID"])' "$WORK/created.json")
curl -sf "$API" | python3 -c 'import json,sys; s=json.load(sys.stdin); assert [x["status"]["state"] for x in s]==["active"] and s[0]["id"]==sys.argv[1], s' "$SID" ||
    fail "silence not listed as active"

drive fire $L1
sleep 1
[ "$(posts hook)" -eq 0 ] || fail "a silenced alert was notified"
drive fire $L2
wait_for 5 has_posts hook 1 || fail "vm2 (not silenced) was not notified"
# Flap vm2 right after the notification, well inside the 3 s group_interval, ending firing.
for _ in 1 2 3 4 5; do
    echo "resolve $L2" >&3
    sleep 0.05
    echo "fire $L2" >&3
    sleep 0.05
done
drive fire $L1
sleep 4
[ "$(posts hook)" -eq 1 ] || fail "$(posts hook) notifications after the flap, expected 1"
silenced=$(notify_metric 'damselfly_alarm_notifications_silenced_total{receiver="ops"}')
[ "${silenced%.*}" -ge 2 ] || fail "silenced alerts counted: $silenced"

code=$(curl -s -o /dev/null -w '%{http_code}' -XDELETE "$API/no-such-id")
[ "$code" = 404 ] || fail "expiring an unknown silence answered $code"
curl -sf -XDELETE "$API/$SID" >/dev/null || fail "silence not expired"
curl -sf "$API" | grep -q '"state":"expired"' || fail "silence not listed as expired"
drive fire $L1
wait_for 6 has_posts hook 2 || fail "vm1 not notified after the silence expired"
stop_drive
test -s "$WORK/state/silences.json" || fail "silences not persisted"
python3 - "$WORK/hook.jsonl" <<'PY' || fail "bodies"
import json, sys
b = [json.loads(json.loads(l)["body"]) for l in open(sys.argv[1])]
vms = [sorted(a["labels"]["vm"] for a in x["alerts"] if a["status"] == "firing") for x in b]
assert vms == [["vm2"], ["vm1", "vm2"]], vms
print("silence suppressed vm1 and was counted; the flap sent nothing; expiry let vm1 through")
PY
log "ok"
