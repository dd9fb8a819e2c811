#!/usr/bin/env bash
# A real Alertmanager (Debian's prometheus-alertmanager) receives the alert through
# POST /api/v2/alerts and `amtool alert query` lists it; once resolved it is no longer active.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_notify_lib.sh"

AM=$(command -v prometheus-alertmanager || command -v alertmanager) ||
    fail "prometheus-alertmanager not installed (scripts/install-deps.sh test)"
command -v amtool >/dev/null || fail "amtool not installed"
AM_PORT=$(free_port)
AM_URL="http://127.0.0.1:$AM_PORT"
cat >"$WORK/am.yml" <<YML
route:
  receiver: "null"
receivers:
  - name: "null"
YML
mkdir -p "$WORK/am-data"
bg alertmanager "$AM" --config.file="$WORK/am.yml" --storage.path="$WORK/am-data" \
    --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address=
wait_for 20 curl -sf "$AM_URL/-/ready" || fail "Alertmanager did not start"

cat >"$WORK/notify.json" <<JSON
{
  "route": {"receiver": "am", "group_wait": "10s"},
  "receivers": [{"name": "am", "alertmanager_configs": [{"url": "$AM_URL"}]}]
}
JSON
start_drive "$WORK/notify.json"
L=alertname=NodeDown,severity=critical,ns=ns1,mci=m1,vm=vm3
L2=alertname=HighCPU,severity=warning,ns=ns1,mci=m1,vm=vm4
drive fire $L
drive fire $L2
query() { amtool alert query --alertmanager.url="$AM_URL" "$@"; }
# Forwarded as it changes: no group_wait for Alertmanager (it groups by itself).
wait_for 3 sh -c "amtool alert query --alertmanager.url=$AM_URL alertname=NodeDown | grep -q NodeDown" ||
    fail "amtool does not list the alert: $(query 2>&1)"
query
query -o json alertname=NodeDown >"$WORK/q.json"
python3 - "$WORK/q.json" <<'PY' || fail "alert in Alertmanager"
import json, sys
a = json.load(open(sys.argv[1]))
assert len(a) == 1, a
l = a[0]["labels"]
assert l == {"alertname": "NodeDown", "severity": "critical", "ns": "ns1", "mci": "m1", "vm": "vm3"}, l
assert a[0]["annotations"]["summary"] == "NodeDown on vm3", a[0]["annotations"]
assert a[0]["generatorURL"] == "http://damselfly.test/rules/x", a[0]
assert a[0]["status"]["state"] == "active", a[0]["status"]
print("Alertmanager has the alert with its labels, annotations and generatorURL")
PY
drive resolve $L
wait_for 5 sh -c "! amtool alert query --alertmanager.url=$AM_URL alertname=NodeDown | grep -q NodeDown" ||
    fail "the resolved alert is still active in Alertmanager"
query alertname=HighCPU | grep -q HighCPU || fail "the other alert disappeared"
sent=$(notify_metric 'damselfly_alarm_notifications_sent_total{receiver="am"}')
stop_drive
[ "${sent%.*}" -ge 2 ] || fail "sent counter $sent"
log "ok"
