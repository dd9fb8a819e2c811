#!/usr/bin/env bash
# damselfly-control against what a careless or hostile client sends it: every route but
# /healthz refused without the token or with a wrong one; malformed and mistyped bodies
# refused with a 400 naming the problem (the policy parser's "did you mean"); policies written,
# listed and removed through the API; Alertmanager bodies too large, garbage, of another
# version, or half bad, refused and counted; a malformed alarm event on the bus counted and
# no obstacle to the next good one. After all that the controller still answers and its audit
# verifies.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"

ctl_light_up 1
ctl_policy heal '{"name": "heal", "match": {"rule": "agent_down", "state": "firing"},
 "steps": [{"action": "reboot"}], "dry_run": true, "cooldown": "0s", "hold": "0s"}'
"$CONTROL" --set policies.dir="$CTL_POLICIES" --set webhook.max_bytes=8MiB --check \
    >"$WORK/max.out" 2>&1 && fail "webhook.max_bytes=8MiB, past the HTTP server's 4 MiB, was taken"
grep -q "webhook.max_bytes" "$WORK/max.out" || fail "the refusal does not name the key: $(cat "$WORK/max.out")"
ctl_start --set webhook.max_bytes=64KiB

# status_of CURL_ARGS...: the HTTP status of one request to the controller.
status_of() { curl -s -o "$WORK/resp.out" -w '%{http_code}' "$@" || echo 000; }
# expect STATUS REGEX WHAT: the last ctl_api answered STATUS with a body matching REGEX.
expect() {
    [ "$CTL_STATUS" = "$1" ] || fail "$3: status $CTL_STATUS, expected $1 ($CTL_BODY)"
    grep -qE -- "$2" <<<"$CTL_BODY" || fail "$3: the answer does not match /$2/: $CTL_BODY"
}

log "authentication"
for route in /api/v1/actions /api/v1/policies /api/v1/mci /metrics /api/v1/guards; do
    s=$(status_of "$CTL_URL$route")
    [ "$s" = 401 ] || fail "GET $route without a token: $s, expected 401"
    s=$(status_of -H "Authorization: Bearer x$CTL_TOKEN" "$CTL_URL$route")
    [ "$s" = 401 ] || fail "GET $route with a wrong token: $s, expected 401"
    s=$(status_of -H "Authorization: Bearer $CTL_TOKEN" "$CTL_URL$route")
    [ "$s" = 200 ] || fail "GET $route with the token: $s, expected 200"
done
s=$(status_of -X POST -d '{"action":"reboot","ns":"ns1","mci":"m1","vm":"g-1"}' \
    "$CTL_URL/api/v1/actions")
[ "$s" = 401 ] || fail "POST /api/v1/actions without a token: $s, expected 401"
s=$(status_of -X POST -d '{"version":"4","alerts":[]}' "$CTL_URL/api/v1/alertmanager")
[ "$s" = 401 ] || fail "POST /api/v1/alertmanager without a token: $s, expected 401"
s=$(status_of "$CTL_URL/healthz")
[ "$s" = 200 ] || fail "/healthz without a token: $s, expected 200 (it is open)"

log "manual actions"
ctl_api POST /api/v1/actions '{"action":"reboot","ns":"ns1",' >/dev/null
expect 400 'malformed JSON' "a truncated body"
ctl_api POST /api/v1/actions '["reboot"]' >/dev/null
expect 400 'object' "an array for a body"
ctl_api POST /api/v1/actions '{"action":"rebot","ns":"ns1","mci":"m1","vm":"g-1"}' >/dev/null
expect 400 "rebot" "an unknown action"
ctl_api POST /api/v1/actions \
    '{"action":"migrate","regoin":"r2","ns":"ns1","mci":"m1","vm":"g-1"}' >/dev/null
expect 400 "regoin.*did you mean 'region'" "a mistyped key"
ctl_api POST /api/v1/actions '{"ns":"ns1","mci":"m1","vm":"g-1"}' >/dev/null
expect 400 "'action'" "no action"
[ "$(ctl_calls)" = 0 ] || fail "a refused request led to a federation call"

log "policies"
ctl_api PUT /api/v1/policies/x '{"name": "x", "match": {"rule": "cpu_hot"},
 "steps": [{"action": "reboot"}], "cooldwon": "1m"}' >/dev/null
expect 400 "cooldwon.*did you mean 'cooldown'" "a policy with a mistyped key"
ctl_api PUT /api/v1/policies/x '{"name": "y", "match": {"rule": "cpu_hot"},
 "steps": [{"action": "reboot"}]}' >/dev/null
expect 400 "'name'" "a policy whose name is not the path's"
ctl_api PUT /api/v1/policies/x '{"name": "x", "match": {"rule": "cpu_hot"' >/dev/null
expect 400 "." "a policy that is no JSON"
[ ! -e "$CTL_POLICIES/x.json" ] || fail "a refused policy was written to policies.dir"
ctl_api PUT /api/v1/policies/x '{"name": "x", "match": {"rule": "cpu_hot"},
 "steps": [{"action": "reboot"}], "dry_run": true}' >/dev/null
