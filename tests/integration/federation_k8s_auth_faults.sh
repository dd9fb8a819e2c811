#!/usr/bin/env bash
# The kubernetes driver's ways in and its failures: a client certificate and key inline in
# the kubeconfig (base64 *-data fields, also used by kubectl), a JSON kubeconfig naming its
# CA by a relative path, the in-cluster service account; then a wrong token, a wrong CA,
# 503s and 429s that retries absorb, a malformed answer and a server that hangs: each
# failure is a clear error naming the call, the status and the body.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/federation_k8s_setup.sh"

k8s_start

log "client certificate from inline kubeconfig data"
KUBECONFIG_FILE="$WORK/kubeconfig-cert"
k8s_kubeconfig "$KUBECONFIG_FILE" "    client-certificate-data: $(base64 -w0 "$WORK/pki/client.crt")
    client-key-data: $(base64 -w0 "$WORK/pki/client.key")"
since=$(($(log_lines) + 1))
fed node cordon n2 >"$WORK/out" 2>"$WORK/err" || fail "cordon with a client certificate: $(cat "$WORK/err")"
reqs "$since" >"$WORK/reqs"
expect_in "$WORK/reqs" "PATCH /api/v1/nodes/n2 200 cert "
kc get node n2 >"$WORK/node.out" 2>&1 || fail "kubectl with the client certificate: $(cat "$WORK/node.out")"
expect_in "$WORK/node.out" "SchedulingDisabled"

log "JSON kubeconfig, CA file relative to it, token"
mkdir -p "$WORK/conf/pki"
cp "$WORK/pki/ca.crt" "$WORK/conf/pki/ca.crt"
KUBECONFIG_FILE="$WORK/conf/kubeconfig.json"
cat >"$KUBECONFIG_FILE" <<EOF
{"apiVersion": "v1", "kind": "Config", "current-context": "json",
 "clusters": [{"name": "double", "cluster": {"server": "$K8S_URL", "certificate-authority": "pki/ca.crt"}}],
 "contexts": [{"name": "json", "context": {"cluster": "double", "user": "tok"}}],
 "users": [{"name": "tok", "user": {"token": "$K8S_TOKEN"}}]}
EOF
(cd / && fed node uncordon n2) >"$WORK/out" 2>"$WORK/err" || fail "JSON kubeconfig: $(cat "$WORK/err")"
kc get node n2 >"$WORK/node.out" 2>&1
grep -q SchedulingDisabled "$WORK/node.out" && fail "n2 still cordoned"

log "in-cluster service account"
mkdir -p "$WORK/sa"
cp "$WORK/pki/ca.crt" "$WORK/sa/ca.crt"
printf '%s\n' "$K8S_TOKEN" >"$WORK/sa/token"
printf 'default' >"$WORK/sa/namespace"
KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$K8S_PORT \
    "$FED" --driver kubernetes --state-dir "$WORK/state" --set kubernetes.in_cluster=true \
    --set kubernetes.service_account_dir="$WORK/sa" scale deployment default web 3 >"$WORK/out" 2>"$WORK/err" ||
    fail "in-cluster: $(cat "$WORK/err")"
expect_in "$WORK/out" "from 2 to 3"

KUBECONFIG_FILE="$WORK/kubeconfig"
log "a wrong token is refused with 401"
k8s_kubeconfig "$WORK/kubeconfig-bad" "    token: wrong"
if "$FED" --driver kubernetes --state-dir "$WORK/state" --set kubernetes.kubeconfig="$WORK/kubeconfig-bad" \
    node cordon n1 >"$WORK/out" 2>"$WORK/err"; then fail "a wrong token was accepted"; fi
expect_in "$WORK/err" "PATCH $K8S_URL/api/v1/nodes/n1: status 401:"
expect_in "$WORK/err" '"reason":"Unauthorized"'

log "a server certificate from another CA is refused"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=other" -keyout "$WORK/other.key" \
    -out "$WORK/other.crt" 2>/dev/null
sed "s|certificate-authority-data: .*|certificate-authority-data: $(base64 -w0 "$WORK/other.crt")|" \
    "$KUBECONFIG_FILE" >"$WORK/kubeconfig-other-ca"
