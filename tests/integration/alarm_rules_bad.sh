#!/usr/bin/env bash
# Bad rules (an unknown key, a bad regular expression, a negative window, 200 group_by tags,
# not JSON) are refused with a message naming the file and the key, and counted; the good
# rules, also those in the same file as a bad one, load and evaluate. The API validates the
# same way: PUT refuses a bad rule naming the key, stores a good one as a file, DELETE
# removes it, and SIGHUP re-reads the directory.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_lib.sh"

start_mosquitto
rule good '{"name":"good","select":{"measurement":"cpu","field":"usage_user"},"crit":90}'
rule unknown '{"name":"unknown","select":{"measurement":"cpu","field":"usage_user"},"crit":90,
  "for_duration":"5s"}'
rule regex '{"name":"regex","select":{"measurement":"disk","field":"used_percent",
  "tags":[{"tag":"path","op":"=~","value":"/data[0-9"}]},"crit":90}'
rule mixed '[{"name":"negative","select":{"measurement":"mem","field":"used_percent"},
  "window":"-30s","reduce":"avg","crit":90},
  {"name":"also_good","select":{"measurement":"mem","field":"used_percent"},"crit":95}]'
printf '{"name": "broken",' >"$WORK/rules/broken.json"
rule wide "$(python3 -c 'import json; print(json.dumps({"name": "wide",
  "select": {"measurement": "cpu", "field": "usage_user"}, "crit": 90,
  "group_by": ["t%d" % i for i in range(200)]}))')"
# The schema agrees with the engine on these files.
python3 - "$DSF_SRC/schemas/alarm-rule.schema.json" "$WORK/rules" <<'PY' || fail "schemas/alarm-rule.schema.json disagrees"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
def ok(f):
    try:
        jsonschema.validate(json.load(open(sys.argv[2] + "/" + f)), schema)
        return True
    except jsonschema.ValidationError:
        return False
assert ok("good.json") and not ok("unknown.json") and not ok("mixed.json"), "schema verdicts"
assert not ok("wide.json"), "the schema takes 200 group_by tags"
PY
rc=0
"$ALARM" --check --set rules.dir="$WORK/rules" >"$WORK/check.out" 2>&1 || rc=$?
[ $rc = 2 ] || fail "--check with bad rules exited $rc, not 2"
grep -q "rules/unknown.json: rule 'unknown': key 'for_duration': unknown key" "$WORK/check.out" ||
    fail "--check does not name the bad key: $(cat "$WORK/check.out")"
capture_events
start_alarm
log_file=$(ls "$WORK"/alarm-*.log | head -n 1)
expect_log() {
    grep -F -- "$1" "$log_file" >/dev/null || fail "the log does not say: $1"
}
expect_log "$WORK/rules/unknown.json: rule 'unknown': key 'for_duration': unknown key"
expect_log "$WORK/rules/regex.json: rule 'regex': key 'select.tags[0].value': bad regular expression"
expect_log "$WORK/rules/mixed.json: rule 'negative': key 'window': must not be negative"
expect_log "$WORK/rules/broken.json:1"
expect_log "$WORK/rules/wide.json: rule 'wide': key 'group_by': 200 tag keys, at most 32"
loaded=$(curl -sf "$API/api/v1/rules" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(sorted(r["name"] for r in d["rules"])), len(d["rejected"]))')
[ "$loaded" = "also_good good 5" ] || fail "loaded rules and rejections: '$loaded'"
[ "$(metric "$API/metrics" damselfly_alarm_rules_rejected_total)" = 5 ] ||
    fail "rejections are not counted"
# The good rules evaluate.
send vm1 "cpu,cpu=cpu-total usage_user=99 $(now_ns)" "mem used_percent=99 $(now_ns)"
wait_for 5 state_is good firing || fail "the good rule did not fire"
wait_for 5 state_is also_good firing || fail "the good rule beside a bad one did not fire"

# The API: a bad rule is refused naming the key, nothing is written.
code=$(curl -s -o "$WORK/put.json" -w '%{http_code}' -H "$(auth)" -XPUT "$API/api/v1/rules/api_rule" \
    -d '{"select":{"measurement":"cpu","field":"usage_user"},"crit":90,"window":-1,"reduce":"max"}')
[ "$code" = 400 ] || fail "PUT of a negative window answered $code"
grep -q "key 'window'" "$WORK/put.json" || fail "PUT's refusal does not name the key: $(cat "$WORK/put.json")"
[ ! -e "$WORK/rules/api_rule.json" ] || fail "a refused rule was written"
code=$(curl -s -o "$WORK/put.json" -w '%{http_code}' -H "$(auth)" -XPUT "$API/api/v1/rules/api_rule" \
    -d '{"select":{"measurement":"cpu","field":"usage_system","tags":[{"tag":"cpu","op":"!~","value":"cpu[0-9]+"}]},"crit":50}')
[ "$code" = 201 ] || fail "PUT of a good rule answered $code: $(cat "$WORK/put.json")"
[ -s "$WORK/rules/api_rule.json" ] || fail "PUT did not store the rule as a file"
curl -sf "$API/api/v1/rules/api_rule" | grep -q '"usage_system"' || fail "GET does not show the new rule"
send vm2 "cpu,cpu=cpu0 usage_system=70 $(now_ns)"
sleep 1
state_is api_rule none || fail "the !~ matcher let cpu0 through"
send vm2 "cpu,cpu=cpu-total usage_system=70 $(now_ns)"
wait_for 5 state_is api_rule firing || fail "the rule added through the API does not evaluate"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "$(auth)" -XDELETE "$API/api/v1/rules/api_rule")
[ "$code" = 200 ] || fail "DELETE answered $code"
[ ! -e "$WORK/rules/api_rule.json" ] || fail "DELETE left the file"
wait_for 5 state_is api_rule none || fail "the deleted rule's alarm is still active"
[ "$(events api_rule resolved)" = 1 ] || fail "deleting a firing rule did not resolve its alarm"
code=$(curl -s -o /dev/null -w '%{http_code}' "$API/api/v1/rules/api_rule")
[ "$code" = 404 ] || fail "GET of a deleted rule answered $code"

# SIGHUP: the fixed file loads.
rule unknown '{"name":"unknown","select":{"measurement":"cpu","field":"usage_user"},"crit":90,
  "for":"5s"}'
kill -HUP "$ALARM_PID"
wait_for 5 sh -c "curl -sf '$API/api/v1/rules/unknown' | grep -q '\"for\"'" ||
    fail "SIGHUP did not load the fixed rule"
code=$(curl -s -o "$WORK/reload.json" -w '%{http_code}' -H "$(auth)" -XPOST "$API/api/v1/reload")
[ "$code" = 200 ] || fail "POST /api/v1/reload answered $code"
grep -q '"rules":3' "$WORK/reload.json" || fail "reload: $(cat "$WORK/reload.json")"
stop_alarm_clean
log "ok"
