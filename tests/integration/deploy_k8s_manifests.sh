#!/usr/bin/env bash
# deploy/kubernetes/server/*.yaml, checked client-side by check_k8s_manifests.py: structure,
# hardening, probes, the RBAC set each account needs and no more, the balancer's kubernetes
# runner naming the collector Deployment, and each daemon's --check on its ConfigMap. Every
# broken copy below weakens one promise and must be rejected.
#
# kubectl is not used: even `kubectl create --dry-run=client --validate=false` asks the API
# server's discovery for the REST mapping of each kind, and there is no server here.
. "$(dirname "$0")/lib.sh"

CHECK=(python3 "$DSF_SRC/tests/integration/check_k8s_manifests.py")
python3 -c 'import yaml' 2>/dev/null || fail "python3 yaml module missing: apt-get install python3-yaml"

# The files as `kubectl apply -f deploy/kubernetes/server/` takes them (in name order), in
# one stream: references across files are checked, and the broken copies edit one text.
MANIFEST="$WORK/server.yaml"
first=1
for f in "$DSF_SRC"/deploy/kubernetes/server/*.yaml; do
    [ $first = 1 ] || echo --- >>"$MANIFEST"
    cat "$f" >>"$MANIFEST"
    first=0
done
[ $first = 0 ] || fail "no manifest in deploy/kubernetes/server/"

log "checking deploy/kubernetes/server/ (daemons from $DSF_BUILD)"
mkdir -p "$WORK/ok"
"${CHECK[@]}" "$MANIFEST" "$DSF_SRC" "$DSF_BUILD" "$WORK/ok" 2>"$WORK/check.log" ||
    fail "manifest check failed: $(tail -n 3 "$WORK/check.log")"

breaks=(
    # RBAC: one verb, resource or name more, or one call less
    '0,/verbs: \["get", "patch"\]/s//verbs: ["get", "patch", "update"]/'
    's/resources: \["nodes"\]/resources: ["nodes", "secrets"]/'
    's/verbs: \["list"\]/verbs: ["list", "watch"]/'
    's/verbs: \["create"\]/verbs: ["get"]/'
    '/resourceNames: \["damselfly-collector"\]/d'
    '0,/^      automountServiceAccountToken: false/s//      automountServiceAccountToken: true/'
    # the balancer's runner and the collectors it scales
    's/"deployment": "damselfly-collector"/"deployment": "collectors"/'
    's/"namespace": "damselfly-server"/"namespace": "default"/'
    's/"follow_assign": true/"follow_assign": false/'
    's/^  replicas: 2$/  replicas: 1/'
    # hardening
    '0,/readOnlyRootFilesystem: true/s//readOnlyRootFilesystem: false/'
    '0,/drop: \["ALL"\]/s//drop: ["NET_RAW"]/'
    '0,/type: RuntimeDefault/s//type: Unconfined/'
    's/enforce: restricted/enforce: baseline/'
    '0,/path: \/healthz/s//path: \/metrics/'
    '0,/"listen": "0.0.0.0:9104"/s//"listen": "0.0.0.0:9105"/'
    '/^kind: Deployment$/,/^---/s/^      app.kubernetes.io\/name: damselfly-alarm$/      app.kubernetes.io\/name: alarm/'
    '$a ---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: damselfly-bus-alarm\n  namespace: damselfly-server\nstringData:\n  password: x'
    # configs the daemons refuse, and drift from deploy/alarm.d
    's/"follow_assign": true/"follow_assign": true, "bogus": 1/'
    '0,/- name: DAMSELFLY_MQTT_USERNAME/s//- name: DAMSELFLY_MQTT_USER/'
    's/"dir": "\/etc\/damselfly\/policies"/"dir": "\/etc\/damselfly\/policy"/'
    's/{"action": "k8s_cordon"}/{"action": "k8s_cordonn"}/'
    '/^  agent_down.json: |$/,/^  cpu_hot/s/"for": "30s"/"for": "31s"/'
)
log "${#breaks[@]} broken copies must be rejected"
for i in "${!breaks[@]}"; do
    sed "${breaks[$i]}" "$MANIFEST" >"$WORK/broken$i.yaml"
    cmp -s "$MANIFEST" "$WORK/broken$i.yaml" && fail "edit '${breaks[$i]}' did not apply"
    mkdir -p "$WORK/b$i"
    if "${CHECK[@]}" "$WORK/broken$i.yaml" "$DSF_SRC" "$DSF_BUILD" "$WORK/b$i" 2>"$WORK/b$i.txt"; then
        fail "checker accepted a manifest edited with '${breaks[$i]}'"
    fi
    log "rejected '${breaks[$i]}': $(cut -c1-160 "$WORK/b$i.txt")"
done
log "PASS"
