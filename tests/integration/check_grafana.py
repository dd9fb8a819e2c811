#!/usr/bin/env python3
"""Checks deploy/grafana against a real InfluxDB the way Grafana would use it.

usage: check_grafana.py GRAFANA_DIR INFLUX_URL [NAME=VALUE ...]

For every dashboard: the model is valid (schemaVersion, uid, unique panel ids, gridPos inside
24 columns), every datasource reference resolves to the provisioned datasource, every
variable's query returns values, and every panel's and annotation's query, with Grafana's
macros and the variables substituted (a NAME=VALUE argument picks that variable's value when
the query offers it, else the first value is taken), returns rows with values from the
provisioned database. Prints one line per failure and exits 1 if there is any.
"""
import glob
import json
import os
import re
import sys
import urllib.parse
import urllib.request

import yaml

INTERVAL = "10s"  # $__interval: the dsf_internal period, so rates have two points per group


def datasources(root):
    """uid -> (name, type, database) of the provisioned datasources."""
    out = {}
    for path in glob.glob(os.path.join(root, "provisioning", "datasources", "*.yaml")):
        for ds in yaml.safe_load(open(path)).get("datasources", []):
            out[ds["uid"]] = (ds["name"], ds["type"], ds.get("jsonData", {}).get("dbName"))
    return out


def influx(url, db, query):
    """The query's results, or raises with InfluxDB's error."""
    qs = urllib.parse.urlencode({"db": db, "q": query, "epoch": "ms"})
    with urllib.request.urlopen(f"{url}/query?{qs}", timeout=30) as r:
        body = json.load(r)
    if "error" in body:
        raise ValueError(body["error"])
    for res in body.get("results", []):
        if "error" in res:
            raise ValueError(res["error"])
    return body["results"]


def rows(results):
    """Rows with at least one value besides the time and the tags."""
    n = 0
    for res in results:
        for s in res.get("series", []):
            cols = s["columns"]
            for v in s.get("values", []):
                n += any(x is not None for c, x in zip(cols, v) if c != "time")
    return n


def substitute(query, dash, values):
    """Grafana's InfluxDB interpolation: macros, then $var, ${var} and [[var]]; inside a /regex/
    the value is escaped the way Grafana escapes it for a regex."""
    rng = dash.get("time", {}).get("from", "now-1h")
    query = query.replace("$timeFilter", f"time > {rng.replace('now-', 'now() - ')}")
    query = query.replace("$__interval_ms", str(int(INTERVAL[:-1]) * 1000))
    query = query.replace("$__interval", INTERVAL)

    def in_regex(m):
        return re.sub(r"\$(\w+)|\$\{(\w+)\}",
                      lambda v: re.escape(values.get(v.group(1) or v.group(2), v.group(0))),
                      m.group(0))

    query = re.sub(r"=~ /[^/]*/|!~ /[^/]*/", in_regex, query)
    return re.sub(r"\$(\w+)|\$\{(\w+)\}|\[\[(\w+)\]\]",
                  lambda v: values.get(v.group(1) or v.group(2) or v.group(3), v.group(0)), query)


def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


class Checker:
    def __init__(self, root, url, prefer):
        self.root, self.url, self.prefer = root, url, prefer
        self.ds = datasources(root)
        self.failures = []

    def fail(self, where, why):
        self.failures.append(f"{where}: {why}")

    def ref(self, where, ref):
        """A datasource reference names a provisioned uid; returns its database."""
        uid = ref.get("uid") if isinstance(ref, dict) else ref
        if uid not in self.ds:
            self.fail(where, f"datasource {ref!r} is not the provisioned one ({sorted(self.ds)})")
            return None
        return self.ds[uid][2]

    def model(self, name, d):
        for key in ("schemaVersion", "uid", "title"):
            if key not in d:
                self.fail(name, f"no {key}")
        ids = [p.get("id") for p in panels(d.get("panels", []))]
        dup = {i for i in ids if ids.count(i) > 1 or i is None}
        if dup:
            self.fail(name, f"panel ids not unique or missing: {sorted(map(str, dup))}")
        for p in panels(d.get("panels", [])):
            g = p.get("gridPos", {})
            x, w = g.get("x", -1), g.get("w", 0)
            if not (0 <= x and 0 < w and x + w <= 24 and g.get("h", 0) > 0):
                self.fail(f"{name} panel {p.get('title')!r}", f"gridPos {g} is outside 24 columns")

    def variables(self, name, d):
        values = {}
        for v in d.get("templating", {}).get("list", []):
            where = f"{name} variable {v.get('name')}"
            db = self.ref(where, v.get("datasource"))
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            try:
                res = influx(self.url, db, substitute(q, d, values))
            except Exception as e:
                self.fail(where, f"{q}: {e}")
                continue
            got = [r[1] for s in res[0].get("series", []) for r in s.get("values", [])]
            if not got:
                self.fail(where, f"{q}: no values")
                continue
            want = self.prefer.get(v["name"])
            values[v["name"]] = want if want in got else sorted(got)[0]
        return values

    def query(self, where, d, db, q, values):
        sq = substitute(q, d, values)
        if re.search(r"\$\{?\w|\[\[", sq):
            self.fail(where, f"unsubstituted variable in {sq}")
            return
        try:
            if not rows(influx(self.url, db, sq)):
                self.fail(where, f"no rows: {sq}")
        except Exception as e:
            self.fail(where, f"{e}: {sq}")

    def dashboard(self, path):
        name = os.path.basename(path)
        try:
            d = json.load(open(path))
        except ValueError as e:
            self.fail(name, f"not JSON: {e}")
            return 0
        self.model(name, d)
        values = self.variables(name, d)
        n = 0
        for p in panels(d.get("panels", [])):
            if p.get("type") == "row":
                continue
            where = f"{name} panel {p.get('title')!r}"
            db = self.ref(where, p.get("datasource"))
            if not p.get("targets"):
                self.fail(where, "no queries")
            for t in p.get("targets", []):
                tdb = self.ref(f"{where} {t.get('refId')}", t.get("datasource", p.get("datasource")))
                self.query(f"{where} {t.get('refId')}", d, tdb or db, t.get("query", ""), values)
                n += 1
        for a in d.get("annotations", {}).get("list", []):
            if a.get("builtIn"):
                continue
            where = f"{name} annotation {a.get('name')!r}"
            self.query(where, d, self.ref(where, a.get("datasource")), a.get("query", ""), values)
            n += 1
        return n


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    prefer = dict(a.split("=", 1) for a in sys.argv[3:])
    c = Checker(sys.argv[1], sys.argv[2].rstrip("/"), prefer)
    if not c.ds:
        sys.exit("no datasource provisioned")
    files = sorted(glob.glob(os.path.join(sys.argv[1], "dashboards", "*.json")))
    if not files:
        sys.exit("no dashboards")
    n = sum(c.dashboard(f) for f in files)
    for f in c.failures:
        print(f)
    print(f"{len(files)} dashboards, {n} queries, {len(c.failures)} failures")
    sys.exit(1 if c.failures else 0)


if __name__ == "__main__":
    main()
