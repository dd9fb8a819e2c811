#!/usr/bin/env bash
# The tumblebug driver's failures, each a clear error naming the call, the status and the
# body: 404 and 500 from the control API (a control call is not repeated), 500s on a status
# read that retries absorb, a hanging server (a timeout per attempt; reads are retried,
# control calls not), a VM that never reaches its target, malformed answers, a wrong
# password and a server that is gone.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/federation_tumblebug_setup.sh"

tb_start
cat >"$WORK/mci.json" <<'EOF'
{"vm": [{"name": "g1", "subGroupSize": "2", "commonSpec": "aws+ap-northeast-2+t2.small",
         "commonImage": "ubuntu22.04"}]}
EOF
fed create-mci ns01 mci01 --spec "$WORK/mci.json" >"$WORK/out" 2>"$WORK/err" || fail "create-mci: $(cat "$WORK/err")"
VM_PATH=/tumblebug/ns/ns01/mci/mci01/vm
CONTROL=/tumblebug/ns/ns01/control/mci/mci01/vm

log "404 from the control API"
fault "{\"path\": \"$CONTROL/g1-1?action=suspend\", \"status\": 404, \"body\": {\"message\": \"The vm g1-1 does not exist.\"}}"
if fed vm suspend ns01 mci01 g1-1 >"$WORK/out" 2>"$WORK/err"; then fail "a 404 passed"; fi
expect_in "$WORK/err" "GET $TB_URL/ns/ns01/control/mci/mci01/vm/g1-1?action=suspend: status 404: {\"message\": \"The vm g1-1 does not exist.\"}"
[ "$(vm_state ns01 mci01 g1-1)" = Running ] || fail "g1-1 is $(vm_state ns01 mci01 g1-1) after a refused suspend"

log "500 from the control API is reported, not repeated"
since=$(($(log_lines) + 1))
fault "{\"path\": \"$CONTROL/g1-1?action=suspend\", \"status\": 500, \"body\": {\"message\": \"spider: context deadline exceeded\"}, \"times\": 5}"
if fed vm suspend ns01 mci01 g1-1 >"$WORK/out" 2>"$WORK/err"; then fail "a 500 passed"; fi
expect_in "$WORK/err" "GET $TB_URL/ns/ns01/control/mci/mci01/vm/g1-1?action=suspend: status 500: {\"message\": \"spider: context deadline exceeded\"}"
[ "$(reqs "$since" | grep -c "action=suspend")" = 1 ] || fail "the suspend was sent more than once"
clear_faults

log "500 twice on a status read, then success"
since=$(($(log_lines) + 1))
fault "{\"method\": \"GET\", \"path\": \"$VM_PATH/g1-2\", \"status\": 500, \"times\": 2}"
fed vm status ns01 mci01 g1-2 >"$WORK/out" 2>"$WORK/err" || fail "status through two 500s: $(cat "$WORK/err")"
reqs "$since" | awk -v p="$VM_PATH/g1-2" '$2 == p {print $3}' | tr '\n' ' ' >"$WORK/codes"
[ "$(cat "$WORK/codes")" = "500 500 200 " ] || fail "status answers: $(cat "$WORK/codes")"

log "a hanging server: reads time out per attempt and are retried, a control call is not"
fault "{\"method\": \"GET\", \"path\": \"/tumblebug/ns/ns01/mci/mci01\", \"hang\": 4, \"times\": 2}"
start=$SECONDS
if fed --set tumblebug.timeout=1s --set tumblebug.retries=1 scale-out ns01 mci01 g1 1 >"$WORK/out" 2>"$WORK/err"; then
    fail "a hanging server did not time out"
