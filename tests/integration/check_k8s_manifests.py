#!/usr/bin/env python3
"""Checks deploy/kubernetes/server/ (its files in one stream) without an API server.

  check_k8s_manifests.py MANIFEST SRC BUILD WORKDIR

Structure: every document has apiVersion, kind and metadata.name, namespaced ones sit in the
manifest's Namespace (Pod Security "restricted"); selectors match their pods; each pod is
hardened (non-root, read-only root filesystem, no capability, no privilege escalation,
RuntimeDefault seccomp), has requests and limits, and liveness and readiness probes on
/healthz at its http.listen port; every ConfigMap and ServiceAccount referenced exists;
Secrets are referenced, never embedded.

RBAC: the rules bound to each ServiceAccount are exactly the calls its daemon makes (a verb,
resource or resource name more or less fails), and only the accounts that call the API get
a token. The balancer's kubernetes runner names the collector Deployment, in its namespace.

Configs: each container runs its daemon's --check on the ConfigMap it mounts, with the
Deployment's environment (downward API and Secret values stood in for) and the pod's mounts
laid out under WORKDIR. An unknown key, or a DAMSELFLY_* variable that names none, fails.
Exits 1 with the first problem on stderr.
"""
import json
import os
import subprocess
import sys

import yaml

NAMESPACED = {"ServiceAccount", "ConfigMap", "Deployment", "Service", "Role", "RoleBinding",
              "PersistentVolumeClaim"}
# (apiGroup, resource, resourceName or "*", verb) each daemon's account may use: the calls of
# balancer/runner_k8s.c and federation/drivers/kubernetes.c (docs/federation.md).
COLLECTOR_DEPLOYMENT = "damselfly-collector"
WANT_RBAC = {
    "damselfly-balancer": {("apps", "deployments/scale", COLLECTOR_DEPLOYMENT, v)
                           for v in ("get", "patch")},
    "damselfly-control": {("", "nodes", "*", "patch"), ("", "pods", "*", "list"),
                          ("", "pods/eviction", "*", "create"),
                          ("apps", "deployments/scale", "*", "get"),
                          ("apps", "deployments/scale", "*", "patch")},
}
DAEMONS = {"damselfly-collector": "collector", "damselfly-balancer": "balancer",
           "damselfly-alarm": "alarm", "damselfly-control": "control"}


