#!/usr/bin/env bash
# The alarm engines' API through the controller (docs/control.md "Alarms and silences"): two
# real alarm engines on one broker, each with its own token (a1 guards its reads too, a2 only
# its writes) and its own rule, each notifying a webhook sink. Through the controller:
# - GET /api/v1/alarms lists both engines' firing alarms, values and engines checked, and
#   passes ?state= on; /api/v1/history merges both histories;
# - a silence POSTed once is in both engines under the controller's id, suppresses there (the
#   sinks get nothing for the silenced VM, the engines count it), is listed once with both
#   engines, and DELETE expires it in both;
# - one engine stopped (SIGSTOP): the other's alarms with "partial": true and the stopped one
#   named in "errors"; a silence created then says which engine confirmed it (the stopped
#   one takes it when it wakes up, and GET says so); with a2 down (refused) a silence is in
#   a1 only until POSTed again under its id (then in both, once), and one expired while a2
#   was down is shown in force while a2 holds it; both stopped: 504
#   (and a client that left before it costs nothing); one gone, one stopped: 502; a stop
#   while a request waits exits 0;
# - no token or a wrong token: 401 on every proxied path; bad bodies and ids: 400, and the
#   controller keeps running (and exits 0 under the sanitizers);
# - the engines' tokens: the start-up read of a1's alarms sends its token; token files that do
#   not fit alarm.engines are refused by --check, a missing one at start.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"
. "$(dirname "$0")/alarm_notify_lib.sh"
CONTROL="$DSF_BUILD/control/damselfly-control"
[ -x "$CONTROL" ] || fail "$CONTROL is missing"

start_mosquitto
start_sink hook1
start_sink hook2
# An operator-written token for each engine, in the files the controller reads.
printf 'engine-one-token-0123456789abcdef\n' >"$WORK/a1.token"
printf 'engine-two-token-fedcba9876543210\n' >"$WORK/a2.token"
chmod 600 "$WORK/a1.token" "$WORK/a2.token"

# engine N RULE_JSON TOKEN_ARGS...: starts damselfly-alarm aN with its own rules and state
# (on port ENGINE_PORT when set: a restart); sets AN_URL and AN_PID.
engine() {
    local n=$1 rule=$2 port
    shift 2
    port=${ENGINE_PORT:-$(free_port)}
    mkdir -p "$WORK/rules$n" "$WORK/state$n"
    printf '%s\n' "$rule" >"$WORK/rules$n/rule.json"
    cat >"$WORK/notify$n.json" <<JSON
{"route": {"receiver": "hook", "group_by": ["alertname", "vm"], "group_wait": "0s",
           "group_interval": "1s", "repeat_interval": "1h"},
 "receivers": [{"name": "hook", "webhook_configs":
   [{"url": "http://127.0.0.1:$(cat "$WORK/hook$n.port")/hook"}]}]}
JSON
    bg "alarm$n" "$ALARM" --set id="a$n" --set mqtt.url="$MQTT_URL" \
        --set rules.dir="$WORK/rules$n" --set state.dir="$WORK/state$n" \
        --set notify.config="$WORK/notify$n.json" --set http.listen="127.0.0.1:$port" "$@"
    printf -v "A${n}_PID" '%s' "$BG_PID"
    printf -v "A${n}_URL" '%s' "http://127.0.0.1:$port"
    wait_for 10 sh -c "curl -sf http://127.0.0.1:$port/healthz | grep -q '\"connected\":true'" ||
        fail "alarm engine a$n did not start or connect"
}
engine 1 '{"name": "cpu_hot", "select": {"measurement": "cpu", "field": "usage_user"},
  "window": "0s", "crit": {"threshold": 80, "reset": 70}, "for": "0s"}' \
    --set http.token="$(cat "$WORK/a1.token")"
start_a2() {
    engine 2 '{"name": "mem_hot", "select": {"measurement": "mem", "field": "used_percent"},
      "window": "0s", "crit": {"threshold": 90, "reset": 80}, "for": "0s"}' \
        --set http.token_file="$WORK/a2.token"
}
start_a2
sleep 0.5 # the engines' subscriptions are confirmed just after the connection
mkdir -p "$WORK/policies" "$WORK/fed"