fi
[ $((SECONDS - start)) -lt 7 ] || fail "the timeout took $((SECONDS - start)) s"
expect_in "$WORK/err" "GET $TB_URL/ns/ns01/mci/mci01: timed out after 1000 ms (2 attempts)"
clear_faults
since=$(($(log_lines) + 1))
fault "{\"path\": \"$CONTROL/g1-2?action=suspend\", \"hang\": 4}"
if fed --set tumblebug.timeout=1s vm suspend ns01 mci01 g1-2 >"$WORK/out" 2>"$WORK/err"; then
    fail "a hanging control call did not time out"
fi
expect_in "$WORK/err" "GET $TB_URL/ns/ns01/control/mci/mci01/vm/g1-2?action=suspend: timed out after 1000 ms"
sleep 3 # the double answers the abandoned call late; the log then has it
[ "$(reqs "$since" | grep -c "action=suspend")" = 1 ] || fail "the timed-out suspend was sent again"
clear_faults

log "a VM that never reaches its target: the action times out"
fault "{\"method\": \"GET\", \"path\": \"$VM_PATH/g1-2\", \"status\": 200, \"times\": 1000, \"body\": {\"id\": \"g1-2\", \"subGroupId\": \"g1\", \"status\": \"Suspending\", \"targetStatus\": \"Suspended\", \"targetAction\": \"Suspend\"}}"
if fed --set tumblebug.action_timeout=1s vm suspend ns01 mci01 g1-2 >"$WORK/out" 2>"$WORK/err"; then
    fail "a stuck VM was reported suspended"
fi
expect_in "$WORK/err" "vm ns01/mci01/g1-2 is still Suspending (waiting for Suspended) after 1000 ms"
clear_faults

log "malformed answers are errors, not crashes"
fault "{\"method\": \"GET\", \"path\": \"/tumblebug/ns/ns01/mci/mci01\", \"status\": 200, \"body\": \"<html>gateway</html>\"}"
if fed scale-out ns01 mci01 g1 1 >"$WORK/out" 2>"$WORK/err"; then fail "HTML was taken for an MCI"; fi
expect_in "$WORK/err" "parse Tumblebug MCI"
expect_in "$WORK/err" "not JSON"
fault "{\"method\": \"GET\", \"path\": \"/tumblebug/ns/ns01/mci/mci01\", \"status\": 200, \"body\": {\"id\": \"mci01\", \"vm\": \"none\"}}"
if fed scale-out ns01 mci01 g1 1 >"$WORK/out" 2>"$WORK/err"; then fail "a malformed MCI was accepted"; fi
expect_in "$WORK/err" "vm: expected an array"
fault "{\"method\": \"GET\", \"path\": \"$VM_PATH/g1-1\", \"status\": 200, \"times\": 1000, \"body\": {\"id\": \"g1-1\", \"status\": 42}}"
if fed vm reboot ns01 mci01 g1-1 >"$WORK/out" 2>"$WORK/err"; then fail "a numeric status was accepted"; fi
expect_in "$WORK/err" "parse Tumblebug VM"
expect_in "$WORK/err" "status: expected a string"
clear_faults

log "a wrong password is refused with 401"
if fed --set tumblebug.password=wrong scale-out ns01 mci01 g1 1 >"$WORK/out" 2>"$WORK/err"; then fail "a wrong password passed"; fi
expect_in "$WORK/err" "GET $TB_URL/ns/ns01/mci/mci01: status 401: {\"message\": \"Unauthorized\"}"

log "a server that is gone"
stop_pid "$TB_PID"
start=$SECONDS
if fed --set tumblebug.retries=2 scale-out ns01 mci01 g1 1 >"$WORK/out" 2>"$WORK/err"; then fail "no server, yet success"; fi
expect_in "$WORK/err" "GET $TB_URL/ns/ns01/mci/mci01:"
expect_in "$WORK/err" "(3 attempts)"
grep -qi "connect" "$WORK/err" || fail "the error does not say it could not connect: $(cat "$WORK/err")"
[ $((SECONDS - start)) -lt 10 ] || fail "giving up took $((SECONDS - start)) s"
log "ok"
