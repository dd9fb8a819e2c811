#!/usr/bin/env python3
"""A test double of CB-Tumblebug's REST API (base /tumblebug, basic auth): the MCI and VM
calls the federation driver makes, with Tumblebug's paths, bodies and status strings.

v0.11 paths (and the v0.13 spelling in brackets, same handlers):
  POST   /ns/{ns}/mciDynamic                         [/ns/{ns}/infraDynamic]
  GET    /ns/{ns}/mci/{mci}                          [/infra/{id}]     TbMciInfo ("vm" [or "node"])
  DELETE /ns/{ns}/mci/{mci}?option=terminate
  POST   /ns/{ns}/mci/{mci}/vmDynamic                [/nodeGroupDynamic]
  GET    /ns/{ns}/mci/{mci}/vm/{vm}                  [/node/{id}]      TbVmInfo
  DELETE /ns/{ns}/mci/{mci}/vm/{vm}
  GET    /ns/{ns}/mci/{mci}/subgroup[/{sg}]          [/nodegroup]      {"output": [ids]}
  POST   /ns/{ns}/mci/{mci}/subgroup/{sg}  {"numVMsToAdd":"N"}  [{"numNodesToAdd": N}]
  GET    /ns/{ns}/control/mci/{mci}[/vm/{vm}]?action=suspend|resume|reboot|terminate
  GET    /readyz (no auth)

VMs move through Tumblebug's states (Creating, Suspending, Resuming, Rebooting, Terminating)
to Running, Suspended or Terminated after --transition-delay seconds, and Tumblebug's
transition rules are enforced (nothing on Terminated, in-progress states block, Suspended
allows only resume or terminate, repeating the current state is refused except reboot).

A subgroup request and a scale out may carry "userData" (a string: the cloud-init user data
of the VMs they create). Upstream's requests have no such field; damselfly-fed sends it, one
VM per request, when tumblebug.agent_cloud_init is set. It is kept with the VM, not shown.

Faults for error tests (no auth):  POST /__double/fault
  {"method": "GET", "path": "/tumblebug/ns/ns01/mci/m1/vm/g1-1", "status": 500,
   "body": "...", "hang": 30, "times": 1}
matches requests whose path (query included) starts with "path"; DELETE /__double/fault
clears them. Every request is appended to --log as one JSON line.
"""
import argparse
import base64
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
LOG_LOCK = threading.Lock()
ARGS = None
MCIS = {}  # (ns, mci) -> {"id", "description", "subgroups": [ids], "vms": {id: vm}}
FAULTS = []
SEQ = [0]

ACTIONS = {  # action -> (transient, final)
    "suspend": ("Suspending", "Suspended"),
    "resume": ("Resuming", "Running"),
    "reboot": ("Rebooting", "Running"),
    "terminate": ("Terminating", "Terminated"),
}
IN_PROGRESS = {"Creating", "Suspending", "Resuming", "Rebooting", "Terminating"}


class TbError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def settle(vm):
    """Tumblebug finishes an action some time after accepting it."""
    due = vm.pop("_due", None)
    if due and due[0] <= time.time():
        vm["status"] = due[1]
        vm["targetStatus"] = "None"
        vm["targetAction"] = "None"
        vm["systemMessage"] = ""
    elif due:
        vm["_due"] = due


def start(vm, transient, final, action):
    vm["status"] = transient
    vm["targetStatus"] = final
    vm["targetAction"] = action.capitalize()
    vm["_due"] = (time.time() + ARGS.transition_delay, final)


def new_vm(ns, mci, sg, idx, req):
    SEQ[0] += 1
    spec = req.get("commonSpec") or req.get("specId") or ""
    csp, region = (spec.split("+") + ["", ""])[:2]
    vm = {"id": "%s-%d" % (sg, idx), "name": "%s-%d" % (sg, idx), "uid": "d%08x" % SEQ[0],
          "cspResourceId": "i-%012x" % SEQ[0], "subGroupId": sg,
          "connectionName": req.get("connectionName") or "%s-%s" % (csp, region),
          "region": {"Region": region, "Zone": region + "a"},
          "location": {"display": region, "latitude": 37.5, "longitude": 127.0},
          "specId": spec, "imageId": req.get("commonImage") or req.get("imageId") or "",
          "publicIP": "203.0.113.%d" % (SEQ[0] % 250 + 1), "privateIP": "10.0.0.%d" % (SEQ[0] % 250 + 1),
          "sshPort": "22", "monAgentStatus": "notInstalled", "systemMessage": "",
          "createdTime": time.strftime("%Y-%m-%d %H:%M:%S"), "label": req.get("label") or {},
          "description": req.get("description") or "", "_userData": req.get("userData")}
    start(vm, "Creating", "Running", "create")
    return vm


