#!/usr/bin/env bash
# Acceptance: an Alertmanager webhook for a node -> cordon and drain through the Kubernetes
# API double (tests/tools/k8s_api_double.py over HTTPS with a bearer token, as the
# federation_k8s_* tests use it; its pods are on worker-2 here), with the policy
#   NodeNotReady -> k8s_cordon, k8s_drain, notify
# First as a dry run: every call carries dryRun=All, the double changes nothing, and the
# drain step's record lists the evictions planned. Then for real: worker-2 unschedulable,
# its pods evicted through policy/v1 - the PodDisruptionBudget's pod refused twice and
# retried - DaemonSet and mirror pods left; the cordon goes straight on to the drain, the
# drain is verified when Alertmanager says the alert resolved. No MCI, no local VM: the
# controller's light path (broker and controller only).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"
. "$(dirname "$0")/federation_k8s_setup.sh"

NODE=worker-2
t0=$SECONDS
k8s_start --nodes "$NODE,worker-1"
ctl_broker_start
POLICY='"name": "node-not-ready", "match": {"rule": "NodeNotReady"},
 "steps": [{"action": "k8s_cordon"}, {"action": "k8s_drain"}, {"action": "notify"}],
 "verify_timeout": "60s", "cooldown": "0s", "hold": "0s"'
ctl_policy node-not-ready "{$POLICY, \"dry_run\": true}"
ctl_start --set kubernetes.kubeconfig="$KUBECONFIG_FILE" --set kubernetes.eviction_retry=2s

# am_webhook STATUS STARTS_AT: Alertmanager's webhook (version 4) for NodeNotReady on NODE.
am_webhook() {
    local ends=0001-01-01T00:00:00Z
    [ "$1" = resolved ] && ends=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    ctl_api POST /api/v1/alertmanager '{"version": "4", "status": "'"$1"'", "receiver": "damselfly",
 "groupKey": "{}:{alertname=\"NodeNotReady\"}", "truncatedAlerts": 0,
 "groupLabels": {"alertname": "NodeNotReady"},
 "commonLabels": {"alertname": "NodeNotReady", "node": "'$NODE'", "severity": "crit"},
 "commonAnnotations": {"summary": "node '$NODE' is not ready"},
 "externalURL": "http://alertmanager:9093",
 "alerts": [{"status": "'"$1"'", "labels": {"alertname": "NodeNotReady", "node": "'$NODE'",
             "severity": "crit"}, "annotations": {"summary": "node '$NODE' is not ready"},
             "startsAt": "'"$2"'", "endsAt": "'$ends'",
             "generatorURL": "http://prometheus:9090/graph", "fingerprint": "6f1c2b9a0d3e4f57"}]}' >/dev/null
    [ "$CTL_STATUS" = 200 ] || fail "POST /api/v1/alertmanager ($1): $CTL_STATUS $CTL_BODY"
}
# ended OUTCOME [N]: N (1) actions ended with OUTCOME.
ended() { ctl_audit_has "r[\"event\"]==\"end\" and r[\"outcome\"]==\"$1\"" "${2:-1}"; }
unschedulable() {
    kc get node "$NODE" -o jsonpath='{.spec.unschedulable}' 2>"$WORK/kc.err"
}
pods_on_node() { kc get pods -A --field-selector "spec.nodeName=$NODE" -o name | sort | tr '\n' ' '; }
ALL_PODS="pod/agent-$NODE pod/batch-1 pod/kube-proxy-static-$NODE pod/web-1 pod/web-2 "

log "dry run: the plan is audited, nothing changes"
since=$(($(log_lines) + 1))
am_webhook firing 2026-12-07T01:00:00Z
wait_for 30 ended dry_run || fail "the dry run did not end: $(tail -3 "$CTL_AUDIT")"
reqs "$since" >"$WORK/dry.reqs"
expect_in "$WORK/dry.reqs" "PATCH /api/v1/nodes/$NODE?dryRun=All 200"
for p in batch-1 web-1 web-2; do
    expect_in "$WORK/dry.reqs" "POST /api/v1/namespaces/default/pods/$p/eviction?dryRun=All 201"
done
"$CTL_PY" - "$K8S_LOG" "$since" <<'PY' || fail "a dry run call went without dryRun=All"
import json, sys
rows = [json.loads(l) for i, l in enumerate(open(sys.argv[1]), 1) if i >= int(sys.argv[2])]
writes = [r for r in rows if r["method"] != "GET"]
assert sum(r["path"].endswith("/eviction") for r in writes) == 3, writes
for r in writes:
    assert r["query"] == "dryRun=All", r
    if r["path"].endswith("/eviction"):
        assert json.loads(r["body"])["deleteOptions"]["dryRun"] == ["All"], r
PY
grep -q "agent-$NODE/eviction\|kube-proxy-static-$NODE/eviction" "$WORK/dry.reqs" &&
    fail "the plan evicts a DaemonSet or mirror pod"