log "alarm.token_files must fit alarm.engines, and be there"
set +e
"$CONTROL" --set alarm.engines="$A1_URL,$A2_URL,http://127.0.0.1:1" \
    --set alarm.token_files="$WORK/a1.token,$WORK/a2.token" --check >"$WORK/check.log" 2>&1
rc=$?
set -e
[ $rc = 2 ] && grep -q "key 'alarm.token_files': 2 files for 3 alarm.engines" "$WORK/check.log" ||
    fail "3 engines with 2 token files: exit $rc, $(cat "$WORK/check.log")"
set +e
"$CONTROL" --set state.dir="$WORK/control-x" --set policies.dir="$WORK/policies" \
    --set federation.dir="$WORK/fed" --set http.listen=127.0.0.1:0 \
    --set alarm.engines="$A1_URL" --set alarm.token_files="$WORK/none.token" >"$WORK/start.log" 2>&1
rc=$?
set -e
[ $rc != 0 ] && grep -q "alarm.token_files: $WORK/none.token: cannot open" "$WORK/start.log" ||
    fail "a missing token file: exit $rc, $(tail -n 3 "$WORK/start.log")"

port=$(free_port)
CTL_URL="http://127.0.0.1:$port"
bg control "$CONTROL" --set id=k1 --set policies.dir="$WORK/policies" \
    --set state.dir="$WORK/control" --set federation.dir="$WORK/fed" --set mqtt.url="$MQTT_URL" \
    --set alarm.engines="$A1_URL,$A2_URL" \
    --set alarm.token_files="$WORK/a1.token,$WORK/a2.token" --set alarm.timeout=1500ms \
    --set http.listen="127.0.0.1:$port"
CTL_PID=$BG_PID
wait_for 15 curl -sf "$CTL_URL/healthz" || fail "damselfly-control did not start"
# The start-up read of the engines' alarms sends their tokens: a1 guards its reads.
wait_for 10 grep -q "alarm engine $A1_URL: active alarms read" "$WORK/control.log" ||
    fail "the controller did not read a1's alarms at start: $(grep 'alarm engine' "$WORK/control.log")"
CTL_TOKEN=$(cat "$WORK/control/http.token")
AUTH="Authorization: Bearer $CTL_TOKEN"

# call METHOD PATH [BODY]: through the controller with its token; sets STATUS, the body in
# $WORK/answer.json.
call() {
    STATUS=$(curl -s -o "$WORK/answer.json" -w '%{http_code}' -X "$1" -H "$AUTH" \
        ${3:+--data-binary "$3"} "$CTL_URL$2") || STATUS=000
}
# answer PYTHON: asserts PYTHON on the last answer (as a); prints it when false.
answer() {
    python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))
sys.exit(0 if eval("(" + sys.argv[2] + ")") else "not %s: %s" % (sys.argv[2], json.dumps(a)[:1500]))' \
        "$WORK/answer.json" "$1"
}
healthy() {
    kill -0 "$CTL_PID" 2>/dev/null || fail "damselfly-control died after $1"
    curl -sf "$CTL_URL/healthz" >/dev/null || fail "/healthz does not answer after $1"
}
# firing N: the controller lists N firing alarms.
firing() {
    call GET "/api/v1/alarms?state=firing"
    [ "$STATUS" = 200 ] && answer "len(a['alarms']) == $1" 2>/dev/null
}

log "alarms in both engines, listed through the controller"
send vm1 "cpu,cpu=cpu-total usage_user=95.5 $(now_ns)" "mem used_percent=97.25 $(now_ns)"
wait_for 10 firing 2 || fail "not two firing alarms through the controller: $STATUS $(cat "$WORK/answer.json")"
answer "not a['partial'] and a['errors'] == {}" || fail "a full answer says partial"
answer "sorted((x['engine'], x['rule'], x['group']['vm'], x['value']) for x in a['alarms'])
  == [('a1', 'cpu_hot', 'vm1', 95.5), ('a2', 'mem_hot', 'vm1', 97.25)]" ||
    fail "the merged alarms are not both engines' with their values"
