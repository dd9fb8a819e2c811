#!/usr/bin/env bash
# Roles: collectors (dsf/c/{id}/...) and alarm engines (dsf/e/{id}/...) are balanced apart,
# each role's live members sharing every bucket once. The role is the topic family: an engine
# named like a collector (c2) is another member. kill -9 one engine: its buckets go to the
# other engine only, and no collector's bucket moves.
. "$(dirname "$0")/balancer_lib.sh"

ALARM="$DSF_BUILD/alarm/damselfly-alarm"
declare -A ENGINE_PID=()
mkdir -p "$WORK/rules"

start_engine() { # ID
    local port
    port=$(free_port)
    bg "engine-$1" "$ALARM" --set id="$1" --set mqtt.url="$MQTT_URL" --set rules.dir="$WORK/rules" \
        --set state.dir="$WORK/state-$1" --set http.listen="127.0.0.1:$port" \
        --set mqtt.follow_assign=true --set heartbeat=1s
    ENGINE_PID[$1]=$BG_PID
    wait_for 10 curl -sf "http://127.0.0.1:$port/healthz" || fail "engine $1 did not start"
}
engines_owned() { $CHECK owned "$WORK/sub-eng.log" "$1" >"$WORK/eng-owners.json"; }

bal_start_stack
bg sub-eng stdbuf -oL mosquitto_sub -p "$MQTT_PORT" -t 'dsf/e/+/assign' -t 'dsf/e/+/hb' \
    -F '%U %t %p'
for c in c1 c2; do start_collector $c; done
for e in e1 c2; do start_engine $e; done
start_balancer b1
wait_for 15 owned "c1 c2" || fail "not every bucket owned once by collectors c1, c2"
wait_for 15 engines_owned "e1 c2" || fail "not every bucket owned once by engines e1, c2"
cp "$WORK/owners.json" "$WORK/coll-before.json"
grep -q ' dsf/c/e1/' "$WORK/sub-bus.log" && fail "engine e1 got a collector's assignment"
roles=$(bal_get b1 /api/v1/pool | python3 -c '
import json, sys
p = [p for p in json.load(sys.stdin)["pools"] if p["name"] == "default"][0]
print(" ".join(sorted(m["role"] + ":" + m["id"] for m in p["members"])))')
[ "$roles" = "alarm:c2 alarm:e1 collector:c1 collector:c2" ] || fail "pool members: $roles"
log "collectors and engines each own the 64 buckets once; members $roles"

kill -9 "${ENGINE_PID[e1]}"
wait "${ENGINE_PID[e1]}" 2>/dev/null || true
wait_for 10 engines_owned "c2" || fail "e1's buckets did not go to engine c2"
grep "dsf/e/e1/assign" "$WORK/sub-eng.log" | tail -n 1 | grep -q '"buckets":\[\]' ||
    fail "e1's retained assignment still names buckets"
owners_now "c1 c2" >"$WORK/coll-after.json" || fail "collectors lost ownership after e1 died"
[ "$(moved "$WORK/coll-before.json" "$WORK/coll-after.json")" = "0 " ] ||
    fail "collector buckets moved when an engine died: $(moved "$WORK/coll-before.json" "$WORK/coll-after.json")"
log "kill -9 e1: engine c2 owns every bucket, no collector bucket moved"
log "ok"