if "$FED" --driver kubernetes --state-dir "$WORK/state" --set kubernetes.kubeconfig="$WORK/kubeconfig-other-ca" \
    --set kubernetes.retries=0 node cordon n1 >"$WORK/out" 2>"$WORK/err"; then fail "an unknown CA was trusted"; fi
expect_in "$WORK/err" "PATCH $K8S_URL/api/v1/nodes/n1:"
grep -qi "certificate" "$WORK/err" || fail "the TLS error does not say certificate: $(cat "$WORK/err")"

log "503 twice, then success: retried with backoff"
since=$(($(log_lines) + 1))
fault '{"method": "PATCH", "path": "/api/v1/nodes/n1", "status": 503, "times": 2}'
fed node cordon n1 >"$WORK/out" 2>"$WORK/err" || fail "cordon through two 503s: $(cat "$WORK/err")"
reqs "$since" | awk '$1 == "PATCH" {print $3}' | tr '\n' ' ' >"$WORK/codes"
[ "$(cat "$WORK/codes")" = "503 503 200 " ] || fail "PATCH answers: $(cat "$WORK/codes")"

log "429 (API priority and fairness) on a read is retried too"
fault '{"method": "GET", "path": "/apis/apps/v1/namespaces/default/deployments/web/scale", "status": 429, "times": 1}'
fed scale deployment default web 2 >"$WORK/out" 2>"$WORK/err" || fail "scale through a 429: $(cat "$WORK/err")"

log "retries run out: the last status and body are reported"
fault '{"method": "PATCH", "path": "/api/v1/nodes/n1", "status": 500, "times": 3, "body": "{\"kind\":\"Status\",\"message\":\"etcdserver: leader changed\",\"code\":500}"}'
if fed --set kubernetes.retries=2 node uncordon n1 >"$WORK/out" 2>"$WORK/err"; then fail "three 500s passed"; fi
expect_in "$WORK/err" "PATCH $K8S_URL/api/v1/nodes/n1: status 500:"
expect_in "$WORK/err" "etcdserver: leader changed"
expect_in "$WORK/err" "(after 3 attempts)"

log "a malformed answer is an error, not a crash"
fault '{"method": "PATCH", "path": "/api/v1/nodes/n1", "status": 200, "body": "<html>proxy error</html>"}'
if fed node uncordon n1 >"$WORK/out" 2>"$WORK/err"; then fail "HTML was taken for a Node"; fi
expect_in "$WORK/err" "parse Node"
expect_in "$WORK/err" "not JSON"
fault '{"method": "GET", "path": "/api/v1/pods?", "status": 200, "body": "{\"kind\":\"PodList\",\"items\":[{\"metadata\":{\"name\":5}}]}"}'
if fed node drain n2 --timeout 10s >"$WORK/out" 2>"$WORK/err"; then fail "a bad PodList was accepted"; fi
expect_in "$WORK/err" "parse PodList"
expect_in "$WORK/err" "name: expected a string"

log "a hanging server times out per attempt"
fault '{"method": "GET", "path": "/apis/apps/v1/namespaces/default/deployments/web/scale", "hang": 8, "times": 2}'
start=$SECONDS
if fed --set kubernetes.timeout=1s --set kubernetes.retries=1 scale deployment default web 1 \
    >"$WORK/out" 2>"$WORK/err"; then fail "a hanging server did not time out"; fi
[ $((SECONDS - start)) -lt 7 ] || fail "the timeout took $((SECONDS - start)) s"
expect_in "$WORK/err" "GET $K8S_URL/apis/apps/v1/namespaces/default/deployments/web/scale: timed out after 1000 ms (2 attempts)"

log "no kubeconfig at all"
if HOME="$WORK/nohome" KUBECONFIG= env -u KUBERNETES_SERVICE_HOST "$FED" --driver kubernetes \
    --state-dir "$WORK/state" node cordon n1 >"$WORK/out" 2>"$WORK/err"; then fail "ran without credentials"; fi
expect_in "$WORK/err" "no kubeconfig"
log "ok"
