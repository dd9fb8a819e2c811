#!/usr/bin/env bash
# The alarm engine's API needs a token for what changes things: without it, a DELETE of a
# shipped rule and a POST of a silence until 2099 answer 401 and change nothing, while GETs
# stay open; the token is made at the first start in state.dir/http.token (mode 0600), kept
# across restarts, and with it the writes work. The caps answer 4xx naming the key and are
# counted: notify.max_silences, notify.max_silence_duration, rules.max, rules.max_bytes.
# http.auth=none opens the writes with a warning (and contradicts http.token); the API
# serves over TLS with http.tls_cert and http.tls_key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"

start_mosquitto
cp "$DSF_SRC"/deploy/alarm.d/*.json "$WORK/rules/"
cat >"$WORK/notify.json" <<'JSON'
{"route": {"receiver": "hook"},
 "receivers": [{"name": "hook", "webhook_configs": [{"url": "http://127.0.0.1:1/hook"}]}]}
JSON
ARGS=(--set notify.config="$WORK/notify.json" --set notify.max_silences=3 --set rules.max=4
    --set rules.max_bytes=1KiB)
start_alarm "${ARGS[@]}"
TOKEN_FILE="$WORK/state/http.token"

# code METHOD PATH [curl args...]: the status of one request, its body in $WORK/body.json.
code() {
    local method=$1 path=$2
    shift 2
    curl -s -o "$WORK/body.json" -w '%{http_code}' -X "$method" "$@" "$API$path"
}
silence() { # END: a silence of every alert until END
    printf '{"matchers":[{"name":"alertname","value":".+","isRegex":true}],"endsAt":"%s",
        "createdBy":"test","comment":"all"}' "$1"
}
in_1h=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)

log "the token file"
[ -s "$TOKEN_FILE" ] || fail "no $TOKEN_FILE"
[ "$(stat -c %a "$TOKEN_FILE")" = 600 ] || fail "$TOKEN_FILE has mode $(stat -c %a "$TOKEN_FILE")"
grep -q "token in $TOKEN_FILE (created now)" "$WORK"/alarm-*.log || fail "the log does not say where the token is"
TOKEN=$(cat "$TOKEN_FILE")
[ ${#TOKEN} -ge 32 ] || fail "a short token: ${#TOKEN} characters"

log "without the token, writes are refused and change nothing"
[ "$(code DELETE /api/v1/rules/cpu_hot)" = 401 ] || fail "an unauthenticated DELETE answered $(cat "$WORK/body.json")"
grep -q authentication "$WORK/body.json" || fail "the 401 does not say why: $(cat "$WORK/body.json")"
[ -e "$WORK/rules/cpu_hot.json" ] || fail "an unauthenticated DELETE removed the rule file"
[ "$(code GET /api/v1/rules/cpu_hot)" = 200 ] || fail "the rule is gone after a refused DELETE"
[ "$(code POST /api/v1/silences -d "$(silence 2099-01-01T00:00:00Z)")" = 401 ] ||
    fail "an unauthenticated silence answered $(cat "$WORK/body.json")"
[ "$(code PUT /api/v1/rules/sneaky -d '{"select":{"measurement":"cpu","field":"usage_user"},"crit":1}')" = 401 ] ||
    fail "an unauthenticated PUT was not refused"
[ ! -e "$WORK/rules/sneaky.json" ] || fail "an unauthenticated PUT wrote a rule"
[ "$(code POST /api/v1/reload)" = 401 ] || fail "an unauthenticated reload was not refused"
[ "$(code DELETE /api/v1/rules/cpu_hot -H 'Authorization: Bearer wrong')" = 401 ] ||
    fail "a wrong token was taken"
[ "$(code DELETE /api/v1/rules/cpu_hot -H "Authorization: Basic $TOKEN")" = 401 ] ||
    fail "the token was taken as basic auth"
[ "$(code GET /api/v1/silences)" = 200 ] && [ "$(cat "$WORK/body.json")" = "[]" ] ||
    fail "a refused POST left a silence: $(cat "$WORK/body.json")"
for path in /api/v1/rules /api/v1/alarms /api/v1/history /metrics /healthz; do
    [ "$(code GET $path)" = 200 ] || fail "GET $path needs a token"
done
[ "$(code POST /metrics -H "$(auth)")" = 405 ] || fail "POST /metrics was not refused as read-only"
refused=$(metric "$API/metrics" damselfly_http_requests_refused_total 'reason="unauthorized"')
[ "$refused" = 6 ] || fail "unauthorized requests counted $refused, expected 6"

log "with the token, writes work"
[ "$(code POST /api/v1/silences -H "$(auth)" -d "$(silence "$in_1h")")" = 200 ] ||
    fail "a silence with the token answered $(cat "$WORK/body.json")"
first=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["silenceID"])' "$WORK/body.json")

log "silences: notify.max_silence_duration (30d by default) and notify.max_silences"
[ "$(code POST /api/v1/silences -H "$(auth)" -d "$(silence 2099-01-01T00:00:00Z)")" = 400 ] ||
    fail "a silence until 2099 answered $(cat "$WORK/body.json")"
grep -q notify.max_silence_duration "$WORK/body.json" || fail "no limit named: $(cat "$WORK/body.json")"
for i in 2 3; do
    [ "$(code POST /api/v1/silences -H "$(auth)" -d "$(silence "$in_1h")")" = 200 ] ||
        fail "silence $i answered $(cat "$WORK/body.json")"
done
[ "$(code POST /api/v1/silences -H "$(auth)" -d "$(silence "$in_1h")")" = 409 ] ||
    fail "a 4th silence past notify.max_silences=3 answered $(cat "$WORK/body.json")"
grep -q "notify.max_silences (3)" "$WORK/body.json" || fail "no limit named: $(cat "$WORK/body.json")"
[ "$(code DELETE "/api/v1/silences/$first" -H "$(auth)")" = 200 ] || fail "expiring a silence failed"
[ "$(code POST /api/v1/silences -H "$(auth)" -d "$(silence "$in_1h")")" = 200 ] ||
    fail "an expired silence does not make room: $(cat "$WORK/body.json")"
[ "$(metric "$API/metrics" damselfly_alarm_silences_refused_total 'reason="max_silences"')" = 1 ] ||
    fail "the refusal past notify.max_silences is not counted"
[ "$(metric "$API/metrics" damselfly_alarm_silences_refused_total 'reason="max_silence_duration"')" = 1 ] ||
    fail "the refusal past notify.max_silence_duration is not counted"

log "rules: rules.max and rules.max_bytes"
good='{"select":{"measurement":"cpu","field":"usage_user"},"crit":95}'
[ "$(code PUT /api/v1/rules/fourth -H "$(auth)" -d "$good")" = 201 ] ||
    fail "a 4th rule answered $(cat "$WORK/body.json")"
[ "$(code PUT /api/v1/rules/fifth -H "$(auth)" -d "$good")" = 409 ] ||
    fail "a 5th rule past rules.max=4 answered $(cat "$WORK/body.json")"
grep -q "rules.max (4)" "$WORK/body.json" || fail "no limit named: $(cat "$WORK/body.json")"
[ ! -e "$WORK/rules/fifth.json" ] || fail "the refused rule was written"
[ "$(code PUT /api/v1/rules/fourth -H "$(auth)" -d "$good")" = 200 ] ||
    fail "replacing a rule at the cap answered $(cat "$WORK/body.json")"
big=$(python3 -c 'import json; print(json.dumps({"select":{"measurement":"cpu","field":"usage_user"},"crit":95,"description":"x"*2000}))')
[ "$(code PUT /api/v1/rules/fourth -H "$(auth)" -d "$big")" = 413 ] ||
    fail "a 2 KB rule past rules.max_bytes=1KiB answered $(cat "$WORK/body.json")"
grep -q "rules.max_bytes" "$WORK/body.json" || fail "no limit named: $(cat "$WORK/body.json")"
[ "$(metric "$API/metrics" damselfly_alarm_api_refused_total 'reason="rules_max"')" = 1 ] ||
    fail "the refusal past rules.max is not counted"
[ "$(metric "$API/metrics" damselfly_alarm_api_refused_total 'reason="rules_max_bytes"')" = 1 ] ||
    fail "the refusal past rules.max_bytes is not counted"
[ "$(code DELETE /api/v1/rules/cpu_hot -H "$(auth)")" = 200 ] || fail "DELETE with the token failed"
[ ! -e "$WORK/rules/cpu_hot.json" ] || fail "DELETE with the token left the file"
[ "$(code POST /api/v1/reload -H "$(auth)")" = 200 ] || fail "reload with the token failed"
stop_alarm_clean

log "the token is kept across a restart"
start_alarm "${ARGS[@]}"
[ "$(cat "$TOKEN_FILE")" = "$TOKEN" ] || fail "a restart changed the token"
grep -q "kept from an earlier start" "$WORK"/alarm-*.log || fail "the restart does not say the token was kept"
[ "$(code DELETE /api/v1/rules/fourth -H "Authorization: Bearer $TOKEN")" = 200 ] ||
    fail "the kept token is refused"
stop_alarm_clean

log "http.auth=none: writes open, with a warning"
if "$ALARM" --set rules.dir="$WORK/rules" --set state.dir="$WORK/state" --set http.auth=none \
    --set http.token=x --check >"$WORK/contradiction.out" 2>&1; then
    fail "http.auth=none with http.token passed --check"
fi
grep -q "http.auth" "$WORK/contradiction.out" || fail "no key named: $(cat "$WORK/contradiction.out")"
start_alarm "${ARGS[@]}" --set http.auth=none
grep -q 'warn .*http.auth=none' "$WORK"/alarm-*.log || fail "http.auth=none is not warned about"
[ "$(code DELETE /api/v1/rules/disk_full)" = 200 ] || fail "http.auth=none still refused a DELETE"
stop_alarm_clean

log "TLS on the API"
loopback_cert
export CURL_CA_BUNDLE="$WORK/cert.pem"
TLS_PORT=$(free_port)
bg alarm-tls "$ALARM" --set id=a1 --set mqtt.url="$MQTT_URL" --set rules.dir="$WORK/rules" \
    --set state.dir="$WORK/state" --set http.listen="127.0.0.1:$TLS_PORT" \
    --set http.tls_cert="$WORK/cert.pem" --set http.tls_key="$WORK/key.pem"
ALARM_PID=$BG_PID
API="https://127.0.0.1:$TLS_PORT"
wait_for 10 alarm_connected || fail "no verified /healthz over TLS"
[ "$(code POST /api/v1/reload)" = 401 ] || fail "an unauthenticated reload over TLS was not refused"
[ "$(code POST /api/v1/reload -H "$(auth)")" = 200 ] || fail "a reload with the token over TLS failed"
curl -sf "http://127.0.0.1:$TLS_PORT/healthz" >/dev/null 2>&1 && fail "plain HTTP answered on the TLS port"
stop_alarm_clean
log ok