def subgroup_size(req, node_style):
    v = req.get("nodeGroupSize" if node_style else "subGroupSize", "1")
    if isinstance(v, str) and v.isdigit():
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 100:
        raise TbError(400, "%s must be a number between 1 and 100" % ("nodeGroupSize" if node_style else "subGroupSize"))
    return v


def check_vm_req(req, node_style):
    if not isinstance(req, dict) or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", str(req.get("name", ""))):
        raise TbError(400, "invalid request: name must be lower-case letters, digits and '-'")
    spec_key, image_key = ("specId", "imageId") if node_style else ("commonSpec", "commonImage")
    if len(str(req.get(spec_key, "")).split("+")) != 3:
        raise TbError(400, "%s '%s' is not csp+region+spec" % (spec_key, req.get(spec_key, "")))
    if not req.get(image_key):
        raise TbError(400, "%s is required" % image_key)
    check_user_data(req)
    return subgroup_size(req, node_style)


def check_user_data(req):
    if not isinstance(req.get("userData", ""), str):
        raise TbError(400, "invalid request: userData must be a string")


def add_subgroup(m, ns, req, node_style):
    size = check_vm_req(req, node_style)
    sg = req["name"]
    if sg in m["subgroups"]:
        raise TbError(500, "The subGroup %s already exists" % sg)
    m["subgroups"].append(sg)
    for i in range(1, size + 1):
        vm = new_vm(ns, m["id"], sg, i, req)
        m["vms"][vm["id"]] = vm


def mci_status(m):
    vms = list(m["vms"].values())
    counts = {}
    for vm in vms:
        counts[vm["status"]] = counts.get(vm["status"], 0) + 1
    running = counts.get("Running", 0)
    if not vms:
        return "Empty:0 (R:0/0)"
    top = max(counts, key=lambda s: (counts[s], s == "Running"))
    prefix = top if counts[top] == len(vms) else "Partial-" + top
    return "%s:%d (R:%d/%d)" % (prefix, counts[top], running, len(vms))


def public_vm(vm, node_style):
    out = {k: v for k, v in vm.items() if not k.startswith("_")}
    if node_style:
        out["nodeGroupId"] = out.pop("subGroupId")
    return out


def mci_info(m, node_style):
    for vm in m["vms"].values():
        settle(vm)
    vms = [public_vm(vm, node_style) for _, vm in sorted(m["vms"].items())]
    counts = {"count" + s: sum(1 for v in vms if v["status"] == s)
              for s in ("Running", "Suspended", "Failed", "Terminated", "Creating", "Suspending",
                        "Resuming", "Rebooting", "Terminating", "Undefined")}
    counts["countTotal"] = len(vms)
    return {"id": m["id"], "name": m["id"], "status": mci_status(m), "statusCount": counts,
            "targetStatus": "None", "targetAction": "None", "installMonAgent": "no",
            "description": m["description"], "label": {}, "systemLabel": "",
            ("node" if node_style else "vm"): vms}


def control_vm(vm, action, force):
    settle(vm)
    st = vm["status"]
    transient, final = ACTIONS[action]
    if not force:
        if st == "Terminated":
            raise TbError(500, "vm %s is Terminated: no action is possible" % vm["id"])
        if st in IN_PROGRESS:
            raise TbError(500, "vm %s is %s: wait until it finishes" % (vm["id"], st))
        if st == "Suspended" and action not in ("resume", "terminate"):
            raise TbError(500, "vm %s is Suspended: only resume or terminate" % vm["id"])
        if st == final and action != "reboot":
            raise TbError(500, "vm %s is %s already" % (vm["id"], st))
    start(vm, transient, final, action)
    return "%s the VM" % transient