expect 200 '"name":"x"' "a valid policy"
[ -f "$CTL_POLICIES/x.json" ] || fail "the policy x is not in policies.dir"
ctl_api GET /api/v1/policies >/dev/null
expect 200 '"name":"x"' "the list after PUT"
"$CONTROL" --set policies.dir="$CTL_POLICIES" --check >"$WORK/check.out" 2>&1 ||
    fail "policies.dir no longer passes --check: $(cat "$WORK/check.out")"
ctl_api DELETE /api/v1/policies/x >/dev/null
expect 200 'deleted' "DELETE"
[ ! -e "$CTL_POLICIES/x.json" ] || fail "DELETE left x.json in policies.dir"
ctl_api GET /api/v1/policies >/dev/null
grep -q '"name":"x"' <<<"$CTL_BODY" && fail "x is still listed after DELETE: $CTL_BODY"
ctl_api GET /api/v1/policies/x >/dev/null
expect 404 "x" "GET of a deleted policy"
ctl_api PUT /api/v1/policies/..%2Fescape '{"name": "../escape"}' >/dev/null
[ "${CTL_STATUS:0:1}" = 4 ] || fail "a policy name with a path: status $CTL_STATUS"
[ ! -e "$WORK/escape.json" ] || fail "a policy was written outside policies.dir"

log "Alertmanager webhooks"
rej0=$(ctl_metric damselfly_control_events_rejected_total 'input="alertmanager"')
big0=$(ctl_metric damselfly_control_webhook_too_large_total)
head -c $((10 << 20)) /dev/zero | tr '\0' 'a' >"$WORK/big.json"
s=$(status_of -X POST -H "Authorization: Bearer $CTL_TOKEN" -H 'Content-Type: application/json' \
    --data-binary @"$WORK/big.json" "$CTL_URL/api/v1/alertmanager")
[ "$s" = 413 ] || fail "a 10 MB webhook: status $s, expected 413"
# Beyond webhook.max_bytes but within what the HTTP server reads (4 MiB; the 10 MB body was
# refused by the server before the route, which libevent 2.1 does not let it count): refused
# by the route, counted.
head -c $((100 << 10)) /dev/zero | tr '\0' 'a' >"$WORK/mid.json"
s=$(status_of -X POST -H "Authorization: Bearer $CTL_TOKEN" -H 'Content-Type: application/json' \
    --data-binary @"$WORK/mid.json" "$CTL_URL/api/v1/alertmanager")
[ "$s" = 413 ] || fail "a 100 KiB webhook (max 64 KiB): status $s, expected 413"
big=$(ctl_metric damselfly_control_webhook_too_large_total)
[ "$big" = $((big0 + 1)) ] || fail "webhook_too_large_total went $big0 -> $big, expected +1"
ctl_api POST /api/v1/alertmanager 'garbage{' >/dev/null
expect 400 "." "a garbage webhook"
ctl_api POST /api/v1/alertmanager '{"version":"3","status":"firing","alerts":[]}' >/dev/null
expect 400 "version" "a version 3 webhook"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ctl_api POST /api/v1/alertmanager '{"version":"4","status":"firing","alerts":[
 {"status":"firing","labels":{"alertname":"am_rule","ns":"ns1","mci":"m1","vm":"g-1"},
  "startsAt":"'"$now"'"},
 {"status":"firing","labels":{"ns":"ns1"},"startsAt":"not a time"}]}' >/dev/null
expect 200 '"refused_alerts":1' "one good and one bad alert"
rej=$(ctl_metric damselfly_control_events_rejected_total 'input="alertmanager"')
[ "$rej" = $((rej0 + 3)) ] ||
    fail "events_rejected_total{input=\"alertmanager\"} went $rej0 -> $rej, expected +3"

log "the bus"
bus0=$(ctl_metric damselfly_control_events_rejected_total 'input="bus"')
client_options alarm.a1
for bad in '{"rule":' '{"rule":"agent_down","state":"firing"}' '[]' \
    "$(printf '{"rule":"%0300d","state":"firing"}' 0)"; do
    as_alarm_engine mosquitto_pub -p "$MQTT_PORT" -V 5 -q 1 -t "dsf/alarm/ns1/m1/agent_down" \
        -m "$bad" || fail "cannot publish on the bus"
done
fire g-1 1
wait_for 10 ctl_audit_has 'r["event"]=="decision" and r["alarm"]["rule"]=="agent_down"' ||
    fail "the good alarm event after the malformed ones was not decided"
bus=$(ctl_metric damselfly_control_events_rejected_total 'input="bus"')
[ "$bus" = $((bus0 + 4)) ] ||
    fail "events_rejected_total{input=\"bus\"} went $bus0 -> $bus, expected +4"

log "still standing"
s=$(status_of "$CTL_URL/healthz")
[ "$s" = 200 ] || fail "/healthz after all that: $s"
ctl_audit_has 'r["event"]=="operator" and r["op"]=="policy_put" and r["target"]=="x"' ||
    fail "the policy PUT was not audited"
ctl_audit_has 'r["event"]=="operator" and r["op"]=="policy_delete" and r["target"]=="x"' ||
    fail "the policy DELETE was not audited"
ctl_audit_verify
ctl_stop
log "ok"