call GET "/api/v1/alarms?state=pending"
[ "$STATUS" = 200 ] && answer "a['alarms'] == []" || fail "?state= was not passed on to the engines"
call GET "/api/v1/history"
[ "$STATUS" = 200 ] && answer "{(e['engine'], e['rule'], e['state']) for e in a['events']}
  >= {('a1', 'cpu_hot', 'firing'), ('a2', 'mem_hot', 'firing')}" ||
    fail "the merged history lacks an engine's events"
answer "[e['ts'] for e in a['events']] == sorted(e['ts'] for e in a['events'])" ||
    fail "the merged history is not oldest first"
wait_for 10 has_posts hook1 1 || fail "engine a1 notified nothing for vm1"
wait_for 10 has_posts hook2 1 || fail "engine a2 notified nothing for vm1"

log "a silence created through the controller is in both engines and suppresses"
end=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
call POST /api/v1/silences "{\"matchers\": [{\"name\": \"vm\", \"value\": \"vm2\"}],
  \"endsAt\": \"$end\", \"createdBy\": \"test\", \"comment\": \"maintenance\"}"
[ "$STATUS" = 200 ] || fail "POST /api/v1/silences: $STATUS $(cat "$WORK/answer.json")"
answer "not a['partial'] and sorted(a['engines']) == sorted(['$A1_URL', '$A2_URL'])" ||
    fail "the silence is not in both engines"
SID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["silenceID"])' "$WORK/answer.json")
for n in 1 2; do
    url=A${n}_URL
    curl -sf -H "Authorization: Bearer $(cat "$WORK/a$n.token")" "${!url}/api/v1/silences" \
        >"$WORK/engine$n.silences" || fail "engine a$n does not list its silences"
    python3 -c '
import json, sys
s = [x for x in json.load(open(sys.argv[1])) if x["id"] == sys.argv[2]]
sys.exit(0 if len(s) == 1 and s[0]["status"]["state"] == "active" and s[0]["comment"] == "maintenance"
         else "engine: %s" % s)' "$WORK/engine$n.silences" "$SID" ||
        fail "engine a$n does not hold silence $SID active"
done
call GET /api/v1/silences
answer "[(s['id'], sorted(s['engines'])) for s in a['silences']] == [('$SID', sorted(['$A1_URL', '$A2_URL']))]" ||
    fail "GET /api/v1/silences does not list the silence once with both engines"
before1=$(posts hook1)
before2=$(posts hook2)
send vm2 "cpu,cpu=cpu-total usage_user=99 $(now_ns)" "mem used_percent=99 $(now_ns)"
wait_for 10 firing 4 || fail "vm2's alarms do not fire in both engines"
silenced() {
    local n=$1 url=A${1}_URL
    [ "$(METRIC_HEADER="Authorization: Bearer $(cat "$WORK/a$n.token")" \
        metric "${!url}/metrics" damselfly_alarm_notifications_silenced_total 'receiver="hook"')" -ge 1 ]
}
wait_for 10 silenced 1 || fail "engine a1 did not silence vm2's alarm"
wait_for 10 silenced 2 || fail "engine a2 did not silence vm2's alarm"
sleep 1.5
[ "$(posts hook1)" = "$before1" ] && [ "$(posts hook2)" = "$before2" ] ||
    fail "a silenced alarm was notified"
! grep -q '"vm2"' "$WORK/hook1.jsonl" "$WORK/hook2.jsonl" || fail "a sink got vm2"

log "the silence deleted through the controller is expired in both engines"
call DELETE "/api/v1/silences/$SID"
[ "$STATUS" = 200 ] && answer "a['silenceID'] == '$SID' and len(a['engines']) == 2 and not a['partial']" ||
    fail "DELETE: $STATUS $(cat "$WORK/answer.json")"
