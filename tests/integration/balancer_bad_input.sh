#!/usr/bin/env bash
# Malformed heartbeats, assignments and leader records are ignored, each counted by reason
# and logged; a member announcing a pool no configuration names is reported (log line,
# GET /api/v1/pool) and given no bucket; a member of a pools.map pool that never confirms
# its assignment does not make the default pool exclude the tenant; the balancer keeps every
# bucket with the real collector and the API refuses a bad scale request with the reason.
. "$(dirname "$0")/balancer_lib.sh"

pub() { mosquitto_pub -p "$MQTT_PORT" -q 1 "$@"; }

bal_start_stack
start_collector c1
start_balancer b1 --set pools.map=acme=tenant-a
wait_for 15 owned c1 || fail "c1 does not own every bucket"
# By the balancer (x8, of pool tenant-a, is given the tenant's buckets: not counted).
published() { grep -cE '^[0-9.]+ dsf/c/(c1|x[0-79])/assign ' "$WORK/sub-bus.log"; }
n0=$(published)

pub -t dsf/c/x1/hb -m 'not json'
pub -t dsf/c/x2/hb -m '{"id":"someone-else","status":"online"}'
pub -t dsf/c/x3/hb -m '{"id":"x3","status":"sleeping"}'
pub -t dsf/c/x4/hb -m '{"id":"x4","status":"online","epoch":"soon","pool":7}'
pub -t dsf/c/x5/hb -m "{\"id\":\"x5\",\"status\":\"online\",\"pad\":\"$(head -c 5000 /dev/zero | tr '\0' a)\"}"
pub -r -t dsf/c/y1/assign -m '[1,2'
pub -r -t dsf/c/y2/assign -m '{"epoch":"x","buckets":[1]}'
pub -r -t dsf/c/y3/assign -m '{"epoch":5,"buckets":[1,64]}'
pub -t dsf/b/leader -m '{"id":7}'
pub -t dsf/c/x9/hb -m '{"id":"x9","role":"collector","pool":"mystery","status":"online","epoch":0}'
pub -t dsf/c/x8/hb -m '{"id":"x8","role":"collector","pool":"tenant-a","status":"online","epoch":0}'

rejected() { bal_metric b1 "$1" "reason=\"$2\""; }
too_large_counted() { [ "$(rejected damselfly_balancer_heartbeats_rejected_total too_large)" = 1 ]; }
wait_for 5 too_large_counted || fail "too_large not counted"
for r in json id fields too_large; do
    [ "$(rejected damselfly_balancer_heartbeats_rejected_total $r)" = "$([ $r = fields ] && echo 2 || echo 1)" ] ||
        fail "heartbeats_rejected_total{$r} is $(rejected damselfly_balancer_heartbeats_rejected_total $r)"
done
for r in json fields range; do
    [ "$(rejected damselfly_balancer_assignments_rejected_total $r)" = 1 ] ||
        fail "assignments_rejected_total{$r} is $(rejected damselfly_balancer_assignments_rejected_total $r)"
done
[ "$(bal_metric b1 damselfly_balancer_leader_rejected_total)" = 1 ] || fail "the malformed leader record was not counted"
grep -q "ignoring a heartbeat on dsf/c/x1/hb (json" "$WORK"/balancer-b1-*.log || fail "no log line for the malformed heartbeat"
grep -q "ignoring the assignment on dsf/c/y1/assign (json" "$WORK"/balancer-b1-*.log || fail "no log line for the malformed assignment"
log "malformed heartbeats, assignments and leader records counted by reason and logged"

grep -q "member x9 announces pool mystery" "$WORK"/balancer-b1-*.log || fail "no log line for the unknown pool"
pool=$(bal_get b1 /api/v1/pool)
python3 - "$pool" <<'PY' || fail "GET /api/v1/pool: $pool"
import json, sys
p = json.loads(sys.argv[1])
assert p["unknown_pools"] == ["mystery"], p["unknown_pools"]
pools = {x["name"]: x for x in p["pools"]}
assert pools["mystery"]["known"] is False and pools["mystery"]["members"][0]["id"] == "x9"
assert pools["tenant-a"]["known"] and pools["tenant-a"]["prefixes"] == ["acme"]
assert [m["id"] for m in pools["tenant-a"]["members"]] == ["x8"], pools["tenant-a"]
assert [m["id"] for m in pools["default"]["members"]] == ["c1"], pools["default"]
PY
[ "$(bal_metric b1 damselfly_balancer_unknown_pool_total)" = 1 ] || fail "unknown_pool_total is not 1"
for y in y1 y2 y3; do pub -r -t dsf/c/$y/assign -n; done # the checker reads retained copies
sleep 4 # x8 and x9 beat once: dead by now, nothing of theirs moved anything
owned c1 || fail "c1 lost buckets to bad input"
grep ' dsf/c/c1/assign ' "$WORK/sub-bus.log" | grep -q exclude &&
    fail "c1 was told to exclude a tenant whose pool never confirmed"
[ "$(published)" = "$n0" ] || fail "the balancer published assignments because of bad input"
curl -sf "http://127.0.0.1:${BPORT[b1]}/healthz" >/dev/null || fail "the balancer died"
log "unknown pool reported, given nothing; c1 keeps every bucket"

tok="Authorization: Bearer $(cat "$WORK/bal-b1/http.token")"
code() { curl -s -o "$WORK/reply.json" -w '%{http_code}' -H "$tok" -X POST "$@"; }
[ "$(code -d '{"replicas":"many"}' "http://127.0.0.1:${BPORT[b1]}/api/v1/pool/default/scale")" = 400 ] || fail "a bad replicas was not refused"
grep -q "replicas" "$WORK/reply.json" || fail "the refusal does not name the key: $(cat "$WORK/reply.json")"
[ "$(code -d '{"replicas":3}' "http://127.0.0.1:${BPORT[b1]}/api/v1/pool/nope/scale")" = 404 ] || fail "an unknown pool was not refused"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"replicas":3}' "http://127.0.0.1:${BPORT[b1]}/api/v1/pool/default/scale")" = 401 ] || fail "a scale without the token was not refused"
[ "$(code -d '{"replicas":3}' "http://127.0.0.1:${BPORT[b1]}/api/v1/pool/default/scale")" = 202 ] || fail "scale refused: $(cat "$WORK/reply.json")"
bal_get b1 /api/v1/pool | grep -q '"wanted":3' || fail "the wanted size is not shown"
log "scale requests: bad ones refused with the reason, a good one stored"
log "ok"