[ "$(unschedulable)" != true ] || fail "the dry run cordoned $NODE"
[ "$(pods_on_node)" = "$ALL_PODS" ] || fail "the dry run removed pods: $(pods_on_node)"
P='r["policy"]=="node-not-ready" and r.get("dry_run") is True'
[ "$(ctl_audit_count "$P and r[\"event\"]==\"decision\" and r[\"verdict\"]==\"dry_run\" and r[\"kind\"]==\"node\" and r[\"target\"]==\"$NODE\"")" = 1 ] ||
    fail "no dry_run decision on node $NODE"
[ "$(ctl_audit_count "$P and $AUDIT_STEP_OK and r[\"op\"]==\"k8s_drain\" and r[\"detail\"]==\"dry run (dryRun=All), nothing evicted; would evict: default/batch-1 default/web-1 default/web-2\"")" = 1 ] ||
    fail "the drain's record does not show the plan: $(grep k8s_drain "$CTL_AUDIT" | tail -1)"
[ "$(ctl_audit_count "$P and $AUDIT_STEP_OK and r[\"op\"]==\"k8s_cordon\"")" = 1 ] ||
    fail "no dry run cordon record"
am_webhook resolved 2026-12-07T01:00:00Z

log "for real: cordon, drain (the PDB refuses web-2 twice), verified by the resolution"
ctl_api PUT /api/v1/policies/node-not-ready "{$POLICY}" >/dev/null
[ "$CTL_STATUS" = 200 ] || fail "PUT the policy without dry_run: $CTL_STATUS $CTL_BODY"
since=$(($(log_lines) + 1))
drain0=$SECONDS
am_webhook firing 2026-12-07T02:00:00Z
P='r["policy"]=="node-not-ready" and "dry_run" not in r'
wait_for 40 ctl_audit_has "$P and $AUDIT_STEP_OK and r[\"op\"]==\"k8s_drain\"" ||
    fail "the drain did not end well: $(tail -3 "$CTL_AUDIT")"
log "drained in $((SECONDS - drain0)) s"
[ "$(unschedulable)" = true ] || fail "$NODE is not unschedulable: $(cat "$WORK/kc.err")"
reqs "$since" >"$WORK/reqs"
expect_in "$WORK/reqs" "PATCH /api/v1/nodes/$NODE 200 bearer application/strategic-merge-patch+json {\"spec\":{\"unschedulable\":true}}"
for p in batch-1 web-1; do
    [ "$(grep -c "^POST /api/v1/namespaces/default/pods/$p/eviction 201" "$WORK/reqs")" = 1 ] ||
        fail "$p not evicted exactly once: $(grep eviction "$WORK/reqs")"
done
pdb=$(grep "^POST /api/v1/namespaces/default/pods/web-2/eviction" "$WORK/reqs" | awk '{print $3}' | tr '\n' ' ')
[ "$pdb" = "429 429 201 " ] || fail "web-2's evictions answered '$pdb', not 429 429 201"
grep -q "agent-$NODE/eviction\|kube-proxy-static-$NODE/eviction" "$WORK/reqs" &&
    fail "a DaemonSet or mirror pod was evicted"
grep -q "dryRun" "$WORK/reqs" && fail "the real drain sent dryRun"
[ "$(pods_on_node)" = "pod/agent-$NODE pod/kube-proxy-static-$NODE " ] ||
    fail "pods left on $NODE: $(pods_on_node)"
[ "$(kc get pods -A --field-selector spec.nodeName=worker-1 -o name)" = pod/web-3 ] ||
    fail "the other node's pod was touched"
[ "$(ctl_audit_count "$P and $AUDIT_STEP_OK and r[\"op\"]==\"k8s_drain\" and r[\"detail\"]==\"evicted: default/batch-1 default/web-1 default/web-2\"")" = 1 ] ||
    fail "the drain's record does not name the evictions"
[ "$(ctl_audit_count "$P and $AUDIT_RUN and r[\"target\"]==\"$NODE\"")" = 1 ] || fail "no run decision"
# The cordon went straight on to the drain: nothing verified it.
[ "$(ctl_audit_count "$P and r[\"event\"]==\"verify\"")" = 0 ] || fail "a step was verified before the resolution"
[ "$(ctl_calls k8s_cordon)" = 2 ] && [ "$(ctl_calls k8s_drain)" = 2 ] ||
    fail "calls: $(ctl_calls k8s_cordon) cordons, $(ctl_calls k8s_drain) drains (one dry run, one real each)"

sleep 1
ctl_audit_has "$P and r[\"event\"]==\"end\"" && fail "the action ended before the alert resolved"
am_webhook resolved 2026-12-07T02:00:00Z
wait_for 15 ended healed || fail "the action did not end healed: $(tail -3 "$CTL_AUDIT")"
[ "$(ctl_audit_count "$P and r[\"event\"]==\"verify\" and r[\"ok\"] is True and r[\"step\"]==1")" = 1 ] ||
    fail "the drain was not the step verified"
[ "$(ctl_audit_count "$P and r[\"event\"]==\"step\" and r[\"op\"]==\"notify\"")" = 0 ] ||
    fail "the notify step ran though the drain healed"
reqs >"$WORK/all.reqs"
grep -v " bearer " "$WORK/all.reqs" && fail "a request went without the bearer token"
ctl_audit_verify
ctl_stop
log "ok in $((SECONDS - t0)) s"