class Bad(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise Bad(msg)


def load(path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    for i, d in enumerate(docs):
        for k in ("apiVersion", "kind", "metadata"):
            need(k in d, "document %d has no %s" % (i + 1, k))
        need(d["metadata"].get("name"), "document %d (%s) has no metadata.name" % (i + 1, d["kind"]))
    return docs


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def check_namespace(docs):
    nss = by_kind(docs, "Namespace")
    need(len(nss) == 1, "expected one Namespace, found %d" % len(nss))
    (ns,) = nss.values()
    labels = ns["metadata"].get("labels", {})
    need(labels.get("pod-security.kubernetes.io/enforce") == "restricted",
         "the Namespace must enforce Pod Security 'restricted'")
    for d in docs:
        if d["kind"] in NAMESPACED:
            need(d["metadata"].get("namespace") == ns["metadata"]["name"],
                 "%s %s is not in namespace %s" % (d["kind"], d["metadata"]["name"],
                                                   ns["metadata"]["name"]))
        need(d["kind"] != "Secret", "Secret %s is embedded: reference it, do not ship it"
             % d["metadata"]["name"])
    return ns["metadata"]["name"]


def check_container_security(name, c):
    sc = c.get("securityContext", {})
    need(sc.get("readOnlyRootFilesystem") is True, "%s: readOnlyRootFilesystem must be true" % name)
    need(sc.get("allowPrivilegeEscalation") is False,
         "%s: allowPrivilegeEscalation must be false" % name)
    need(not sc.get("privileged", False), "%s: must not be privileged" % name)
    need(sc.get("runAsNonRoot", True) is True, "%s: runAsNonRoot must not be turned off" % name)
    need(sc.get("runAsUser", 1) != 0, "%s: runs as root" % name)
    caps = sc.get("capabilities", {})
    need(caps.get("drop") == ["ALL"], "%s: capabilities must drop ALL" % name)
    need(not caps.get("add"), "%s: no capability may be added" % name)
    res = c.get("resources", {})
    for part in ("requests", "limits"):
        for r in ("cpu", "memory"):
            need(r in res.get(part, {}), "%s: no %s.%s" % (name, part, r))


def check_probes(name, c, listen_port):
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for probe in ("livenessProbe", "readinessProbe"):
        g = c.get(probe, {}).get("httpGet")
        need(g, "%s: no %s httpGet" % (name, probe))
        need(g.get("path") == "/healthz", "%s: %s must GET /healthz" % (name, probe))
        port = ports.get(g["port"], g["port"])
        need(port == listen_port, "%s: %s port %s is not http.listen's %s"
             % (name, probe, g["port"], listen_port))


def config_of(c, mounts, vols, cms):
    args = c.get("args", [])
    need("--config" in args, "%s: no --config argument" % c["name"])
    path = args[args.index("--config") + 1]
    d, f = os.path.split(path)
    m = mounts.get(d)
    need(m, "%s: --config %s is in no mount" % (c["name"], path))
    cm_name = vols[m["name"]].get("configMap", {}).get("name")
    need(cm_name in cms, "%s: --config %s is not in a ConfigMap of this file" % (c["name"], path))
    data = cms[cm_name].get("data", {})
    need(f in data, "%s: ConfigMap %s has no %s" % (c["name"], cm_name, f))
    return path, json.loads(data[f])


def check_deployment(dep, cms, sas, pvcs, out):
    name = dep["metadata"]["name"]
    spec = dep["spec"]
    tmpl = spec["template"]
    labels = tmpl["metadata"].get("labels", {})
    sel = spec["selector"]["matchLabels"]
    need(sel and sel.items() <= labels.items(), "%s: selector does not match its pods" % name)
    pod = tmpl["spec"]
    need(pod.get("serviceAccountName") in sas, "%s: its ServiceAccount is not defined" % name)
    psc = pod.get("securityContext", {})
    need(psc.get("runAsNonRoot") is True, "%s: pod runAsNonRoot must be true" % name)
    need(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
         "%s: pod seccompProfile must be RuntimeDefault" % name)
    for h in ("hostNetwork", "hostPID", "hostIPC"):
        need(not pod.get(h, False), "%s: %s" % (name, h))
    vols = {v["name"]: v for v in pod["volumes"]}
    for v in vols.values():
        need("hostPath" not in v, "%s: hostPath volume %s" % (name, v["name"]))
        if "configMap" in v:
            need(v["configMap"]["name"] in cms, "%s: ConfigMap %s is not defined"
                 % (name, v["configMap"]["name"]))
        if "persistentVolumeClaim" in v:
            need(v["persistentVolumeClaim"]["claimName"] in pvcs, "%s: PVC %s is not defined"
                 % (name, v["persistentVolumeClaim"]["claimName"]))
    for c in pod["containers"]:
        cname = "%s/%s" % (name, c["name"])
        check_container_security(cname, c)
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        for m in mounts.values():
            need(m["name"] in vols, "%s: mount of unknown volume %s" % (cname, m["name"]))
            if "configMap" in vols[m["name"]]:
                need(m.get("readOnly") is True, "%s: ConfigMap mount %s must be readOnly"
                     % (cname, m["mountPath"]))
        for e in c.get("env", []):
            ref = e.get("valueFrom", {})
            need("value" not in e or "PASSWORD" not in e["name"],
                 "%s: %s is written in the manifest: take it from a Secret" % (cname, e["name"]))
            if "secretKeyRef" in ref:
                need(ref["secretKeyRef"]["name"].startswith("damselfly-bus-"),
                     "%s: unexpected Secret %s" % (cname, ref["secretKeyRef"]["name"]))
        binary = os.path.basename(c["command"][0])
        need(binary in DAEMONS, "%s: %s is not a Damselfly daemon" % (cname, binary))
        path, cfg = config_of(c, mounts, vols, cms)
        listen = cfg.get("http", {}).get("listen", "")
        need(listen, "%s: http.listen is not set (probes need it)" % cname)
        need(not listen.startswith("127."), "%s: http.listen %s is loopback: probes cannot reach it"
             % (cname, listen))
        check_probes(cname, c, int(listen.rsplit(":", 1)[1]))
        out.append({"deployment": name, "container": c, "binary": binary, "config": cfg,
                    "mounts": mounts, "vols": vols, "pod": pod})


def rbac_grants(docs, ns):
    """{service account: {(group, resource, name, verb)}} from the roles bound to it."""
    roles = {("Role", d["metadata"]["name"]): d for d in docs if d["kind"] == "Role"}
    roles.update({("ClusterRole", d["metadata"]["name"]): d for d in docs
                  if d["kind"] == "ClusterRole"})
    grants = {}
    for b in docs:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        ref = b["roleRef"]
        role = roles.get((ref["kind"], ref["name"]))
        need(role, "%s %s binds an undefined %s %s" % (b["kind"], b["metadata"]["name"],
                                                       ref["kind"], ref["name"]))
        for s in b["subjects"]:
            need(s["kind"] == "ServiceAccount" and s.get("namespace") == ns,
                 "%s %s: subjects must be this namespace's ServiceAccounts"
                 % (b["kind"], b["metadata"]["name"]))
            g = grants.setdefault(s["name"], set())
            for r in role["rules"]:
                need("nonResourceURLs" not in r, "%s: nonResourceURLs" % ref["name"])
                for grp in r["apiGroups"]:
                    for res in r["resources"]:
                        for n in r.get("resourceNames", ["*"]):
                            for v in r["verbs"]:
                                g.add((grp, res, n, v))
    return grants


def check_rbac(docs, ns, deps):
    grants = rbac_grants(docs, ns)
    for sa in set(grants) | set(WANT_RBAC):
        got, want = grants.get(sa, set()), WANT_RBAC.get(sa, set())
        need(got == want, "ServiceAccount %s: RBAC grants %s more and %s less than its calls"
             % (sa, sorted(got - want), sorted(want - got)))
    sas = by_kind(docs, "ServiceAccount")
    for dep in deps.values():
        pod = dep["spec"]["template"]["spec"]
        sa = pod["serviceAccountName"]
        mounts = pod.get("automountServiceAccountToken",
                         sas[sa].get("automountServiceAccountToken", True))
        need(bool(mounts) == bool(WANT_RBAC.get(sa)),
             "%s: a token must be mounted exactly when the account calls the API"
             % dep["metadata"]["name"])


def check_balancer_runner(ns, deps, run):
    bal = [r for r in run if r["binary"] == "damselfly-balancer"]
    col = [r for r in run if r["binary"] == "damselfly-collector"]
    need(len(bal) == 1 and len(col) == 1, "expected one balancer and one collector Deployment")
    bal, col = bal[0], col[0]
    need(deps[bal["deployment"]]["spec"].get("replicas") == 2, "the balancer must run 2 replicas")
    env = {e["name"]: e for e in bal["container"].get("env", [])}
    need(env.get("DAMSELFLY_ID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
         == "metadata.name", "each balancer replica needs its own id (DAMSELFLY_ID = pod name)")
    r = bal["config"].get("runner", {})
    need(r.get("kind") == "kubernetes", "runner.kind must be kubernetes")
    k = r.get("kubernetes", {})
    need(k.get("namespace", "default") == ns, "runner.kubernetes.namespace is not %s" % ns)
    need(k.get("deployment", COLLECTOR_DEPLOYMENT) == col["deployment"],
         "runner.kubernetes.deployment %s is not the collector Deployment %s"
         % (k.get("deployment", COLLECTOR_DEPLOYMENT), col["deployment"]))
    need(k.get("kind", "deployment") == "deployment", "runner.kubernetes.kind must be deployment")
    need(col["deployment"] == COLLECTOR_DEPLOYMENT, "the RBAC names %s" % COLLECTOR_DEPLOYMENT)
    # owns() takes ids that begin with DEPLOYMENT-: the pod's name, the collector's default id.
    need(not col["config"].get("id"), "the collector's id must be left to the pod's name")
    need(col["config"].get("mqtt", {}).get("follow_assign") is True,
         "the collectors must follow the balancer's assignment (mqtt.follow_assign)")
    need("replicas" not in deps[col["deployment"]]["spec"],
         "the collector Deployment must leave spec.replicas to the balancer")


def remap(v, mounts, root):
    if isinstance(v, dict):
        return {k: remap(x, mounts, root) for k, x in v.items()}
    if isinstance(v, list):
        return [remap(x, mounts, root) for x in v]
    if isinstance(v, str) and any(v == m or v.startswith(m.rstrip("/") + "/") for m in mounts):
        return root + v
    return v


def run_check(r, cms, build, work):
    """The daemon's --check on its ConfigMap, the pod's mounts laid out under work."""
    root = os.path.join(work, r["deployment"])
    for path, m in r["mounts"].items():
        d = root + path
        os.makedirs(d, exist_ok=True)
        v = r["vols"][m["name"]]
        if "configMap" in v:
            for f, text in cms[v["configMap"]["name"]].get("data", {}).items():
                open(os.path.join(d, f), "w").write(text)
    cfg_path = os.path.join(work, r["deployment"] + ".json")
    json.dump(remap(r["config"], list(r["mounts"]), root), open(cfg_path, "w"))
    env = {"PATH": "/usr/bin:/bin"}
    for e in r["container"].get("env", []):
        env[e["name"]] = e.get("value", "%s-5d9c7f-x2x4q" % r["deployment"]
                               if "fieldRef" in e.get("valueFrom", {}) else "stand-in")
    binary = os.path.join(build, DAEMONS[r["binary"]], r["binary"])
    need(os.access(binary, os.X_OK), "%s is not built" % binary)
    p = subprocess.run([binary, "--config", cfg_path, "--check"], env=env, capture_output=True,
                       text=True, timeout=60)
    need(p.returncode == 0, "%s --check on ConfigMap of %s: %s" % (r["binary"], r["deployment"],
                                                                 (p.stderr or p.stdout).strip()))
    need("not a configuration key" not in p.stderr, "%s: %s" % (r["deployment"], p.stderr.strip()))


def check_services(docs, deps):
    for svc in by_kind(docs, "Service").values():
        sel = svc["spec"]["selector"]
        pods = [d for d in deps.values()
                if sel.items() <= d["spec"]["template"]["metadata"].get("labels", {}).items()]
        need(pods, "Service %s selects no pod" % svc["metadata"]["name"])
        names = {p["name"] for d in pods for c in d["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            need(p["targetPort"] in names, "Service %s: targetPort %s is no container port"
                 % (svc["metadata"]["name"], p["targetPort"]))


def check_rules(cms, src):
    rules = cms.get("damselfly-alarm-rules", {}).get("data", {})
    need(rules, "no damselfly-alarm-rules ConfigMap")
    for f, text in rules.items():
        p = os.path.join(src, "deploy/alarm.d", f)
        need(os.path.exists(p) and open(p).read() == text,
             "damselfly-alarm-rules %s differs from deploy/alarm.d/%s" % (f, f))


def main():
    manifest, src, build, work = sys.argv[1:5]
    docs = load(manifest)
    ns = check_namespace(docs)
    cms, sas, pvcs = by_kind(docs, "ConfigMap"), by_kind(docs, "ServiceAccount"), \
        by_kind(docs, "PersistentVolumeClaim")
    deps = by_kind(docs, "Deployment")
    need(set(DAEMONS) <= set(deps), "missing Deployments: %s" % sorted(set(DAEMONS) - set(deps)))
    run = []
    for dep in deps.values():
        check_deployment(dep, cms, sas, pvcs, run)
    check_rbac(docs, ns, deps)
    check_balancer_runner(ns, deps, run)
    check_services(docs, deps)
    check_rules(cms, src)
    if build != "-":
        for r in run:
            run_check(r, cms, build, work)


if __name__ == "__main__":
    try:
        main()
    except Bad as e:
        print("manifest check: %s" % e, file=sys.stderr)
        sys.exit(1)
