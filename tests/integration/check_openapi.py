#!/usr/bin/env python3
"""schemas/openapi.yaml against the daemons (docs/api.md).

check_openapi.py validate SPEC
    the document is OpenAPI 3.x, every $ref resolves (also into schemas/*.json), every path
    parameter is declared (and only those), every path names its daemons (x-daemons) with
    matching servers and tags, every security scheme named exists.
check_openapi.py routes SPEC DAEMON ROUTES
    ROUTES is what `DAEMON --print-routes` printed: each registered route is documented for
    DAEMON and each documented path (but those marked x-status: planned) is registered, with
    its methods let through and public exactly where the spec says so; a planned path that
    is registered fails until its mark is removed.
check_openapi.py unauthorized SPEC DAEMON BASE_URL
    every operation of DAEMON that is not public answers 401 without credentials, with a
    wrong bearer token and with wrong basic credentials.
"""
import base64
import json
import os
import re
import sys
import urllib.error
import urllib.request

import yaml

DAEMONS = ("agent", "collector", "alarm", "control", "balancer", "scraper")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
WRITES = {"post", "put", "patch", "delete"}
PARAM = re.compile(r"\{([^}/]+)\}")
# The daemons listen on loopback: a proxy from the environment must not answer for them.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def load(path):
    with open(path) as f:
        return yaml.safe_load(f) if path.endswith((".yaml", ".yml")) else json.load(f)


