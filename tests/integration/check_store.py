#!/usr/bin/env python3
"""Compares what agents sent (a mosquitto_sub capture, '%t|%r|%P|%x' per message, or a file
of line protocol) with what InfluxDB 1.x stored: every (measurement, tag set, timestamp) sent
must be stored once, with the same field values. With --vm, the store is VictoriaMetrics
(URL is its base; DB is ignored): it keeps numeric fields as series named
{measurement}_{field} at millisecond precision, booleans as 0/1, and drops strings.

Usage: check_store.py URL DB CAPTURE [--lp] [--vm] [--measurements cpu,mem,...]
"""
import argparse
import json
import sys
import urllib.parse
import urllib.request


def split_unescaped(s, sep, limit=-1):
    out, cur, i = [], [], 0
    quoted = False
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur.append(s[i:i + 2])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        if c == sep and not quoted and (limit < 0 or len(out) < limit):
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


def unescape(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s) and s[i + 1] in ',= \\"':
            out.append(s[i + 1])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def parse_value(v):
    if v.startswith('"'):
        return unescape(v[1:-1])
    if v.endswith("i"):
        return int(v[:-1])
    if v in ("t", "T", "true", "True", "TRUE"):
        return True
    if v in ("f", "F", "false", "False", "FALSE"):
        return False
    return float(v)


def parse_line(line):
    head, fields, ts = split_unescaped(line, " ", 2)
    parts = split_unescaped(head, ",")
    meas = unescape(parts[0])
    tags = tuple(sorted((unescape(k), unescape(v)) for k, v in
                        (split_unescaped(p, "=", 1) for p in parts[1:])))
    fv = {}
    for kv in split_unescaped(fields, ","):
        k, v = split_unescaped(kv, "=", 1)
        fv[unescape(k)] = parse_value(v)
    return meas, tags, int(ts), fv


def sent_lines(path, lp):
    for raw in open(path, encoding="utf-8", errors="replace"):
        raw = raw.rstrip("\n")
        if lp:
            if raw and not raw.startswith("#"):
                yield raw
            continue
        if not raw.startswith("dsf/m/"):
            continue
        payload = bytes.fromhex(raw.split("|", 3)[3]).decode()
        yield from (l for l in payload.split("\n") if l)


def query(url, db, q):
    u = url + "/query?" + urllib.parse.urlencode({"db": db, "q": q, "epoch": "ns"})
    res = json.load(urllib.request.urlopen(u))["results"][0]
    if "error" in res:
        raise SystemExit(f"query {q!r}: {res['error']}")
    return res.get("series", [])


def numeric(fields):
    return {k: (1.0 if v is True else 0.0 if v is False else float(v))
            for k, v in fields.items() if not isinstance(v, str)}


def query_vm(url, meas):
    """{(meas, tags, ts_ms): {field: value}} from VictoriaMetrics' export API."""
    u = url + "/api/v1/export?" + urllib.parse.urlencode(
        {"match[]": '{__name__=~"%s_.+"}' % meas})
    got = {}
    for line in urllib.request.urlopen(u).read().decode().splitlines():
        s = json.loads(line)
        labels = dict(s["metric"])
        field = labels.pop("__name__")[len(meas) + 1:]
        tags = tuple(sorted(labels.items()))
        for ts, v in zip(s["timestamps"], s["values"]):
            got.setdefault((meas, tags, ts), {})[field] = v
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("db")
    ap.add_argument("capture")
    ap.add_argument("--lp", action="store_true")
    ap.add_argument("--vm", action="store_true")
    ap.add_argument("--measurements", default="")
    args = ap.parse_args()
    want = {}
    for line in sent_lines(args.capture, args.lp):
        meas, tags, ts, fields = parse_line(line)
        if args.measurements and meas not in args.measurements.split(","):
            continue
        if args.vm:
            ts, fields = ts // 1000000, numeric(fields)
        want[(meas, tags, ts)] = fields
    if not want:
        sys.exit("nothing was sent")
    errors, checked = [], 0
    for meas in sorted({k[0] for k in want}):
        series = [] if args.vm else query(args.url, args.db, f'SELECT * FROM "{meas}" GROUP BY *')
        got = query_vm(args.url, meas) if args.vm else {}
        for s in series:
            tags = tuple(sorted((k, v) for k, v in s.get("tags", {}).items() if v != ""))
            cols = s["columns"]
            for row in s["values"]:
                rec = dict(zip(cols, row))
                ts = rec.pop("time")
                got[(meas, tags, ts)] = {k: v for k, v in rec.items() if v is not None}
        for key, fields in want.items():
            if key[0] != meas:
                continue
            checked += 1
            if key not in got:
                errors.append(f"missing {key[0]} {dict(key[1])} at {key[2]}")
                continue
            for f, v in fields.items():
                g = got[key].get(f)
                same = (g == v) if not isinstance(v, float) else (
                    g is not None and abs(g - v) <= 1e-9 * max(1, abs(v)))
                if not same:
                    errors.append(f"{key[0]} {dict(key[1])} at {key[2]}: {f}={g!r}, sent {v!r}")
        extra = set(k for k in got if k[0] == meas) - set(want)
        if extra:
            errors.append(f"{len(extra)} stored {meas} points were never sent")
    print(f"{checked} points sent, compared with the store: {len(errors)} problems")
    for e in errors[:15]:
        print("error:", e)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
