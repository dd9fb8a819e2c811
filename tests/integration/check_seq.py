#!/usr/bin/env python3
"""Proves that every point dsf-bench-load --acks sent is in InfluxDB 1.x exactly once.

The generator's JSON line gives the schedule: agents bench-0000.. (ns "bench"), each sending
`messages` messages of `lines` series (cpu=cpu0..), message k (seq k) stamped start_ns +
(k - 1) * interval_ms, every line carrying seq=<k>i. Per agent series the store must hold one
point at each of those timestamps with that seq, and nothing else: a missing timestamp is a
lost point, one outside the schedule or with another seq a point written wrongly (a window
split between two collectors, a resend stamped anew). Points stored twice at one timestamp
overwrite each other in InfluxDB; the count per series still shows anything stored beside.

With --window W the collector aggregates cpu in W-second windows with the rule's seq=count
(or --fn sum): each window of a series must be one point at the window's start whose seq is
the number (the sum) of the schedule's messages in it; a window split between collectors,
or a message folded twice, shows as a wrong seq.

Checks again for up to --wait seconds while anything is missing, extra or wrong (collectors
may still be writing what they took). Prints one summary line; on failure the first --show
missing or wrong points too. Exit 0 only when nothing is missing, extra or wrong.

Usage: check_seq.py URL DB RESULT_JSON [--wait SECONDS] [--show N] [--measurement cpu]
                    [--window SECONDS [--fn count|sum]]
"""
import argparse
import json
import sys
import time
import urllib.parse
import urllib.request


def load_result(path):
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    lines = [ln for ln in text.splitlines() if ln.startswith("{")]
    if not lines:
        sys.exit(f"check_seq: no JSON line in {path}")
    r = json.loads(lines[-1])
    for key in ("agents", "lines", "messages", "interval_ms", "start_ns", "ns"):
        if key not in r:
            sys.exit(f"check_seq: {path} has no '{key}': not dsf-bench-load --acks output")
    return r


def query(url, db, q):
    """The series of a chunked query, the chunks of one series joined."""
    params = urllib.parse.urlencode({"db": db, "q": q, "epoch": "ns", "chunked": "true",
                                     "chunk_size": "10000"})
    series = {}
    with urllib.request.urlopen(f"{url}/query?{params}", timeout=60) as resp:
        for raw in resp:
            if not raw.strip():
                continue
            for res in json.loads(raw).get("results", []):
                if "error" in res:
                    sys.exit(f"check_seq: InfluxDB refused '{q}': {res['error']}")
                for s in res.get("series", []):
                    key = tuple(sorted(s.get("tags", {}).items()))
                    series.setdefault(key, []).extend(s["values"])
    return series


def stored_points(args, r):
    """{(vm, cpu): [(time_ns, seq), ...]} of the run's measurement and namespace."""
    end = r["start_ns"] + r["messages"] * r["interval_ms"] * 1000000
    q = (f'SELECT "seq" FROM "{args.measurement}" WHERE "ns" = \'{r["ns"]}\' '
         f'AND time >= {r["start_ns"] - 3600 * 10**9} AND time <= {end + 3600 * 10**9} '
         'GROUP BY "vm", "cpu"')
    out = {}
    for tags, values in query(args.url, args.db, q).items():
        t = dict(tags)
        out[(t.get("vm", ""), t.get("cpu", ""))] = [(v[0], v[1]) for v in values]
    return out


def expected(r, window_s, fn):
    """{(vm, cpu): {time_ns: seq}} of the schedule. With a window, one point per window at
    its start (windows aligned to the epoch, as the collector's), seq being the count or the
    sum of the seqs that fall in it."""
    step = r["interval_ms"] * 1000000
    sched = {r["start_ns"] + (k - 1) * step: k for k in range(1, r["messages"] + 1)}
    if window_s:
        w = int(window_s * 10**9)
        windows = {}
        for t, seq in sched.items():
            windows[t - t % w] = windows.get(t - t % w, 0) + (1 if fn == "count" else seq)
        sched = windows
    return {(f"bench-{a:04d}", f"cpu{s}"): sched
            for a in range(r["agents"]) for s in range(r["lines"])}


def compare(want, got):
    """missing [(series, time, seq)], extra [(series, time, seq)], wrong [(series, time, seq, want)]."""
    missing, extra, wrong = [], [], []
    for key in sorted(want):
        sched = want[key]
        have = {}
        for t, seq in got.get(key, []):
            if t in have or t not in sched:
                extra.append((key, t, seq))
            elif seq != sched[t]:
                wrong.append((key, t, seq, sched[t]))
            have[t] = seq
        missing += [(key, t, seq) for t, seq in sorted(sched.items()) if t not in have]
    for key in sorted(set(got) - set(want)):
        extra += [(key, t, seq) for t, seq in got[key]]
    return missing, extra, wrong


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("db")
    ap.add_argument("result", help="file holding dsf-bench-load --acks's JSON line, or -")
    ap.add_argument("--wait", type=float, default=30)
    ap.add_argument("--show", type=int, default=20)
    ap.add_argument("--measurement", default="cpu")
    ap.add_argument("--window", type=float, default=0,
                    help="seconds: the collector aggregates cpu in windows of this length")
    ap.add_argument("--fn", choices=("count", "sum"), default="count",
                    help="with --window: the aggregate rule's function of the seq field")
    args = ap.parse_args()
    r = load_result(args.result)
    want = expected(r, args.window, args.fn)
    total = sum(len(s) for s in want.values())
    deadline = time.monotonic() + args.wait
    while True:
        got = stored_points(args, r)
        missing, extra, wrong = compare(want, got)
        if not (missing or extra or wrong) or time.monotonic() >= deadline:
            break
        time.sleep(1)
    count = sum(len(v) for v in got.values())
    print(f"check_seq: {len(want)} series of {r['agents']} agents, {total} points expected, "
          f"{count} stored: {len(missing)} missing, {len(extra)} extra, {len(wrong)} wrong seq")
    for (vm, cpu), t, seq in missing[:args.show]:
        print(f"  missing {vm} {cpu} time {t} seq {seq}")
    for (vm, cpu), t, seq in extra[:args.show]:
        print(f"  extra   {vm} {cpu} time {t} seq {seq}")
    for (vm, cpu), t, seq, w in wrong[:args.show]:
        print(f"  wrong   {vm} {cpu} time {t} seq {seq}, expected {w}")
    if missing:
        by_vm = {}
        for (vm, _), _t, _seq in missing:
            by_vm[vm] = by_vm.get(vm, 0) + 1
        print(f"  points missing in {len(by_vm)} agents' series")
    sys.exit(1 if missing or extra or wrong else 0)


if __name__ == "__main__":
    main()
