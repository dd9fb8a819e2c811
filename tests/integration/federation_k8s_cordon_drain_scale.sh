#!/usr/bin/env bash
# The kubernetes driver, through damselfly-fed, against the Kubernetes API double over HTTPS
# with a bearer token: cordon and uncordon (strategic merge patch, dry run), drain (pods of
# the node listed with a field selector over several pages, DaemonSet and mirror pods left,
# evictions through policy/v1 with a PodDisruptionBudget refusing one pod twice, retried
# every 5 s, then waiting until the pods are gone), and scaling a Deployment and a Cluster
# API MachineDeployment through /scale. The real kubectl, on the same kubeconfig, reads the
# results back: the double is a faithful subset of the API server.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/federation_k8s_setup.sh"

k8s_start

log "kubectl sees the double"
kc get nodes >"$WORK/nodes.out" 2>&1 || fail "kubectl get nodes: $(cat "$WORK/nodes.out")"
expect_in "$WORK/nodes.out" "n1"

log "cordon"
fed node cordon n1 >"$WORK/out" 2>"$WORK/err" || fail "cordon: $(cat "$WORK/err")"
kc get node n1 >"$WORK/node.out" 2>&1
expect_in "$WORK/node.out" "SchedulingDisabled"
reqs >"$WORK/reqs"
expect_in "$WORK/reqs" 'PATCH /api/v1/nodes/n1 200 bearer application/strategic-merge-patch+json {"spec":{"unschedulable":true}}'

log "uncordon: a dry run changes nothing, then the real one"
since=$(($(log_lines) + 1))
fed node uncordon n1 --dry-run >"$WORK/out" 2>"$WORK/err" || fail "uncordon --dry-run: $(cat "$WORK/err")"
kc get node n1 >"$WORK/node.out" 2>&1
expect_in "$WORK/node.out" "SchedulingDisabled"
reqs "$since" >"$WORK/reqs"
expect_in "$WORK/reqs" 'PATCH /api/v1/nodes/n1?dryRun=All 200 bearer application/strategic-merge-patch+json {"spec":{"unschedulable":false}}'
fed node uncordon n1 >"$WORK/out" 2>"$WORK/err" || fail "uncordon: $(cat "$WORK/err")"
kc get node n1 >"$WORK/node.out" 2>&1
grep -q "SchedulingDisabled" "$WORK/node.out" && fail "n1 still cordoned: $(cat "$WORK/node.out")"
expect_in "$WORK/node.out" "Ready"

log "drain dry run: nothing cordoned, nothing evicted"
since=$(($(log_lines) + 1))
fed node drain n2 --dry-run --grace-period 30 >"$WORK/out" 2>"$WORK/err" || fail "drain --dry-run: $(cat "$WORK/err")"
reqs "$since" >"$WORK/reqs"
expect_in "$WORK/reqs" 'PATCH /api/v1/nodes/n2?dryRun=All 200'
expect_in "$WORK/reqs" 'POST /api/v1/namespaces/default/pods/web-3/eviction?dryRun=All 201 bearer application/json {"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"web-3","namespace":"default"},"deleteOptions":{"gracePeriodSeconds":30,"dryRun":["All"]}}'
kc get node n2 >"$WORK/node.out" 2>&1
grep -q "SchedulingDisabled" "$WORK/node.out" && fail "a dry run cordoned n2"
kc get pod web-3 -n default >"$WORK/pod.out" 2>&1
grep -Eq '^web-3 +1/1 +Running' "$WORK/pod.out" || fail "a dry run evicted web-3: $(cat "$WORK/pod.out")"

log "drain n1 (pages of 2 pods, PDB refuses web-2 twice)"
since=$(($(log_lines) + 1))
start=$SECONDS
fed --set kubernetes.page_size=2 node drain n1 --timeout 60s >"$WORK/out" 2>"$WORK/drain.log" ||
    fail "drain: $(tail -5 "$WORK/drain.log")"
took=$((SECONDS - start))
reqs "$since" >"$WORK/reqs"
expect_in "$WORK/reqs" 'PATCH /api/v1/nodes/n1 200 bearer application/strategic-merge-patch+json {"spec":{"unschedulable":true}}'
expect_in "$WORK/reqs" 'GET /api/v1/pods?fieldSelector=spec.nodeName%3Dn1&limit=2 200'
grep -q '^GET /api/v1/pods?fieldSelector=spec.nodeName%3Dn1&limit=2&continue=[^ ]* 200' "$WORK/reqs" ||
    fail "drain did not follow the continue token: $(grep pods "$WORK/reqs")"
for p in default/pods/batch-1 default/pods/web-1; do
    [ "$(grep -c "^POST /api/v1/namespaces/$p/eviction 201" "$WORK/reqs")" = 1 ] ||
        fail "$p not evicted exactly once: $(grep eviction "$WORK/reqs")"
done
grep "^POST /api/v1/namespaces/default/pods/web-2/eviction" "$WORK/reqs" | awk '{print $3}' | tr '\n' ' ' >"$WORK/pdb"
[ "$(cat "$WORK/pdb")" = "429 429 201 " ] || fail "web-2 evictions answered '$(cat "$WORK/pdb")', not 429 429 201"
grep -q "agent-n1/eviction\|kube-proxy-static-n1/eviction" "$WORK/reqs" &&
    fail "a DaemonSet or mirror pod was evicted: $(grep eviction "$WORK/reqs")"