call GET /api/v1/silences
answer "[s['status']['state'] for s in a['silences'] if s['id'] == '$SID'] == ['expired']" ||
    fail "the silence is not expired in the merged list"
for n in 1 2; do
    url=A${n}_URL
    curl -sf -H "Authorization: Bearer $(cat "$WORK/a$n.token")" "${!url}/api/v1/silences" |
        grep -q "\"id\":\"$SID\",\"status\":{\"state\":\"expired\"" ||
        fail "engine a$n still holds $SID in force"
done
call DELETE "/api/v1/silences/0000-nothing"
[ "$STATUS" = 404 ] || fail "DELETE of an unknown silence: $STATUS, expected 404"

log "no token, a wrong token: 401 on every proxied path"
for req in "GET /api/v1/alarms" "GET /api/v1/history" "GET /api/v1/silences" \
    "POST /api/v1/silences" "DELETE /api/v1/silences/$SID" "DELETE /api/v1/silences?id=$SID"; do
    set -- $req
    refuses_strangers "$1" "$CTL_URL$2" "x$CTL_TOKEN" "$(cat "$WORK/a1.token")"
done

log "bad bodies and ids: 400, the controller keeps running"
for body in 'not json' '[1]' '{"matchers": "vm=x"}' '{"matchers": [{"name": "vm", "value": "x"}]}' \
    '{"id": "../../etc", "matchers": [{"name": "vm", "value": "x"}], "endsAt": "'"$end"'"}' \
    '{"id": 7, "matchers": [{"name": "vm", "value": "x"}], "endsAt": "'"$end"'"}'; do
    call POST /api/v1/silences "$body"
    [ "$STATUS" = 400 ] && answer "a['error']" || fail "POST $body: $STATUS $(cat "$WORK/answer.json"), expected 400"
    healthy "POST $body"
done
call POST /api/v1/silences "$(head -c 70000 /dev/zero | tr '\0' x)"
[ "$STATUS" = 413 ] || fail "a 70 kB body: $STATUS, expected 413"
call GET "/api/v1/alarms?$(head -c 2000 /dev/zero | tr '\0' a)"
[ "$STATUS" = 400 ] || fail "a 2 kB query string: $STATUS, expected 400"
call PUT /api/v1/silences '{}'
[ "$STATUS" = 405 ] || fail "PUT /api/v1/silences: $STATUS, expected 405"
healthy "the bad requests"

log "one engine stopped: the other's answer, partial"
kill -STOP "$A2_PID"
t0=$(date +%s%N)
call GET /api/v1/alarms
t_ms=$((($(date +%s%N) - t0) / 1000000))
[ "$STATUS" = 200 ] || fail "GET /api/v1/alarms with a2 stopped: $STATUS $(cat "$WORK/answer.json")"
answer "a['partial'] and list(a['errors']) == ['$A2_URL'] and 'timed out' in a['errors']['$A2_URL']
  and {x['engine'] for x in a['alarms']} == {'a1'} and len(a['alarms']) == 2" ||
    fail "the answer without a2 is not a1's, partial, naming a2"
[ "$t_ms" -lt 4000 ] || fail "the partial answer took $t_ms ms (alarm.timeout 1.5 s)"
call POST /api/v1/silences "{\"matchers\": [{\"name\": \"vm\", \"value\": \"vm3\"}], \"endsAt\": \"$end\"}"
[ "$STATUS" = 200 ] && answer "a['partial'] and a['engines'] == ['$A1_URL'] and '$A2_URL' in a['errors']" ||
    fail "a silence created with a2 stopped does not say that only a1 confirmed it: $STATUS $(cat "$WORK/answer.json")"
SID3=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["silenceID"])' "$WORK/answer.json")
kill -STOP "$A1_PID"
call GET /api/v1/silences
[ "$STATUS" = 504 ] && answer "len(a['errors']) == 2 and a['error']" ||
    fail "both engines stopped: $STATUS $(cat "$WORK/answer.json"), expected 504"
