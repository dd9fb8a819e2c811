#!/usr/bin/env bash
# The controller's audit trail from the command line: each start is a record of the chain in
# state.dir/audit.jsonl (mode 0600); `damselfly-control audit verify` passes it, names the
# first changed, removed or reordered line of a tampered copy (exit 1), and the controller
# refuses to start on a tampered log rather than append to it.
. "$(dirname "$0")/lib.sh"

CONTROL="$DSF_BUILD/control/damselfly-control"
mkdir -p "$WORK/policies"
# run: one start and stop of the controller on $WORK/state. Its exit status is taken by a
# subshell that forks nothing else: the test's own shell forks a grep every poll, and bash
# may then lose the record of a background child (wait: "No record of process"), reporting
# a status the controller never had.
run() {
    rm -f "$WORK/pid" "$WORK/rc"
    (
        "$CONTROL" --set id=k1 --set "policies.dir=$WORK/policies" \
            --set "state.dir=$WORK/state" --set http.listen= >"$WORK/run.log" 2>&1 &
        echo $! >"$WORK/pid"
        rc=0
        wait $! || rc=$?
        echo "$rc" >"$WORK/rc"
    ) &
    DSF_PIDS+=($!)
    wait_for 10 test -s "$WORK/pid" || return 1
    local pid rc
    pid=$(cat "$WORK/pid")
    wait_for 10 grep -q '\[daemon\].* started' "$WORK/run.log" || { kill -9 "$pid"; return 1; }
    kill "$pid"
    wait_for 10 test -s "$WORK/rc" || { echo "no exit within 10 s of SIGTERM" >>"$WORK/run.log"; return 1; }
    rc=$(cat "$WORK/rc")
    [ "$rc" = 0 ] || echo "exit status $rc after SIGTERM" >>"$WORK/run.log"
    return "$rc"
}
LOG="$WORK/state/audit.jsonl"
for _ in 1 2 3; do run || fail "the controller did not start: $(cat "$WORK/run.log")"; done
[ "$(stat -c %a "$LOG")" = 600 ] || fail "audit log mode $(stat -c %a "$LOG"), not 600"
"$CONTROL" audit verify "$LOG" >"$WORK/verify.out" || fail "verify: $(cat "$WORK/verify.out")"
grep -q ': 3 records, the chain holds' "$WORK/verify.out" || fail "verify: $(cat "$WORK/verify.out")"

expect_fault() { # FILE LINE FAULT
    local rc=0
    "$CONTROL" audit verify "$1" >"$WORK/verify.out" 2>&1 || rc=$?
    [ "$rc" = 1 ] || fail "verify of a $3 log: exit $rc: $(cat "$WORK/verify.out")"
    grep -q "line $2: .*($3)" "$WORK/verify.out" || fail "verify did not name line $2 ($3): $(cat "$WORK/verify.out")"
}
sed '2s/"start"/"stop"/' "$LOG" >"$WORK/changed.jsonl"
expect_fault "$WORK/changed.jsonl" 2 changed
sed '2d' "$LOG" >"$WORK/removed.jsonl"
expect_fault "$WORK/removed.jsonl" 2 removed
{ sed -n 1p "$LOG"; sed -n 3p "$LOG"; sed -n 2p "$LOG"; } >"$WORK/reordered.jsonl"
expect_fault "$WORK/reordered.jsonl" 2 reordered

log "a torn last line (a crash while writing) is cut off at the next start, and counted"
printf '{"event":"half' >>"$LOG"
"$CONTROL" audit verify "$LOG" >"$WORK/verify.out" || fail "verify of a torn log: $(cat "$WORK/verify.out")"
grep -q 'torn' "$WORK/verify.out" || fail "verify does not mention the torn line: $(cat "$WORK/verify.out")"
PORT=$(free_port)
bg control "$CONTROL" --set id=k1 --set "policies.dir=$DSF_SRC/deploy/policies" \
    --set "state.dir=$WORK/state" --set "http.listen=127.0.0.1:$PORT"
wait_for 10 curl -sf "http://127.0.0.1:$PORT/healthz" || fail "the controller did not start"
# Every route of the controller but /healthz needs its token, /metrics too.
m() { METRIC_HEADER="Authorization: Bearer $(cat "$WORK/state/http.token")" metric "http://127.0.0.1:$PORT/metrics" "$1"; }
[ "$(m damselfly_control_audit_torn_truncated_total)" = 1 ] || fail "torn line not counted"
[ "$(m damselfly_control_audit_records)" = 4 ] || fail "records: $(m damselfly_control_audit_records), expected 4"
[ "$(m damselfly_control_policies)" = "$(ls "$DSF_SRC"/deploy/policies/*.json | wc -l)" ] ||
    fail "policies loaded: $(m damselfly_control_policies)"
stop_pid "$BG_PID"
"$CONTROL" audit verify "$LOG" >"$WORK/verify.out" || fail "verify after the cut: $(cat "$WORK/verify.out")"
grep -q ': 4 records, the chain holds$' "$WORK/verify.out" || fail "after the cut: $(cat "$WORK/verify.out")"

cp "$WORK/changed.jsonl" "$LOG"
rc=0
timeout 10 "$CONTROL" --set id=k1 --set "policies.dir=$WORK/policies" --set "state.dir=$WORK/state" \
    --set http.listen= >"$WORK/refused.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "the controller ran on a tampered audit log (exit $rc)"
grep -q 'does not verify, refused: line 2' "$WORK/refused.log" || fail "no reason given: $(cat "$WORK/refused.log")"
grep -q 'audit verify' "$WORK/refused.log" || fail "the error does not say how to check the log"
"$CONTROL" audit bogus >/dev/null 2>&1 && fail "a bad audit command passed"
log "ok"
