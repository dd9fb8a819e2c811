#!/usr/bin/env python3
"""A test double of the Kubernetes API server: the subset the federation driver and kubectl
use, with the real paths, verbs, content types and bodies.

- discovery: /version, /api, /apis, /api/v1, /apis/<group>/<version> (legacy, non-aggregated)
- nodes: list, get, PATCH (strategic-merge-patch+json or merge-patch+json), dryRun=All
- pods: list (cluster-wide or per namespace) with fieldSelector=spec.nodeName=... and
  limit/continue paging, get, POST .../eviction (policy/v1): a PodDisruptionBudget refuses
  the pod named by --pdb-pod with 429 the first --pdb-refusals times; evicted pods carry a
  deletionTimestamp and disappear --delete-delay seconds later
- deployments (apps/v1) and machinedeployments (cluster.x-k8s.io/v1beta1): list, get, and
  the /scale subresource (GET, PATCH, PUT) with autoscaling/v1 Scale objects
- server-side printing: meta.k8s.io/v1 Table when the client asks for as=Table (kubectl get)
- HTTPS with bearer-token auth, and client certificates signed by --client-ca
- every request is appended to --log as one JSON line (method, path, query, content type,
  body, auth, status)
- faults for error tests (no auth): POST /__double/fault {"method": "PATCH", "path":
  "/api/v1/nodes/n2", "status": 503, "body": "...", "hang": 5, "times": 2} answers the next
  "times" requests whose path (query included) starts with "path"; DELETE clears them

Fixture: nodes n1 and n2 (--nodes renames them); on n1 two ReplicaSet pods (web-1, web-2:
the PDB-protected one), a bare pod (batch-1), a DaemonSet pod and a mirror pod; on n2 one
pod; deployment
default/web (2 replicas); machinedeployment default/md-0 (3 replicas).
"""
import argparse
import base64
import copy
import datetime
import json
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

START = time.time()
LOCK = threading.Lock()
RV = [1000]


def now_iso(t=None):
    t = time.time() if t is None else t
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_rv():
    RV[0] += 1
    return str(RV[0])


def meta(name, ns=None, **extra):
    m = {"name": name, "uid": "uid-%s-%s" % (ns or "cluster", name), "resourceVersion": next_rv(),
         "creationTimestamp": now_iso(START - 3600)}
    if ns:
        m["namespace"] = ns
    m.update(extra)
    return m


def node(name):
    return {"kind": "Node", "apiVersion": "v1", "metadata": meta(name, labels={"kubernetes.io/hostname": name}),
            "spec": {"podCIDR": "10.244.0.0/24"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                       "nodeInfo": {"kubeletVersion": "v1.30.0", "osImage": "Debian GNU/Linux 12",
                                    "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.7.0"},
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}}


def pod(ns, name, node_name, owner=None, mirror=False):
    m = meta(name, ns, labels={"app": name.split("-")[0]})
    if owner:
        m["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                 "uid": "uid-owner-" + owner[1], "controller": True}]
    if mirror:
        m["annotations"] = {"kubernetes.io/config.mirror": "mirror-hash", "kubernetes.io/config.source": "file"}
    return {"kind": "Pod", "apiVersion": "v1", "metadata": m,
            "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": "Running"}}


def deployment(ns, name, replicas):
    d = {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": meta(name, ns, generation=1),
         "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"containers": [{"name": name, "image": "nginx:1.25"}]}}},
         "status": {}}
    settle(d)
    return d


def machinedeployment(ns, name, replicas):
    d = {"kind": "MachineDeployment", "apiVersion": "cluster.x-k8s.io/v1beta1",
         "metadata": meta(name, ns, generation=1),
         "spec": {"clusterName": "c1", "replicas": replicas,
                  "selector": {"matchLabels": {"cluster.x-k8s.io/deployment-name": name}},
                  "template": {"spec": {"clusterName": "c1", "version": "v1.30.0"}}},
         "status": {}}
    settle(d)
    return d


def settle(obj):
    """The controllers, instantly: the status follows the spec."""
    r = obj["spec"]["replicas"]
    obj["status"].update({"observedGeneration": obj["metadata"].get("generation", 1), "replicas": r,
                          "readyReplicas": r, "availableReplicas": r, "updatedReplicas": r})
    if obj["kind"] == "MachineDeployment":
        obj["status"]["phase"] = "Running"


