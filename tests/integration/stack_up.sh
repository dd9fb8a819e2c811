#!/usr/bin/env bash
# The README's main command: `scripts/damselfly up` starts the pipeline on the embedded
# defaults (broker, InfluxDB, collector, alarm engine, agent), `status` reports every part
# healthy, the agent's samples are stored in InfluxDB, the alarm engine runs the shipped
# rules, `down` stops everything it started.
. "$(dirname "$0")/lib.sh"

export DAMSELFLY_STATE="$WORK/state" DAMSELFLY_BUILD="$DSF_BUILD"
export DAMSELFLY_MQTT_PORT=$(free_port) DAMSELFLY_HTTP="127.0.0.1:$(free_port)"
export DAMSELFLY_INFLUX_PORT=$(free_port) DAMSELFLY_COLLECTOR_HTTP="127.0.0.1:$(free_port)"
export DAMSELFLY_ALARM_HTTP="127.0.0.1:$(free_port)"
LAUNCHER="$DSF_SRC/scripts/damselfly"
"$LAUNCHER" up >"$WORK/up.log" 2>&1 || fail "damselfly up: $(cat "$WORK/up.log")"
cat "$WORK/up.log"
pids=$(cat "$DAMSELFLY_STATE"/*.pid)
DSF_PIDS+=($pids) # stopped by the trap if the test fails half way
"$LAUNCHER" status >"$WORK/status.log" 2>&1 || fail "damselfly status"
for part in mosquitto influxd collector alarm agent; do
    grep -q "^$part: running" "$WORK/status.log" || fail "status: $part not running"
done
grep -q '"status":"ok"' "$WORK/status.log" || fail "status: agent not healthy"
grep -q '"connected":true' "$WORK/status.log" || fail "status: collector not connected"
timeout 10 mosquitto_sub -p "$DAMSELFLY_MQTT_PORT" -V 5 -t 'dsf/m/#' -C 1 >"$WORK/one.msg" ||
    fail "no message from the agent started by damselfly up"
grep -q '^cpu,cpu=cpu-total,ns=default,mci=local' "$WORK/one.msg" || fail "unexpected message"
curl -sf "http://$DAMSELFLY_HTTP/api/v1/snapshot" >/dev/null || fail "pull endpoint"
stored() {
    "$LAUNCHER" status | grep -Eq '^cpu points stored in InfluxDB \(database damselfly\): [1-9]'
}
wait_for 20 stored || fail "no cpu point reached InfluxDB: $("$LAUNCHER" status 2>&1)"
"$LAUNCHER" status | grep '^cpu points stored'
rules=$(curl -sf "http://$DAMSELFLY_ALARM_HTTP/api/v1/rules" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d.get("rules", d) if isinstance(d, dict) else d))') ||
    fail "the alarm engine's rules API does not answer"
[ "$rules" -eq "$(ls "$DSF_SRC"/deploy/alarm.d/*.json | wc -l)" ] ||
    fail "the alarm engine loaded $rules rules, not those of deploy/alarm.d"
"$LAUNCHER" down >"$WORK/down.log" 2>&1 || fail "damselfly down"
sleep 1
for pid in $pids; do
    kill -0 "$pid" 2>/dev/null && fail "process $pid still runs after down"
done
log "ok"