# ---- routing -------------------------------------------------------------------------------

WORDS = {"infra": "mci", "node": "vm", "nodegroup": "subgroup", "nodeGroupDynamic": "vmDynamic",
         "infraDynamic": "mciDynamic"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tumblebug-double/1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, obj):
        data = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.status = code

    def record(self, body):
        entry = {"t": round(time.time() - START, 3), "method": self.command, "path": self.url.path,
                 "query": self.url.query, "content_type": self.headers.get("Content-Type", ""),
                 "user": self.user, "status": self.status, "body": body}
        with LOG_LOCK, open(ARGS.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def basic_user(self):
        h = self.headers.get("Authorization", "")
        if not h.startswith("Basic "):
            return None
        try:
            user, _, pw = base64.b64decode(h[6:]).decode().partition(":")
        except Exception:
            return None
        return user if (user, pw) == (ARGS.user, ARGS.password) else None

    def handle_any(self):
        self.url = urllib.parse.urlsplit(self.path)
        self.q = urllib.parse.parse_qs(self.url.query)
        self.status = 0
        n = int(self.headers.get("Content-Length", "0") or 0)
        raw = self.rfile.read(n) if n else b""
        self.user = None
        if self.url.path.startswith("/__double/"):
            return self.control_faults(raw)
        self.user = self.basic_user()
        try:
            if self.inject():
                pass
            elif self.url.path == "/tumblebug/readyz":
                self.reply(200, {"message": "CB-Tumblebug is ready"})
            elif not self.user:
                raise TbError(401, "Unauthorized")
            else:
                self.route(raw)
        except TbError as e:
            self.reply(e.code, {"message": e.message})
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            self.reply(400, {"message": "invalid request: %s" % e})
        self.record(raw.decode("utf-8", "replace"))

    do_GET = do_POST = do_PUT = do_DELETE = handle_any

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
        body = f.get("body", {"message": "injected failure"})
        try:
            self.reply(f.get("status", 500), body.encode() if isinstance(body, str) else body)
        except OSError:  # the client gave up waiting: that was the point
            self.close_connection = True
        return True

    def read_json(self, raw):
        try:
            return json.loads(raw or b"{}")
        except json.JSONDecodeError as e:
            raise TbError(400, "request body is not JSON: %s" % e)

    def route(self, raw):
        p = self.url.path.split("/")[1:]
        if p[:2] != ["tumblebug", "ns"] or len(p) < 4:
            raise TbError(404, "Not Found")
        node_style = p[3] in ("infra", "infraDynamic") or (p[3] == "control" and p[4:5] == ["infra"])
        p = [WORDS.get(w, w) for w in p]
        ns = p[2]
        with LOCK:
            if p[3] == "mciDynamic" and self.command == "POST":
                return self.create_mci(ns, self.read_json(raw), node_style)
            if p[3] == "control" and len(p) >= 6 and p[4] == "mci" and self.command == "GET":
                return self.control(ns, p[5], p[7] if len(p) == 8 else None, node_style)
            if p[3] == "mci" and len(p) >= 5:
                return self.mci(ns, p[4], p[5:], raw, node_style)
        raise TbError(404, "Not Found")

    def find(self, ns, mci):
        m = MCIS.get((ns, mci))
        if not m:
            raise TbError(404, "The mci %s does not exist." % mci)
        return m

    def find_vm(self, m, vm):
        v = m["vms"].get(vm)
        if not v:
            raise TbError(404, "The vm %s does not exist." % vm)
        settle(v)
        return v

    def create_mci(self, ns, req, node_style):
        name = req.get("name", "")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
            raise TbError(400, "invalid request: name")
        if (ns, name) in MCIS:
            raise TbError(500, "The mci %s already exists." % name)
        reqs = req.get("nodeGroups" if node_style else "vm")
        if not isinstance(reqs, list) or not reqs:
            raise TbError(400, "invalid request: %s must list subgroups" % ("nodeGroups" if node_style else "vm"))
        m = {"id": name, "description": req.get("description", ""), "subgroups": [], "vms": {}}
        for r in reqs:
            add_subgroup(m, ns, r, node_style)
        MCIS[(ns, name)] = m
        return self.reply(200, mci_info(m, node_style))

    def control(self, ns, mci, vm, node_style):
        action = self.q.get("action", [""])[0]
        if action not in ACTIONS:
            raise TbError(400, "'action' should be one of these: suspend, resume, reboot, terminate, refine")
        force = self.q.get("force", [""])[0] == "true"
        m = self.find(ns, mci)
        if vm:
            msg = control_vm(self.find_vm(m, vm), action, force)
        else:
            for v in m["vms"].values():
                msg = control_vm(v, action, force)
        return self.reply(200, {"message": msg})

    def mci(self, ns, mci, rest, raw, node_style):
        m = self.find(ns, mci)
        if not rest:
            if self.command == "GET":
                if self.q.get("option", [""])[0] == "id":
                    return self.reply(200, {"output": sorted(m["vms"])})
                return self.reply(200, mci_info(m, node_style))
            if self.command == "DELETE":
                if self.q.get("option", [""])[0] != "terminate" and \
                        any(v["status"] not in ("Terminated", "Failed") for v in m["vms"].values()):
                    raise TbError(500, "mci %s has VMs that are not terminated" % mci)
                del MCIS[(ns, mci)]
                return self.reply(200, {"message": "Deleted the mci %s" % mci})
        elif rest == ["vmDynamic"] and self.command == "POST":
            add_subgroup(m, ns, self.read_json(raw), node_style)
            return self.reply(200, mci_info(m, node_style))
        elif rest[0] == "vm" and len(rest) == 2:
            v = self.find_vm(m, rest[1])
            if self.command == "GET":
                return self.reply(200, public_vm(v, node_style))
            if self.command == "DELETE":
                del m["vms"][rest[1]]
                return self.reply(200, {"message": "Deleted the VM info"})
        elif rest[0] == "subgroup":
            return self.subgroup(ns, m, rest[1:], raw, node_style)
        raise TbError(404, "Not Found")

    def subgroup(self, ns, m, rest, raw, node_style):
        if not rest and self.command == "GET":
            return self.reply(200, {"output": list(m["subgroups"])})
        sg = rest[0]
        if sg not in m["subgroups"]:
            raise TbError(404, "The subGroup %s does not exist." % sg)
        if self.command == "GET":
            return self.reply(200, {"output": sorted(v for v in m["vms"] if m["vms"][v]["subGroupId"] == sg)})
        if self.command == "POST":
            req = self.read_json(raw)
            n = req.get("numNodesToAdd" if node_style else "numVMsToAdd")
            if isinstance(n, str) and n.isdigit():
                n = int(n)
            if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 100:
                raise TbError(400, "%s must be a number between 1 and 100" %
                              ("numNodesToAdd" if node_style else "numVMsToAdd"))
            members = [v for v in m["vms"].values() if v["subGroupId"] == sg]
            check_user_data(req)
            tmpl = {"commonSpec": members[0]["specId"] if members else "",
                    "commonImage": members[0]["imageId"] if members else "",
                    "connectionName": members[0]["connectionName"] if members else "",
                    "userData": req.get("userData")}
            top = max([int(v["id"].rsplit("-", 1)[1]) for v in members] + [0])
            for i in range(top + 1, top + 1 + n):
                vm = new_vm(ns, m["id"], sg, i, tmpl)
                m["vms"][vm["id"]] = vm
            return self.reply(200, mci_info(m, node_style))
        raise TbError(404, "Not Found")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError)):
            return  # a client that gave up or refused the certificate: expected in these tests
        super().handle_error(request, client_address)


def main():
    global ARGS, START
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="default")
    ap.add_argument("--password", default="default")
    ap.add_argument("--log", required=True, help="request log (JSON lines)")
    ap.add_argument("--transition-delay", type=float, default=0.5)
    ap.add_argument("--lifetime", type=float, default=900, help="exit after this many seconds")
    ARGS = ap.parse_args()
    START = time.time()
    srv = Server(("127.0.0.1", ARGS.port), Handler)
    stop = threading.Timer(ARGS.lifetime, srv.shutdown)
    stop.daemon = True
    stop.start()
    print("listening on http://127.0.0.1:%d/tumblebug" % ARGS.port, flush=True)
    srv.serve_forever()
    sys.exit(0)


START = time.time()
if __name__ == "__main__":
    main()