def pointer(doc, frag):
    """The node at JSON pointer frag ("" is the whole document), or KeyError."""
    node = doc
    for part in frag.lstrip("/").split("/") if frag.strip("/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(frag)
    return node


def walk(node, where=""):
    """Yields (where, value) of every $ref under node."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield where, v
            else:
                yield from walk(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{where}/{i}")


class Refs:
    """Resolves $refs relative to the document that holds them, each file loaded once."""

    def __init__(self, spec_path):
        self.docs = {os.path.abspath(spec_path): load(spec_path)}
        self.errors = []

    def resolve(self, base, ref):
        file, _, frag = ref.partition("#")
        path = os.path.abspath(os.path.join(os.path.dirname(base), file)) if file else base
        if path not in self.docs:
            if not os.path.isfile(path):
                raise KeyError(f"no file {file}")
            self.docs[path] = load(path)
            self.check(path)
        return path, pointer(self.docs[path], frag)

    def check(self, path):
        for where, ref in walk(self.docs[path]):
            try:
                self.resolve(path, ref)
            except (KeyError, IndexError, ValueError) as e:
                self.errors.append(f"{os.path.basename(path)}{where}: $ref '{ref}' does not resolve ({e})")

    def deref(self, base, node):
        while isinstance(node, dict) and "$ref" in node:
            base, node = self.resolve(base, node["$ref"])
        return node


def operations(item):
    return {m: op for m, op in item.items() if m in METHODS}


def params_of(refs, base, where, items, errors):
    """The parameters of one list by (name, in), each once."""
    out = {}
    for p in (refs.deref(base, p) for p in items):
        key = (p.get("name"), p.get("in")) if isinstance(p, dict) else None
        if not key or key in out:
            errors.append(f"{where}: parameter {key} malformed or declared twice")
        out[key] = p
    return out


def check_params(refs, base, path, item, errors):
    names = PARAM.findall(path)
    shared = params_of(refs, base, path, item.get("parameters", []), errors)
    for m, op in operations(item).items():
        where = f"{m.upper()} {path}"
        params = {**shared, **params_of(refs, base, where, op.get("parameters", []), errors)}
        declared = {k[0] for k in params if k and k[1] == "path"}
        for n in names:
            if n not in declared:
                errors.append(f"{where}: path parameter '{n}' is not declared")
        for k, p in params.items():
            if k and k[1] == "path" and (k[0] not in names or p.get("required") is not True):
                errors.append(f"{where}: path parameter '{k[0]}' is not in the path or not "
                              "required: true")


def check_daemons(spec, path, item, errors):
    daemons = item.get("x-daemons")
    if not daemons or any(d not in DAEMONS for d in daemons):
        errors.append(f"{path}: x-daemons must list some of {', '.join(DAEMONS)} (has {daemons})")
        return
    descs = " ".join(s.get("description", "") for s in item.get("servers", []))
    urls = {s["url"] for s in spec.get("servers", [])}
    for s in item.get("servers", []):
        if s.get("url") not in urls:
            errors.append(f"{path}: server {s.get('url')} is not one of the document's servers")
    for d in daemons:
        if f"damselfly-{d}" not in descs:
            errors.append(f"{path}: x-daemons names {d}, its servers do not")
    if item.get("x-status", "planned") != "planned":
        errors.append(f"{path}: x-status is 'planned' or absent")
    for m, op in operations(item).items():
        tags = op.get("tags", [])
        if not (set(tags) & (set(daemons) | {"every daemon"})):
            errors.append(f"{m.upper()} {path}: no tag names its daemon")


def validate(spec_path):
    refs = Refs(spec_path)
    base = os.path.abspath(spec_path)
    spec = refs.docs[base]
    errors = []
    if not re.match(r"^3\.[01]\.\d+$", str(spec.get("openapi", ""))):
        errors.append(f"openapi: expected 3.0.x or 3.1.x, got {spec.get('openapi')!r}")
    if not (spec.get("info", {}).get("title") and spec.get("info", {}).get("version")):
        errors.append("info: title and version are required")
    if not spec.get("paths"):
        errors.append("no paths")
    refs.check(base)
    errors += refs.errors
    schemes = spec.get("components", {}).get("securitySchemes", {})
    tags = {t["name"] for t in spec.get("tags", [])}
    op_ids = set()
    for path, item in spec.get("paths", {}).items():
        if not path.startswith("/"):
            errors.append(f"{path}: a path starts with /")
        check_params(refs, base, path, item, errors)
        check_daemons(spec, path, item, errors)
        for m, op in operations(item).items():
            where = f"{m.upper()} {path}"
            if op.get("operationId") in op_ids or not op.get("operationId"):
                errors.append(f"{where}: operationId missing or not unique")
            op_ids.add(op.get("operationId"))
            if not op.get("responses"):
                errors.append(f"{where}: no responses")
            if set(op.get("tags", [])) - tags:
                errors.append(f"{where}: tags {set(op.get('tags', [])) - tags} are not declared")
            security = op.get("security", spec.get("security", []))
            for req in security:
                for name in req:
                    if name not in schemes:
                        errors.append(f"{where}: security scheme '{name}' is not declared")
            if security and "401" not in op.get("responses", {}):
                errors.append(f"{where}: needs authentication but documents no 401")
    return errors


def spec_paths(spec, daemon):
    return {p: item for p, item in spec["paths"].items() if daemon in item.get("x-daemons", [])}


def public(spec, op):
    return op.get("security", spec.get("security", [])) == []


def read_routes(path):
    routes = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            cells = line.rstrip("\n").split("\t")
            if len(cells) != 3 or cells[2] not in ("public", "auth"):
                raise SystemExit(f"{path}:{n}: expected PATH<TAB>METHODS<TAB>public|auth: {line!r}")
            routes.append({"path": cells[0], "methods": set(cells[1].lower().split(",")),
                           "public": cells[2] == "public"})
    return routes


def serving(routes, path):
    """The route a request for path reaches: the exact one, else the first prefix route."""
    for r in routes:
        if r["path"] == path:
            return r
    for r in routes:
        pre = r["path"][:-1] if r["path"].endswith("/*") else None
        if pre and path.startswith(pre) and len(path) > len(pre):
            return r
    return None


def compare(spec, daemon, routes):
    errors = []
    mine = spec_paths(spec, daemon)
    served = {}
    for path, item in mine.items():
        r = serving(routes, path)
        planned = item.get("x-status") == "planned"
        if r and planned:
            errors.append(f"{path}: {daemon} registers it ({r['path']}): drop its x-status: planned")
        elif not r and not planned:
            errors.append(f"{path}: documented for {daemon}, which does not register it")
        if not r:
            continue
        served.setdefault(r["path"], []).append(path)
        for m, op in operations(item).items():
            if m not in r["methods"]:
                errors.append(f"{m.upper()} {path}: documented, but {r['path']} takes only "
                              f"{','.join(sorted(r['methods'])).upper()}")
            if public(spec, op) != r["public"]:
                errors.append(f"{m.upper()} {path}: the spec says {'public' if public(spec, op) else 'authenticated'}"
                              f", {daemon} serves it {'public' if r['public'] else 'behind authentication'}")
    for r in routes:
        if r["path"] not in served:
            errors.append(f"{r['path']}: {daemon} registers it, the spec documents no path it serves")
        elif r["methods"] & WRITES and not any(
                operations(mine[p]).keys() & WRITES for p in served[r["path"]]):
            errors.append(f"{r['path']}: takes writes in {daemon}, the spec documents none under it")
    return errors


def fill(path):
    return PARAM.sub(lambda m: "dsf-test-" + m.group(1), path)


def status(url, method, headers):
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with OPENER.open(req, timeout=10) as resp:
            return resp.status, resp.headers
    except urllib.error.HTTPError as e:
        return e.code, e.headers


def unauthorized(spec, daemon, base_url):
    errors, calls, refused, planned = [], 0, 0, []
    wrong_basic = "Basic " + base64.b64encode(b"dsf:wrong-password").decode()
    for path, item in spec_paths(spec, daemon).items():
        for m, op in operations(item).items():
            if public(spec, op):
                continue
            url = base_url + fill(path)
            for what, headers in (("no credentials", {}),
                                  ("a wrong token", {"Authorization": "Bearer wrong-token-0123456789"}),
                                  ("wrong basic credentials", {"Authorization": wrong_basic})):
                code, hdrs = status(url, m.upper(), headers)
                calls += 1
                if code == 404 and item.get("x-status") == "planned":
                    planned.append(f"{m.upper()} {path}")
                    break
                refused += code == 401
                if code != 401:
                    errors.append(f"{m.upper()} {fill(path)} with {what}: {code}, expected 401")
                elif not hdrs.get("WWW-Authenticate"):
                    errors.append(f"{m.upper()} {fill(path)}: 401 without WWW-Authenticate")
    print(f"{daemon}: {calls} unauthenticated requests, {refused} refused with 401"
          + (f"; planned, not served yet: {', '.join(sorted(set(planned)))}" if planned else ""))
    if calls == 0:
        errors.append(f"{daemon}: the spec gives it no authenticated operation to try")
    return errors


def main(argv):
    if len(argv) < 3 or argv[1] not in ("validate", "routes", "unauthorized"):
        raise SystemExit(__doc__)
    cmd, spec_path = argv[1], argv[2]
    if cmd == "validate":
        errors = validate(spec_path)
    elif argv[3] not in DAEMONS:
        raise SystemExit(f"unknown daemon {argv[3]}")
    elif cmd == "routes":
        errors = compare(load(spec_path), argv[3], read_routes(argv[4]))
    else:
        errors = unauthorized(load(spec_path), argv[3], argv[4].rstrip("/"))
    for e in errors:
        print("ERROR:", e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
