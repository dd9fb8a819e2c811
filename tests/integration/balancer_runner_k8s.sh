#!/usr/bin/env bash
# The kubernetes runner (through dsf-runner-drive, as the balancer drives it) against the
# Kubernetes API double: replicas reads the Deployment's spec.replicas, a scale out to 3 is
# PATCH .../deployments/web/scale {"spec":{"replicas":3}} as the real API takes it (kubectl
# then sees 3), scale_out never scales in, stop takes one replica away, owns knows the
# Deployment's pods by name, and an API failure comes back as an error naming the call.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/federation_k8s_setup.sh"

DRIVE="$DSF_BUILD/tests/tools/dsf-runner-drive"
[ -x "$DRIVE" ] || fail "$DRIVE is missing"
k8s_start

# drive COMMAND...: one runner, the commands on its stdin; its answers in $WORK/drive.out.
drive() {
    printf '%s\n' "$@" | "$DRIVE" --set runner.kind=kubernetes \
        --set runner.kubernetes.kubeconfig="$KUBECONFIG_FILE" \
        --set runner.kubernetes.deployment=web --set runner.kubernetes.namespace=default \
        --set runner.kubernetes.state_dir="$WORK/fed" --set runner.kubernetes.retries=0 \
        >"$WORK/drive.out" 2>"$WORK/drive.log" || fail "dsf-runner-drive: $(cat "$WORK/drive.log")"
}
answered() { # LINE: drive's answers hold LINE
    grep -qxF -- "$1" "$WORK/drive.out" || fail "no '$1' among the answers: $(cat "$WORK/drive.out")"
}
replicas_by_kubectl() {
    kc get deployment web -n default -o jsonpath='{.spec.replicas}'
}
SCALE=/apis/apps/v1/namespaces/default/deployments/web/scale

log "replicas, then scale out to 3"
FROM=$(($(log_lines) + 1))
drive "replicas" "scale 3" "replicas"
answered "replicas: 2"
answered "scale 3: ok"
answered "replicas: 3"
reqs "$FROM" >"$WORK/reqs"
expect_in "$WORK/reqs" "GET $SCALE 200 bearer"
expect_in "$WORK/reqs" "PATCH $SCALE 200 bearer application/merge-patch+json {\"spec\":{\"replicas\":3}}"
[ "$(grep -c '^PATCH' "$WORK/reqs")" = 1 ] || fail "not one PATCH: $(cat "$WORK/reqs")"
[ "$(replicas_by_kubectl)" = 3 ] || fail "kubectl sees $(replicas_by_kubectl) replicas, not 3"

log "scale_out below the current count changes nothing; stop takes one away"
FROM=$(($(log_lines) + 1))
drive "scale 2" "owns web-5d4f-abcde" "owns other-1" "stop web-5d4f-abcde" "replicas"
answered "scale 2: ok"
answered "owns web-5d4f-abcde: 1"
answered "owns other-1: 0"
answered "stop web-5d4f-abcde: ok"
answered "replicas: 2"
reqs "$FROM" >"$WORK/reqs"
[ "$(grep -c '^PATCH' "$WORK/reqs")" = 1 ] || fail "scale 2 of 3 patched: $(cat "$WORK/reqs")"
expect_in "$WORK/reqs" "PATCH $SCALE 200 bearer application/merge-patch+json {\"spec\":{\"replicas\":2}}"
[ "$(replicas_by_kubectl)" = 2 ] || fail "kubectl sees $(replicas_by_kubectl) replicas, not 2"

log "the runner follows a change made by someone else"
kc scale deployment web -n default --replicas=5 >"$WORK/kscale" 2>&1 || fail "kubectl scale: $(cat "$WORK/kscale")"
drive "replicas"
answered "replicas: 5"

log "an API failure is an error naming the call"
fault "{\"method\": \"PATCH\", \"path\": \"$SCALE\", \"status\": 500, \"body\": \"etcd down\", \"times\": 1}"
drive "scale 6"
grep -q "^scale 6: error: cannot scale the collector Deployment: PATCH .*$SCALE.*500.*etcd down" \
    "$WORK/drive.out" || fail "the failure does not name the call: $(cat "$WORK/drive.out")"
[ "$(replicas_by_kubectl)" = 5 ] || fail "a failed scale changed the replicas"
log "ok"
