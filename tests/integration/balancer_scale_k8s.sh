#!/usr/bin/env bash
# The balancer daemon drives the kubernetes runner against the Kubernetes API double: a POST
# /api/v1/pool/default/scale {"replicas":3} makes it PATCH the collector Deployment's scale to
# 3 (kubectl then sees 3), once; a size above scale.max is clamped to it; the decision, its
# reason and the runner's replicas are in GET /api/v1/pool and /metrics. The Deployment's
# pods never beat here: they are counted once (from the runner's replicas), not scaled again.
. "$(dirname "$0")/balancer_lib.sh"
. "$(dirname "$0")/federation_k8s_setup.sh"

start_mosquitto
k8s_start
SCALE=/apis/apps/v1/namespaces/default/deployments/web/scale
replicas_by_kubectl() { kc get deployment web -n default -o jsonpath='{.spec.replicas}'; }
[ "$(replicas_by_kubectl)" = 2 ] || fail "the double's Deployment does not start at 2 replicas"

start_balancer b1 --set members.heartbeat=300ms --set runner.kind=kubernetes \
    --set runner.kubernetes.kubeconfig="$KUBECONFIG_FILE" \
    --set runner.kubernetes.deployment=web --set runner.kubernetes.namespace=default \
    --set runner.kubernetes.state_dir="$WORK/fed" --set runner.kubernetes.retries=0 \
    --set scale.min=2 --set scale.max=4 --set scale.interval=300ms --set scale.sustain=1s
wait_for 10 leading b1 || fail "the balancer did not lead"
runner_replicas() { [ "$(bal_metric b1 damselfly_balancer_runner_replicas 'pool="default"')" = "$1" ]; }
wait_for 10 runner_replicas 2 || fail "the balancer did not read the Deployment's 2 replicas"
sleep 2
[ "$(reqs | grep -c '^PATCH')" = 0 ] || fail "it scaled without being asked: $(reqs | grep PATCH)"

post_scale() { # JSON
    curl -sf -X POST -H "Authorization: Bearer $(cat "$WORK/bal-b1/http.token")" -d "$1" \
        "http://127.0.0.1:${BPORT[b1]}/api/v1/pool/default/scale"
}

log "POST replicas 3: the Deployment is patched to 3"
FROM=$(($(log_lines) + 1))
post_scale '{"replicas":3}' >"$WORK/post.json" || fail "POST .../scale refused"
wait_for 10 runner_replicas 3 || fail "the runner's replicas did not become 3"
sleep 2 # more ticks: none may patch again
reqs "$FROM" >"$WORK/reqs"
expect_in "$WORK/reqs" "PATCH $SCALE 200 bearer application/merge-patch+json {\"spec\":{\"replicas\":3}}"
[ "$(grep -c '^PATCH' "$WORK/reqs")" = 1 ] || fail "not one PATCH: $(grep PATCH "$WORK/reqs")"
[ "$(replicas_by_kubectl)" = 3 ] || fail "kubectl sees $(replicas_by_kubectl) replicas, not 3"
[ "$(bal_metric b1 damselfly_balancer_scale_decisions_total \
    'pool="default",direction="out",reason="api"')" = 1 ] ||
    fail "the scale out is not counted with reason api"
bal_get b1 /api/v1/pool >"$WORK/pool.json"
python3 - "$WORK/pool.json" <<'PY' || fail "GET /api/v1/pool: $(cat "$WORK/pool.json")"
import json, sys
p = [p for p in json.load(open(sys.argv[1]))["pools"] if p["name"] == "default"][0]
s = p["scale"]
assert p["wanted"] == 3 and s["runner"] == "kubernetes", p
assert s["replicas"] == 3 and s["wanted"] == 3 and s["reason"] == "api", s
PY

log "POST replicas 9 with scale.max=4: clamped, the Deployment goes to 4"
post_scale '{"replicas":9}' >"$WORK/post.json" || fail "POST .../scale refused"
grep -q '"wanted": *4' "$WORK/post.json" || fail "9 was not clamped to 4: $(cat "$WORK/post.json")"
wait_for 10 runner_replicas 4 || fail "the runner's replicas did not become 4"
[ "$(replicas_by_kubectl)" = 4 ] || fail "kubectl sees $(replicas_by_kubectl) replicas, not 4"

log "null clears the wanted size: the policy decides again, and its pods never beat: no change"
post_scale '{"replicas":null}' >"$WORK/post.json" || fail "POST .../scale null refused"
sleep 3
[ "$(replicas_by_kubectl)" = 4 ] || fail "the pending pods were scaled: $(replicas_by_kubectl)"
bal_get b1 /api/v1/pool >"$WORK/pool.json"
python3 - "$WORK/pool.json" <<'PY' || fail "after null: $(cat "$WORK/pool.json")"
import json, sys
p = [p for p in json.load(open(sys.argv[1]))["pools"] if p["name"] == "default"][0]
assert "wanted" not in p and p["scale"]["reason"] != "api", p
PY
log "ok"