class State:
    def __init__(self, a):
        n1, n2 = a.nodes.split(",")
        self.nodes = {n: node(n) for n in (n1, n2)}
        self.pods = {}
        for p in (pod("default", "web-1", n1, ("ReplicaSet", "web-5d4f")),
                  pod("default", "web-2", n1, ("ReplicaSet", "web-5d4f")),
                  pod("default", "batch-1", n1),
                  pod("kube-system", "agent-" + n1, n1, ("DaemonSet", "agent")),
                  pod("kube-system", "kube-proxy-static-" + n1, n1, ("Node", n1), mirror=True),
                  pod("default", "web-3", n2, ("ReplicaSet", "web-5d4f"))):
            self.pods[(p["metadata"]["namespace"], p["metadata"]["name"])] = p
        self.deploy = {("default", "web"): deployment("default", "web", 2)}
        # kubectl drain looks up the DaemonSet of a DaemonSet pod before leaving it alone.
        self.daemonsets = {("kube-system", "agent"): {
            "kind": "DaemonSet", "apiVersion": "apps/v1", "metadata": meta("agent", "kube-system"),
            "spec": {"selector": {"matchLabels": {"app": "agent"}}}, "status": {"desiredNumberScheduled": 2}}}
        self.mds = {("default", "md-0"): machinedeployment("default", "md-0", 3)}
        self.pdb_pod = tuple(a.pdb_pod.split("/", 1))
        self.pdb_left = a.pdb_refusals
        self.delete_delay = a.delete_delay
        self.deleting = {}  # (ns, name) -> time it disappears

    def purge(self):
        t = time.time()
        for k, when in list(self.deleting.items()):
            if when <= t:
                self.pods.pop(k, None)
                del self.deleting[k]


ARGS = None
STATE = None
LOG_LOCK = threading.Lock()
FAULTS = []

# ---- discovery -------------------------------------------------------------------------

