#!/usr/bin/env bash
# damselfly-alarm --check loads everything a start loads: a missing rules.dir, a missing or
# broken notify.config are refused (status 2, naming the key and the file) instead of
# passing the check and failing the start; a good setup passes.
. "$(dirname "$0")/lib.sh"
ALARM="$DSF_BUILD/alarm/damselfly-alarm"
mkdir -p "$WORK/rules"
cp "$DSF_SRC"/deploy/alarm.d/*.json "$WORK/rules/"
printf '{"route": {"receiver": "nobody"}, "receivers": []}\n' >"$WORK/broken.json"
printf '{"route": {"receiver": "slack"},\n' >"$WORK/truncated.json"
base=(--set "state.dir=$WORK/state")

expect_refused() { # WHAT PATTERN ARGS...: --check exits 2 and says PATTERN
    local what=$1 pattern=$2 rc=0
    shift 2
    "$ALARM" "${base[@]}" "$@" --check >"$WORK/out" 2>&1 || rc=$?
    [ "$rc" = 2 ] || fail "$what: --check exited $rc: $(cat "$WORK/out")"
    grep -q -- "$pattern" "$WORK/out" || fail "$what: no '$pattern' in: $(cat "$WORK/out")"
    log "refused, $what: $(grep -m1 'configuration error' "$WORK/out")"
}

expect_refused "missing rules.dir" "rules.dir $WORK/nope" --set "rules.dir=$WORK/nope"
expect_refused "missing notify.config" "notify.config" --set "rules.dir=$WORK/rules" \
    --set "notify.config=$WORK/missing.json"
expect_refused "notify.config naming an unknown receiver" "notify.config" \
    --set "rules.dir=$WORK/rules" --set "notify.config=$WORK/broken.json"
expect_refused "truncated notify.config" "truncated.json" --set "rules.dir=$WORK/rules" \
    --set "notify.config=$WORK/truncated.json"

cat >"$WORK/good.json" <<'JSON'
{"route": {"receiver": "ops"},
 "receivers": [{"name": "ops", "webhook_configs": [{"url": "http://127.0.0.1:1/hook"}]}]}
JSON
"$ALARM" "${base[@]}" --set "rules.dir=$WORK/rules" --set "notify.config=$WORK/good.json" \
    --check >"$WORK/out" 2>&1 || fail "a good setup was refused: $(cat "$WORK/out")"
grep -q "3 rules OK, 0 refused" "$WORK/out" || fail "rules not reported: $(cat "$WORK/out")"
[ ! -e "$WORK/state" ] || fail "--check created state.dir"
log ok
