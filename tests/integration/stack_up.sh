#!/usr/bin/env bash
# The README's main command: `scripts/damselfly up` starts a broker and an agent on the
# embedded defaults, `status` reports them healthy, the agent's messages flow, `down` stops
# everything it started.
. "$(dirname "$0")/lib.sh"

export DAMSELFLY_STATE="$WORK/state" DAMSELFLY_BUILD="$DSF_BUILD"
export DAMSELFLY_MQTT_PORT=$(free_port) DAMSELFLY_HTTP="127.0.0.1:$(free_port)"
LAUNCHER="$DSF_SRC/scripts/damselfly"
"$LAUNCHER" up >"$WORK/up.log" 2>&1 || fail "damselfly up: $(cat "$WORK/up.log")"
cat "$WORK/up.log"
pids=$(cat "$DAMSELFLY_STATE"/*.pid)
DSF_PIDS+=($pids) # stopped by the trap if the test fails half way
"$LAUNCHER" status >"$WORK/status.log" 2>&1 || fail "damselfly status"
grep -q '^agent: running' "$WORK/status.log" || fail "status: agent not running"
grep -q '^mosquitto: running' "$WORK/status.log" || fail "status: broker not running"
grep -q '"status":"ok"' "$WORK/status.log" || fail "status: agent not healthy"
timeout 10 mosquitto_sub -p "$DAMSELFLY_MQTT_PORT" -V 5 -t 'dsf/m/#' -C 1 >"$WORK/one.msg" ||
    fail "no message from the agent started by damselfly up"
grep -q '^cpu,cpu=cpu-total,ns=default,mci=local' "$WORK/one.msg" || fail "unexpected message"
curl -sf "http://$DAMSELFLY_HTTP/api/v1/snapshot" >/dev/null || fail "pull endpoint"
"$LAUNCHER" down >"$WORK/down.log" 2>&1 || fail "damselfly down"
sleep 1
for pid in $pids; do
    kill -0 "$pid" 2>/dev/null && fail "process $pid still runs after down"
done
log "ok"
