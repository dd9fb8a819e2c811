#!/usr/bin/env bash
# deploy/kubernetes/agent-daemonset.yaml: parses, and its DaemonSet keeps the promises the
# design makes (non-root, no capabilities, read-only host /proc, /sys and root filesystem,
# identity from the downward API), its namespace admits the hostPath volumes under Pod
# Security, and a Service and a PodMonitor reach the pods' /metrics. Broken copies must fail
# the same checks. With the agent built, the ConfigMap's agent.json must pass
# damselfly-agent --check.
. "$(dirname "$0")/lib.sh"

MANIFEST="$DSF_SRC/deploy/kubernetes/agent-daemonset.yaml"
python3 -c 'import yaml' 2>/dev/null || fail "python3 yaml module missing: apt-get install python3-yaml"

cat >"$WORK/check.py" <<'EOF'
import json, sys, yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = {d["kind"]: d for d in docs}
for k in ("Namespace", "ServiceAccount", "ConfigMap", "DaemonSet", "Service", "PodMonitor"):
    assert k in kinds, "no %s" % k
ns = kinds["Namespace"]["metadata"]
for d in docs:
    if d["kind"] != "Namespace":
        assert d["metadata"].get("namespace") == ns["name"], "%s not in %s" % (d["kind"], ns["name"])
ds = kinds["DaemonSet"]
pod = ds["spec"]["template"]["spec"]
assert ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items(), \
    "selector does not match the pod labels"
assert not pod.get("hostNetwork", False), "hostNetwork must be false"
assert not pod.get("hostPID", False), "hostPID must be false"
assert pod["serviceAccountName"] == kinds["ServiceAccount"]["metadata"]["name"]
assert any(t.get("operator") == "Exists" and "key" not in t for t in pod.get("tolerations", [])), \
    "no toleration for every taint"
psc = pod.get("securityContext", {})
assert psc.get("runAsNonRoot") is True, "pod runAsNonRoot must be true"
assert psc.get("runAsUser") == 65534, "pod runAsUser must be 65534"
(c,) = pod["containers"]
sc = c["securityContext"]
assert sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem must be true"
assert sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation must be false"
assert not sc.get("privileged", False), "must not be privileged"
assert sc.get("runAsUser", 65534) == 65534 and sc.get("runAsNonRoot", True) is True
assert sc["capabilities"].get("drop") == ["ALL"], "capabilities must drop ALL"
assert not sc["capabilities"].get("add"), "no capability may be added"

vols = {v["name"]: v for v in pod["volumes"]}
mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
for host_path, mount_path in (("/proc", "/host/proc"), ("/sys", "/host/sys"), ("/", "/host/root")):
    m = mounts.get(mount_path)
    assert m, "%s not mounted" % mount_path
    assert m.get("readOnly") is True, "%s must be mounted readOnly" % mount_path
    assert vols[m["name"]].get("hostPath", {}).get("path") == host_path, \
        "%s must be hostPath %s" % (mount_path, host_path)
for name, v in vols.items():
    if "hostPath" in v:
        assert any(m["name"] == name and m.get("readOnly") is True for m in c["volumeMounts"]), \
            "hostPath volume %s mounted writable" % name

env = {e["name"]: e for e in c["env"]}
def field(name):
    e = env.get(name)
    assert e, "env %s missing" % name
    return e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
for name in ("NODE_NAME", "DAMSELFLY_IDENTITY_VM", "DAMSELFLY_IDENTITY_HOST",
             "DAMSELFLY_IDENTITY_K8S_NODE"):
    assert field(name) == "spec.nodeName", "%s must come from fieldRef spec.nodeName" % name
assert field("POD_NAME") == "metadata.name"
assert field("POD_NAMESPACE") == "metadata.namespace"

res = c["resources"]
assert res["requests"] == {"cpu": "10m", "memory": "8Mi"}, res
assert res["limits"] == {"cpu": "100m", "memory": "32Mi"}, res

cm = kinds["ConfigMap"]
cfg_vol = [v for v in vols.values() if v.get("configMap", {}).get("name") == cm["metadata"]["name"]]
assert cfg_vol, "the ConfigMap is not mounted"
cfg = json.loads(cm["data"]["agent.json"])
assert cfg["host"] == {"proc": "/host/proc", "sys": "/host/sys", "rootfs": "/host/root"}, \
    cfg.get("host")