GROUPS = {
    ("apps", "v1"): [
        {"name": "deployments", "singularName": "deployment", "namespaced": True, "kind": "Deployment",
         "verbs": ["get", "list", "patch", "update"], "shortNames": ["deploy"], "categories": ["all"]},
        {"name": "deployments/scale", "singularName": "", "namespaced": True, "group": "autoscaling",
         "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]},
        {"name": "daemonsets", "singularName": "daemonset", "namespaced": True, "kind": "DaemonSet",
         "verbs": ["get", "list"], "shortNames": ["ds"], "categories": ["all"]},
    ],
    ("cluster.x-k8s.io", "v1beta1"): [
        {"name": "machinedeployments", "singularName": "machinedeployment", "namespaced": True,
         "kind": "MachineDeployment", "verbs": ["get", "list", "patch", "update"], "shortNames": ["md"],
         "categories": ["cluster-api"]},
        {"name": "machinedeployments/scale", "singularName": "", "namespaced": True, "group": "autoscaling",
         "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]},
    ],
    ("policy", "v1"): [
        {"name": "poddisruptionbudgets", "singularName": "poddisruptionbudget", "namespaced": True,
         "kind": "PodDisruptionBudget", "verbs": ["get", "list"], "shortNames": ["pdb"]},
    ],
}
CORE = [
    {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node",
     "verbs": ["get", "list", "patch", "update"], "shortNames": ["no"]},
    {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
     "verbs": ["get", "list"], "shortNames": ["po"], "categories": ["all"]},
    {"name": "pods/eviction", "singularName": "", "namespaced": True, "group": "policy", "version": "v1",
     "kind": "Eviction", "verbs": ["create"]},
    {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
     "verbs": ["get", "list"], "shortNames": ["ns"]},
]


def discovery(path):
    if path == "/version":
        return {"major": "1", "minor": "30", "gitVersion": "v1.30.0", "gitCommit": "test-double",
                "gitTreeState": "clean", "buildDate": "2024-04-17T00:00:00Z", "goVersion": "go1.22.2",
                "compiler": "gc", "platform": "linux/amd64"}
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
    if path == "/apis":
        groups = []
        for (g, v) in GROUPS:
            gv = {"groupVersion": "%s/%s" % (g, v), "version": v}
            groups.append({"name": g, "versions": [gv], "preferredVersion": gv})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    if path == "/api/v1":
        return {"kind": "APIResourceList", "groupVersion": "v1", "resources": CORE}
    parts = path.split("/")
    if len(parts) == 4 and parts[1] == "apis" and (parts[2], parts[3]) in GROUPS:
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "%s/%s" % (parts[2], parts[3]),
                "resources": GROUPS[(parts[2], parts[3])]}
    if len(parts) == 3 and parts[1] == "apis":
        for (g, v) in GROUPS:
            if g == parts[2]:
                gv = {"groupVersion": "%s/%s" % (g, v), "version": v}
                return {"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": [gv],
                        "preferredVersion": gv}
    return None


# ---- errors, patches, tables ---------------------------------------------------------

class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details


def status_body(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure" if code >= 400 else "Success",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


def not_found(kind, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (kind, name), {"name": name, "kind": kind})


def merge_patch(target, patch):
    """RFC 7386, which strategic merge equals for the maps and scalars used here."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if k.startswith("$"):  # strategic-merge directives: none matter for these objects
            continue
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def age(obj):
    created = obj["metadata"].get("creationTimestamp")
    t = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    secs = int(time.time() - t.timestamp())
    if secs < 120:
        return "%ds" % secs
    if secs < 7200:
        return "%dm" % (secs // 60)
    return "%dh" % (secs // 3600)


def node_row(n):
    ready = [c for c in n["status"].get("conditions", []) if c["type"] == "Ready"]
    st = "Ready" if ready and ready[0]["status"] == "True" else "NotReady"
    if n["spec"].get("unschedulable"):
        st += ",SchedulingDisabled"  # the API server's node printer does exactly this
    return [n["metadata"]["name"], st, "<none>", age(n), n["status"]["nodeInfo"]["kubeletVersion"]]


def deploy_row(d):
    s = d["status"]
    return [d["metadata"]["name"], "%d/%d" % (s.get("readyReplicas", 0), d["spec"]["replicas"]),
            s.get("updatedReplicas", 0), s.get("availableReplicas", 0), age(d)]


def md_row(d):
    s = d["status"]
    return [d["metadata"]["name"], d["spec"]["clusterName"], d["spec"]["replicas"], s.get("readyReplicas", 0),
            s.get("updatedReplicas", 0), s.get("phase", ""), age(d), d["spec"]["template"]["spec"]["version"]]


def pod_row(p):
    phase = "Terminating" if p["metadata"].get("deletionTimestamp") else p["status"]["phase"]
    return [p["metadata"]["name"], "1/1", phase, 0, age(p)]


def col(name, typ="string", fmt=""):
    return {"name": name, "type": typ, "format": fmt, "description": name, "priority": 0}


TABLES = {
    "Node": ([col("Name", fmt="name"), col("Status"), col("Roles"), col("Age"), col("Version")], node_row),
    "Deployment": ([col("Name", fmt="name"), col("Ready"), col("Up-to-date", "integer"),
                    col("Available", "integer"), col("Age")], deploy_row),
    "MachineDeployment": ([col("Name", fmt="name"), col("Cluster"), col("Replicas", "integer"),
                           col("Ready", "integer"), col("Updated", "integer"), col("Phase"), col("Age"),
                           col("Version")], md_row),
    "Pod": ([col("Name", fmt="name"), col("Ready"), col("Status"), col("Restarts", "integer"), col("Age")],
            pod_row),
}


def as_table(kind, objs):
    cols, row = TABLES[kind]
    rows = []
    for o in objs:
        rows.append({"cells": row(o), "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                                 "metadata": o["metadata"]}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": str(RV[0])},
            "columnDefinitions": cols, "rows": rows}


def list_of(kind, api_version, objs, cont=""):
    m = {"resourceVersion": str(RV[0])}
    if cont:
        m["continue"] = cont
    return {"kind": kind + "List", "apiVersion": api_version, "metadata": m, "items": objs}


def scale_of(obj, group_kind):
    m = obj["metadata"]
    sel = ",".join("%s=%s" % kv for kv in obj["spec"]["selector"]["matchLabels"].items())
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                         "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
            "spec": {"replicas": obj["spec"]["replicas"]},
            "status": {"replicas": obj["status"].get("replicas", 0), "selector": sel}}


# ---- pods: selection and paging -------------------------------------------------------

def field_filter(selector):
    conds = []
    for term in filter(None, (selector or "").split(",")):
        neg = "!=" in term
        key, _, val = term.replace("!=", "=").replace("==", "=").partition("=")
        if key not in ("spec.nodeName", "metadata.name", "metadata.namespace", "status.phase"):
            raise ApiError(400, "BadRequest", 'field label not supported: %s' % key)
        conds.append((key, val, neg))

    def match(p):
        for key, val, neg in conds:
            a, b = key.split(".")
            if (p[a].get(b, "") == val) == neg:
                return False
        return True
    return match


def page(objs, q, what):
    """limit/continue paging: the token carries the offset, opaque to clients."""
    limit = int(q.get("limit", ["0"])[0] or 0)
    start = 0
    if q.get("continue", [""])[0]:
        try:
            tok = json.loads(base64.urlsafe_b64decode(q["continue"][0].encode()))
            start = int(tok["start"])
            assert tok["what"] == what
        except Exception:
            raise ApiError(400, "BadRequest", "continue key is not valid")
    items = objs[start:start + limit] if limit > 0 else objs[start:]
    end = start + len(items)
    cont = ""
    if limit > 0 and end < len(objs):
        cont = base64.urlsafe_b64encode(json.dumps({"start": end, "what": what}).encode()).decode()
    return items, cont


# ---- the handler -------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "k8s-api-double/1"

    def log_message(self, fmt, *args):  # the JSON request log is the record
        pass

    def setup(self):
        super().setup()
        self.peer_cert = None
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            try:
                self.request.do_handshake()
                self.peer_cert = self.request.getpeercert()
            except (ssl.SSLError, OSError) as e:
                # Clients refusing the certificate are part of the tests: one line, no trace
                # (and none for port probes that connect and hang up).
                if not isinstance(e, ssl.SSLEOFError):
                    print("TLS handshake failed: %s" % e, file=sys.stderr, flush=True)
                raise ConnectionAbortedError from None

    # plumbing
    def reply(self, code, obj, ctype="application/json"):
        data = json.dumps(obj, separators=(",", ":")).encode()  # compact, as the API server
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.status = code

    def record(self, body):
        entry = {"t": round(time.time() - START, 3), "method": self.command, "path": self.url.path,
                 "query": self.url.query, "content_type": self.headers.get("Content-Type", ""),
                 "accept": self.headers.get("Accept", ""), "auth": self.auth, "status": self.status,
                 "body": body}
        with LOG_LOCK, open(ARGS.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def authenticate(self):
        h = self.headers.get("Authorization", "")
        if h == "Bearer " + ARGS.token:
            return "bearer"
        if self.peer_cert:
            return "cert"
        return None

    def handle_any(self):
        self.url = urllib.parse.urlsplit(self.path)
        self.q = urllib.parse.parse_qs(self.url.query, keep_blank_values=True)
        self.status = 0
        n = int(self.headers.get("Content-Length", "0") or 0)
        raw = self.rfile.read(n) if n else b""
        body = raw.decode("utf-8", "replace")
        self.auth = self.authenticate()
        if self.url.path == "/__double/fault":
            return self.control_faults(raw)
        try:
            if self.inject():
                pass
            elif not self.auth:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            else:
                self.route(raw)
        except ApiError as e:
            self.reply(e.code, status_body(e.code, e.reason, e.message, e.details))
        except (ValueError, KeyError, TypeError) as e:
            self.reply(400, status_body(400, "BadRequest", "bad request: %s" % e))
        self.record(body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = handle_any

    def control_faults(self, raw):
        with LOCK:
            if self.command == "DELETE":
                FAULTS.clear()
            else:
                f = json.loads(raw)
                f.setdefault("times", 1)
                FAULTS.append(f)
        self.reply(200, {"faults": len(FAULTS)})

    def inject(self):
        with LOCK:
            for f in FAULTS:
                if f["times"] != 0 and self.command == f.get("method", self.command) and \
                        self.path.startswith(f["path"]):
                    f["times"] -= 1
                    break
            else:
                return False
        if f.get("hang"):
            time.sleep(f["hang"])
        body = f.get("body", status_body(f.get("status", 500), "InternalError", "injected failure"))
        data = body.encode() if isinstance(body, str) else json.dumps(body, separators=(",", ":")).encode()
        try:
            self.send_response(f.get("status", 500))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up waiting: that was the point
            self.close_connection = True
        self.status = f.get("status", 500)
        return True

    def wants_table(self):
        return "as=Table" in self.headers.get("Accept", "")

    def dry_run(self, body=None):
        if self.q.get("dryRun", [""])[0] == "All":
            return True
        opts = (body or {}).get("deleteOptions") or {}
        return "All" in (opts.get("dryRun") or [])

    def read_json(self, raw):
        try:
            return json.loads(raw or b"null")
        except json.JSONDecodeError as e:
            raise ApiError(400, "BadRequest", "body is not JSON: %s" % e)

    # routing
    def route(self, raw):
        path = self.url.path.rstrip("/") or "/"
        with LOCK:
            STATE.purge()
            if self.command == "GET":
                d = discovery(path)
                if d is not None:
                    return self.reply(200, d)
            parts = path.split("/")[1:]
            if parts[:2] == ["api", "v1"]:
                return self.core(parts[2:], raw)
            if parts[:3] == ["apis", "apps", "v1"] and parts[5:6] == ["daemonsets"]:
                return self.daemonset(parts[3:])
            if parts[:3] == ["apis", "apps", "v1"]:
                return self.scalable(parts[3:], raw, STATE.deploy, "Deployment", "apps/v1", "deployments")
            if parts[:3] == ["apis", "cluster.x-k8s.io", "v1beta1"]:
                return self.scalable(parts[3:], raw, STATE.mds, "MachineDeployment", "cluster.x-k8s.io/v1beta1",
                                     "machinedeployments")
            raise ApiError(404, "NotFound", "the server could not find the requested resource")

    def core(self, p, raw):
        if p[:1] == ["nodes"]:
            return self.nodes(p[1:], raw)
        if p == ["pods"] and self.command == "GET":
            return self.list_pods(None)
        if len(p) >= 3 and p[0] == "namespaces" and p[2] == "pods":
            ns = p[1]
            if len(p) == 3 and self.command == "GET":
                return self.list_pods(ns)
            key = (ns, p[3]) if len(p) > 3 else None
            if key not in STATE.pods:
                raise not_found("pods", p[3] if len(p) > 3 else "")
            if len(p) == 4 and self.command == "GET":
                pod = STATE.pods[key]
                return self.reply(200, as_table("Pod", [pod]) if self.wants_table() else pod)
            if len(p) == 5 and p[4] == "eviction" and self.command == "POST":
                return self.evict(key, self.read_json(raw))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def nodes(self, p, raw):
        if not p and self.command == "GET":
            items = sorted(STATE.nodes.values(), key=lambda n: n["metadata"]["name"])
            if self.wants_table():
                return self.reply(200, as_table("Node", items))
            return self.reply(200, list_of("Node", "v1", items))
        name = p[0]
        if name not in STATE.nodes:
            raise not_found("nodes", name)
        n = STATE.nodes[name]
        if len(p) == 1 and self.command == "GET":
            return self.reply(200, as_table("Node", [n]) if self.wants_table() else n)
        if len(p) == 1 and self.command == "PATCH":
            new = self.patched(n, raw)
            if not isinstance(new["spec"].get("unschedulable", False), bool):
                raise ApiError(422, "Invalid", "spec.unschedulable: must be a boolean")
            if not self.dry_run():
                new["metadata"]["resourceVersion"] = next_rv()
                STATE.nodes[name] = new
            return self.reply(200, new)
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def patched(self, obj, raw):
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype not in ("application/strategic-merge-patch+json", "application/merge-patch+json"):
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                           "accepted media types include: application/merge-patch+json, "
                           "application/strategic-merge-patch+json")
        patch = self.read_json(raw)
        if not isinstance(patch, dict):
            raise ApiError(400, "BadRequest", "patch is not a JSON object")
        new = merge_patch(obj, patch)
        new["metadata"]["name"] = obj["metadata"]["name"]
        return new

    def list_pods(self, ns):
        match = field_filter(self.q.get("fieldSelector", [""])[0])
        objs = sorted((p for (pns, _), p in STATE.pods.items() if ns is None or pns == ns),
                      key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
        objs = [p for p in objs if match(p)]
        items, cont = page(objs, self.q, "pods/%s/%s" % (ns, self.q.get("fieldSelector", [""])[0]))
        if self.wants_table():
            t = as_table("Pod", items)
            if cont:
                t["metadata"]["continue"] = cont
            return self.reply(200, t)
        return self.reply(200, list_of("Pod", "v1", items, cont))

    def evict(self, key, body):
        if not isinstance(body, dict) or body.get("kind") != "Eviction" or \
                body.get("apiVersion") not in ("policy/v1", "policy/v1beta1"):
            raise ApiError(400, "BadRequest", "expected a policy/v1 Eviction")
        if (body.get("metadata") or {}).get("name") != key[1]:
            raise ApiError(400, "BadRequest", "name in URL does not match name in Eviction object")
        p = STATE.pods[key]
        dry = self.dry_run(body)
        if p["metadata"].get("deletionTimestamp"):  # already going: nothing to refuse
            return self.reply(201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                    "code": 201})
        if key == STATE.pdb_pod and STATE.pdb_left > 0 and not dry:
            STATE.pdb_left -= 1
            raise ApiError(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.",
                           {"causes": [{"reason": "DisruptionBudget",
                                        "message": "The disruption budget web-pdb needs 1 healthy pods and has 1 currently"}]})
        if not dry:
            p["metadata"]["deletionTimestamp"] = now_iso()
            p["metadata"]["resourceVersion"] = next_rv()
            STATE.deleting[key] = time.time() + STATE.delete_delay
        return self.reply(201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})

    def daemonset(self, p):
        if len(p) != 4 or self.command != "GET":
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        ds = STATE.daemonsets.get((p[1], p[3]))
        if not ds:
            raise not_found("daemonsets.apps", p[3])
        return self.reply(200, ds)

    def scalable(self, p, raw, store, kind, api_version, plural):
        if len(p) < 3 or p[0] != "namespaces" or p[2] != plural:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        ns = p[1]
        if len(p) == 3 and self.command == "GET":
            items = [o for (ons, _), o in sorted(store.items()) if ons == ns]
            if self.wants_table():
                return self.reply(200, as_table(kind, items))
            return self.reply(200, list_of(kind, api_version, items))
        key = (ns, p[3])
        if key not in store:
            raise not_found(plural + (".apps" if kind == "Deployment" else ".cluster.x-k8s.io"), p[3])
        obj = store[key]
        if len(p) == 4 and self.command == "GET":
            return self.reply(200, as_table(kind, [obj]) if self.wants_table() else obj)
        if len(p) == 5 and p[4] == "scale":
            return self.scale(store, key, raw)
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def scale(self, store, key, raw):
        obj = store[key]
        cur = scale_of(obj, obj["kind"])
        if self.command == "GET":
            return self.reply(200, cur)
        if self.command == "PATCH":
            new = self.patched(cur, raw)
        elif self.command == "PUT":
            new = self.read_json(raw)
            if not isinstance(new, dict) or new.get("kind") != "Scale":
                raise ApiError(400, "BadRequest", "expected an autoscaling/v1 Scale")
        else:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        r = (new.get("spec") or {}).get("replicas", 0)
        if not isinstance(r, int) or isinstance(r, bool) or r < 0:
            raise ApiError(422, "Invalid", "spec.replicas: Invalid value: must be greater than or equal to 0")
        if self.dry_run():
            out = copy.deepcopy(cur)
            out["spec"]["replicas"] = r
            return self.reply(200, out)
        obj["spec"]["replicas"] = r
        obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
        obj["metadata"]["resourceVersion"] = next_rv()
        settle(obj)
        return self.reply(200, scale_of(obj, obj["kind"]))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            return  # a client that gave up or refused the certificate: expected in these tests
        super().handle_error(request, client_address)


def main():
    global ARGS, STATE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True, help="server certificate (PEM)")
    ap.add_argument("--key", required=True, help="server key (PEM)")
    ap.add_argument("--token", required=True, help="bearer token clients must send")
    ap.add_argument("--client-ca", help="CA whose client certificates are accepted instead of a token")
    ap.add_argument("--log", required=True, help="request log (JSON lines)")
    ap.add_argument("--nodes", default="n1,n2",
                    help="names of the two nodes, the first one holding the pods to drain")
    ap.add_argument("--pdb-pod", default="default/web-2")
    ap.add_argument("--pdb-refusals", type=int, default=2)
    ap.add_argument("--delete-delay", type=float, default=1.0)
    ap.add_argument("--lifetime", type=float, default=900, help="exit after this many seconds")
    ARGS = ap.parse_args()
    STATE = State(ARGS)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(ARGS.cert, ARGS.key)
    if ARGS.client_ca:
        ctx.load_verify_locations(ARGS.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    srv = Server(("127.0.0.1", ARGS.port), Handler)
    # The handshake runs in the request thread (setup), so one silent client cannot stall accept.
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    stop = threading.Timer(ARGS.lifetime, srv.shutdown)
    stop.daemon = True
    stop.start()
    print("listening on https://127.0.0.1:%d" % ARGS.port, flush=True)
    srv.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