# A client that leaves before the engines' answer: the late reply costs nothing (sanitizers).
curl -s -o /dev/null -m 0.3 -H "$AUTH" "$CTL_URL/api/v1/alarms" || true
sleep 2
kill -CONT "$A1_PID" "$A2_PID"
healthy "the engines stopped and a client gone"

log "a write that timed out may land later: GET says which engines hold the silence"
in_both() {
    call GET /api/v1/silences
    answer "[sorted(s['engines']) for s in a['silences'] if s['id'] == '$1'] == [sorted(['$A1_URL', '$A2_URL'])]"
}
wait_for 5 in_both "$SID3" || fail "the silence a2 took after waking up is not listed in a2"

log "a2 down: a silence made then is in a1 only, until POSTed again under its id"
stop_pid "$A2_PID"
body="{\"matchers\": [{\"name\": \"vm\", \"value\": \"vm4\"}], \"endsAt\": \"$end\"}"
call POST /api/v1/silences "$body"
[ "$STATUS" = 200 ] && answer "a['partial'] and a['engines'] == ['$A1_URL'] and 'connect' in a['errors']['$A2_URL']" ||
    fail "a silence created with a2 down: $STATUS $(cat "$WORK/answer.json")"
SID4=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["silenceID"])' "$WORK/answer.json")
ENGINE_PORT=${A2_URL##*:} start_a2
call GET /api/v1/silences
answer "not a['partial'] and [s['engines'] for s in a['silences'] if s['id'] == '$SID4'] == [['$A1_URL']]" ||
    fail "the silence made without a2 is said to be in a2 too"
call POST /api/v1/silences "{\"id\": \"$SID4\", ${body#\{}"
[ "$STATUS" = 200 ] && answer "a['silenceID'] == '$SID4' and len(a['engines']) == 2 and not a['partial']" ||
    fail "POST again under its id: $STATUS $(cat "$WORK/answer.json")"
call GET /api/v1/silences
answer "[sorted(s['engines']) for s in a['silences'] if s['id'] == '$SID4'] == [sorted(['$A1_URL', '$A2_URL'])]" ||
    fail "the silence POSTed again is not once in both engines"
stop_pid "$A2_PID"
call DELETE "/api/v1/silences?id=$SID4"
[ "$STATUS" = 200 ] && answer "a['partial'] and a['engines'] == ['$A1_URL'] and '$A2_URL' in a['errors']" ||
    fail "DELETE with a2 down does not say a2 may still hold it: $STATUS $(cat "$WORK/answer.json")"
ENGINE_PORT=${A2_URL##*:} start_a2
call GET /api/v1/silences
answer "[(s['status']['state'], len(s['engines'])) for s in a['silences'] if s['id'] == '$SID4'] == [('active', 2)]" ||
    fail "a silence still in force in a2 is not shown in force"
kill -STOP "$A2_PID"
[ "$(METRIC_HEADER="$AUTH" metric "$CTL_URL/metrics" damselfly_control_alarm_proxy_requests_total 'result="partial"')" -ge 2 ] ||
    fail "the partial answers are not counted"
[ "$(METRIC_HEADER="$AUTH" metric "$CTL_URL/metrics" damselfly_control_alarm_proxy_engine_errors_total)" -ge 4 ] ||
    fail "the engines' failures are not counted"

log "a1 gone, a2 stopped: 502"
stop_pid "$A1_PID"
call GET /api/v1/alarms
[ "$STATUS" = 502 ] && answer "len(a['errors']) == 2 and 'timed out' in a['errors']['$A2_URL']" ||
    fail "no engine answering: $STATUS $(cat "$WORK/answer.json"), expected 502"
healthy "the engines gone"

log "stopped while a proxied request waits: exits 0"
curl -s -o /dev/null -m 10 -H "$AUTH" "$CTL_URL/api/v1/silences" &
sleep 0.3
kill -TERM "$CTL_PID"
rc=0
wait "$CTL_PID" 2>/dev/null || rc=$?
[ $rc = 0 ] || fail "damselfly-control exited with $rc on SIGTERM"
kill -CONT "$A2_PID"
stop_pid "$A2_PID"
log "ok"