# Baseline (and restricted) forbid every hostPath volume: the namespace must admit them.
if any("hostPath" in v for v in vols.values()):
    assert ns.get("labels", {}).get("pod-security.kubernetes.io/enforce") == "privileged", \
        "hostPath volumes need pod-security.kubernetes.io/enforce: privileged on the namespace"

pod_labels = ds["spec"]["template"]["metadata"]["labels"]
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
http_port = int(cfg["http"]["listen"].rsplit(":", 1)[1])
assert ports.get("metrics") == http_port, "container port metrics is not http.listen's"
svc = kinds["Service"]
assert svc["spec"]["selector"].items() <= pod_labels.items(), "the Service selects no agent pod"
(sp,) = svc["spec"]["ports"]
assert sp["targetPort"] in ("metrics", http_port), "the Service does not target the metrics port"
pm = kinds["PodMonitor"]
assert pm["apiVersion"] == "monitoring.coreos.com/v1", pm["apiVersion"]
assert pm["spec"]["selector"]["matchLabels"].items() <= pod_labels.items(), \
    "the PodMonitor selects no agent pod"
(ep,) = pm["spec"]["podMetricsEndpoints"]
assert ep["port"] == "metrics" and ep.get("path", "/metrics") == "/metrics", ep
assert "--config" in c["args"], "the agent is not given its config"
cfg_path = c["args"][c["args"].index("--config") + 1]
cfg_mount = [m for m in c["volumeMounts"] if m["name"] == cfg_vol[0]["name"]][0]["mountPath"]
assert cfg_path == cfg_mount.rstrip("/") + "/agent.json", "--config %s is not the ConfigMap" % cfg_path
if len(sys.argv) > 2:
    open(sys.argv[2], "w").write(cm["data"]["agent.json"])
EOF

log "checking $MANIFEST"
python3 "$WORK/check.py" "$MANIFEST" "$WORK/agent.json" 2>"$WORK/check.log" ||
    fail "manifest check failed: $(tail -n 3 "$WORK/check.log")"

# Each broken copy weakens one promise; the checker must notice every one.
log "broken copies must be rejected"
breaks=(
    's/^\(  *readOnly:\) true$/\1 false/'
    's/^\(  *runAsNonRoot:\) true$/\1 false/'
    's/drop: \["ALL"\]/drop: ["NET_RAW"]/'
    's/fieldPath: spec.nodeName/fieldPath: status.hostIP/'
    's/^\(  *hostNetwork:\) false$/\1 true/'
    's|"proc": "/host/proc"|"proc": "/proc"|'
    's/^\(  *allowPrivilegeEscalation:\) false$/\1 true/'
    's|"rootfs": "/host/root"|"rootfs": ""|'
    's/enforce: privileged/enforce: baseline/'
    's/^\(    - port:\) metrics/\1 http/'
    's/^\(  *path:\) \/$/\1 \/srv/'
    '/^kind: Service$/,/^---/s/app.kubernetes.io\/name: damselfly-agent/app.kubernetes.io\/name: other/'
)
for i in "${!breaks[@]}"; do
    sed "${breaks[$i]}" "$MANIFEST" >"$WORK/broken$i.yaml"
    cmp -s "$MANIFEST" "$WORK/broken$i.yaml" && fail "edit '${breaks[$i]}' did not apply"
    if python3 "$WORK/check.py" "$WORK/broken$i.yaml" 2>/dev/null; then
        fail "checker accepted a manifest edited with '${breaks[$i]}'"
    fi
done

[ -x "$AGENT" ] || fail "$AGENT is not built (build the whole tree first)"
log "damselfly-agent --check on the ConfigMap's agent.json"
# The node-specific keys come from the downward API in the pod; give them here too.
env -i PATH=/usr/bin:/bin DAMSELFLY_IDENTITY_VM=node-1 DAMSELFLY_IDENTITY_HOST=node-1 \
    "$AGENT" --config "$WORK/agent.json" --check >"$WORK/agent-check.log" 2>&1 ||
    fail "the ConfigMap's agent.json is rejected: $(cat "$WORK/agent-check.log")"

log "PASS"
