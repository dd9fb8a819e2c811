#!/usr/bin/env bash
# Bad configuration exits 2 and names the file and the key; --check accepts a good one.
. "$(dirname "$0")/lib.sh"

expect_error() { # NAME KEY JSON: the agent must exit 2 naming the file and KEY
    local name=$1 key=$2 file="$WORK/$1.json"
    printf '%s\n' "$3" >"$file"
    set +e
    "$AGENT" --config "$file" --check >"$WORK/$name.out" 2>&1
    local rc=$?
    set -e
    [ $rc = 2 ] || fail "$name: exit status $rc, expected 2: $(cat "$WORK/$name.out")"
    grep -q "$file" "$WORK/$name.out" || fail "$name: the message does not name the file"
    grep -q "'$key'" "$WORK/$name.out" || fail "$name: the message does not name '$key'"
    echo "$name: $(cat "$WORK/$name.out")"
}
ID='"identity": {"ns": "n", "mci": "m", "vm": "v"}'
expect_error unknown_key interva "{$ID, \"interva\": \"2s\"}"
expect_error unknown_input_key inputs.cpu.percpux "{$ID, \"inputs\": {\"cpu\": {\"percpux\": true}}}"
expect_error wrong_type push.buckets "{$ID, \"push\": {\"buckets\": \"many\"}}"
expect_error wrong_bool inputs.mem.enabled "{$ID, \"inputs\": {\"mem\": {\"enabled\": \"sometimes\"}}}"
expect_error interval_too_short interval "{$ID, \"interval\": \"500ms\"}"
expect_error missing_identity identity.vm '{"identity": {"ns": "n", "mci": "m"}}'
expect_error bad_mode push.mode "{$ID, \"push\": {\"mode\": \"carrier-pigeon\"}}"
expect_error slash_in_identity identity.mci '{"identity": {"ns": "n", "mci": "a/b", "vm": "v"}}'

printf '{"identity": {"ns": "n", "mci": "m", "vm": "v"}, "interval": "5s"}\n' >"$WORK/good.json"
"$AGENT" --config "$WORK/good.json" --check || fail "a good config was refused"
set +e
"$AGENT" --config "$WORK/good.json" --set interval=0.2s --check >"$WORK/set.out" 2>&1
rc=$?
DAMSELFLY_INTERVAL=nope "$AGENT" --config "$WORK/good.json" --check >"$WORK/env.out" 2>&1
rc_env=$?
"$AGENT" --config "$WORK/missing.json" --check >"$WORK/missing.out" 2>&1
rc_missing=$?
"$AGENT" --bogus >"$WORK/bogus.out" 2>&1
rc_bogus=$?
set -e
[ $rc = 2 ] && grep -q "'interval'" "$WORK/set.out" || fail "--set interval=0.2s not refused"
[ $rc_env = 2 ] && grep -q "DAMSELFLY_INTERVAL" "$WORK/env.out" || fail "bad env not refused"
[ $rc_missing = 2 ] && grep -q "missing.json" "$WORK/missing.out" || fail "missing file"
[ $rc_bogus = 2 ] || fail "unknown option not refused"
"$AGENT" --help >"$WORK/help.out" || fail "--help"
for key in identity.ns interval buffer.max_bytes inputs.procstat.patterns DAMSELFLY_MQTT_URL; do
    grep -q "$key" "$WORK/help.out" || fail "--help does not list $key"
done
log "ok"