python3 - "$K8S_LOG" "$since" <<'PY' || fail "eviction bodies or PDB retry spacing wrong"
import json, sys
rows = [json.loads(l) for i, l in enumerate(open(sys.argv[1]), 1) if i >= int(sys.argv[2])]
ev = [r for r in rows if r["path"].endswith("/eviction")]
for r in ev:
    b = json.loads(r["body"])
    ns, name = r["path"].split("/")[4], r["path"].split("/")[6]
    assert b["apiVersion"] == "policy/v1" and b["kind"] == "Eviction", b
    assert b["metadata"] == {"name": name, "namespace": ns}, b
    assert r["content_type"] == "application/json", r
web2 = [r["t"] for r in ev if "/web-2/" in r["path"]]
gaps = [b - a for a, b in zip(web2, web2[1:])]
assert len(gaps) == 2 and all(4.5 <= g <= 8 for g in gaps), gaps
# Waiting for the pods to go: the pod list is read again after the last eviction.
last = max(r["t"] for r in ev)
assert any(r["path"] == "/api/v1/pods" and r["t"] > last for r in rows)
PY
[ "$took" -ge 10 ] || fail "drain took ${took}s: the PDB retries were not 5 s apart"
kc get pods -A --field-selector spec.nodeName=n1 -o name >"$WORK/left" 2>&1
[ "$(sort "$WORK/left" | tr '\n' ' ')" = "pod/agent-n1 pod/kube-proxy-static-n1 " ] ||
    fail "pods left on n1: $(cat "$WORK/left")"
kc get node n1 >"$WORK/node.out" 2>&1
expect_in "$WORK/node.out" "SchedulingDisabled"
kc get pods -A --field-selector spec.nodeName=n2 -o name >"$WORK/n2" 2>&1
expect_in "$WORK/n2" "pod/web-3"

log "scale the Deployment"
since=$(($(log_lines) + 1))
fed scale deployment default web 4 >"$WORK/out" 2>"$WORK/err" || fail "scale: $(cat "$WORK/err")"
expect_in "$WORK/out" "from 2 to 4"
kc get deployment web -n default >"$WORK/deploy.out" 2>&1
expect_in "$WORK/deploy.out" "4/4"
reqs "$since" >"$WORK/reqs"
expect_in "$WORK/reqs" 'GET /apis/apps/v1/namespaces/default/deployments/web/scale 200 bearer'
expect_in "$WORK/reqs" 'PATCH /apis/apps/v1/namespaces/default/deployments/web/scale 200 bearer application/merge-patch+json {"spec":{"replicas":4}}'

log "scale dry run changes nothing"
fed scale deployment default web 9 --dry-run >"$WORK/out" 2>"$WORK/err" || fail "scale --dry-run: $(cat "$WORK/err")"
kc get deployment web -n default -o jsonpath='{.spec.replicas}' >"$WORK/replicas" 2>&1
[ "$(cat "$WORK/replicas")" = 4 ] || fail "dry run changed replicas to $(cat "$WORK/replicas")"
reqs >"$WORK/reqs"
expect_in "$WORK/reqs" 'PATCH /apis/apps/v1/namespaces/default/deployments/web/scale?dryRun=All 200'

log "kubectl scale, then the driver sees what kubectl set"
kc scale deployment web -n default --replicas=3 >"$WORK/kscale" 2>&1 || fail "kubectl scale: $(cat "$WORK/kscale")"
fed scale deployment default web 2 >"$WORK/out" 2>"$WORK/err" || fail "scale: $(cat "$WORK/err")"
expect_in "$WORK/out" "from 3 to 2"
kc get deployment web -n default >"$WORK/deploy.out" 2>&1
expect_in "$WORK/deploy.out" "2/2"

log "scale the Cluster API MachineDeployment"
fed scale machinedeployment default md-0 5 >"$WORK/out" 2>"$WORK/err" || fail "scale md: $(cat "$WORK/err")"
expect_in "$WORK/out" "from 3 to 5"
kc get machinedeployment md-0 -n default -o jsonpath='{.spec.replicas}' >"$WORK/replicas" 2>&1
[ "$(cat "$WORK/replicas")" = 5 ] || fail "md-0 has $(cat "$WORK/replicas") replicas"
kc get md -n default >"$WORK/md.out" 2>&1
grep -Eq '^md-0 +c1 +5 ' "$WORK/md.out" || fail "kubectl get md: $(cat "$WORK/md.out")"
reqs >"$WORK/reqs"
expect_in "$WORK/reqs" 'PATCH /apis/cluster.x-k8s.io/v1beta1/namespaces/default/machinedeployments/md-0/scale 200 bearer application/merge-patch+json {"spec":{"replicas":5}}'

log "errors name the call, the status and the body"
if fed node cordon nope >"$WORK/out" 2>"$WORK/err"; then fail "cordon of an unknown node succeeded"; fi
expect_in "$WORK/err" "PATCH $K8S_URL/api/v1/nodes/nope: status 404:"
expect_in "$WORK/err" 'nodes \"nope\" not found'
if fed scale deployment default nope 1 >"$WORK/out" 2>"$WORK/err"; then fail "scaling an unknown deployment succeeded"; fi
expect_in "$WORK/err" "GET $K8S_URL/apis/apps/v1/namespaces/default/deployments/nope/scale: status 404:"
if fed node drain n9 --timeout 5s >"$WORK/out" 2>"$WORK/err"; then fail "draining an unknown node succeeded"; fi
expect_in "$WORK/err" "status 404"

reqs >"$WORK/reqs"
grep -v " bearer " "$WORK/reqs" && fail "a request went without the bearer token"
log "ok"
