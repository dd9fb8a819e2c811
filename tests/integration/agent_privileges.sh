#!/usr/bin/env bash
# Started as root with privilege drop on: /proc/<pid>/status shows CapEff 0, no-new-privs
# and the configured uid; the agent keeps working (serves /metrics) after the switch.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || fail "this test must run as root (it checks the switch away from root)"
PORT=$(free_port)
USER_NAME=nobody
bg agent "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm=vm1 \
    --set push.mode=off --set http.listen="127.0.0.1:$PORT" --set privileges.user=$USER_NAME
PID=$BG_PID
wait_for 10 curl -sf "http://127.0.0.1:$PORT/healthz" || fail "agent did not start"
status=/proc/$PID/status
grep -E '^(Uid|Gid|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' "$status"
uid=$(id -u $USER_NAME)
awk -v u="$uid" '/^Uid:/ { exit !($2 == u && $3 == u && $4 == u && $5 == u) }' "$status" ||
    fail "not running as $USER_NAME ($uid)"
for cap in CapEff CapPrm CapInh CapAmb; do
    grep -q "^$cap:[[:space:]]*0000000000000000$" "$status" || fail "$cap is not 0"
done
grep -q '^NoNewPrivs:[[:space:]]*1$' "$status" || fail "no-new-privs not set"
grep -q "kept no capabilities\|capabilities: none\|kept: none" "$WORK/agent.log" ||
    grep -qi "capabilit" "$WORK/agent.log" || fail "the log does not say what was kept"
sleep 1.5
curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt" || fail "no /metrics after the drop"
grep -q '^node_load1 ' "$WORK/metrics.txt" || fail "inputs stopped working after the drop"
stop_pid "$PID"

log "procstat needs CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE: only those are kept"
PORT=$(free_port)
bg agent-procstat "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm=vm1 \
    --set push.mode=off --set http.listen="127.0.0.1:$PORT" --set privileges.user=$USER_NAME \
    --set inputs.procstat.enabled=true --set inputs.procstat.patterns=mosquitto,init
PID=$BG_PID
wait_for 10 curl -sf "http://127.0.0.1:$PORT/healthz" || fail "agent with procstat did not start"
eff=$(awk '/^CapEff:/ { print $2 }' /proc/$PID/status)
python3 - "$eff" <<'PY' || fail "unexpected capabilities kept: $eff"
import sys
eff = int(sys.argv[1], 16)
allowed = (1 << 2) | (1 << 19)  # CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE
assert eff != 0 and eff & ~allowed == 0, hex(eff)
PY
awk -v u="$uid" '/^Uid:/ { exit !($2 == u) }' /proc/$PID/status || fail "procstat agent not $USER_NAME"
log "ok"
