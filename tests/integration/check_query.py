#!/usr/bin/env python3
"""Known points for the monitoring query API and the answers they must give.

  check_query.py points NOW_S POINTS_JSON   line protocol (precision s) on stdout; the points,
                                            as written, saved to POINTS_JSON
  check_query.py check POINTS_JSON ANSWER FORM METRIC VM STAT PERIOD
                                            FORM: vm, mci or dragonfly; VM '' for mci. Exits 1,
                                            saying which row differs, when the answer is not
                                            what the points give.

cpu: utilization is 100 - usage_idle of cpu-total (cpu0 and another MCI's points are noise
that must not count); network: per-second rates between periods of each interface's last
counter, summed over the interfaces.
"""
import json
import sys
from datetime import datetime, timezone

NS = "ns1"
PERIODS = {"m": 60, "h": 3600, "d": 86400}


def make_points(now):
    t0 = now - 50
    cpu = {  # (mci, vm, cpu) -> [(t, usage_idle, usage_user)]
        ("m1", "v1", "cpu-total"): [(t0, 90, 5), (t0 + 10, 80, 10), (t0 + 20, 70, 15), (t0 + 30, 60, 20)],
        ("m1", "v2", "cpu-total"): [(t0, 50, 30), (t0 + 10, 40, 40)],
        ("m1", "a'b", "cpu-total"): [(t0 + 5, 25, 1)],
        ("m1", "v1", "cpu0"): [(t0 + 1, 0, 99)],
        ("m2", "v1", "cpu-total"): [(t0 + 2, 1, 98)],
    }
    net = {  # (mci, vm, interface) -> [(t, bytes_recv, bytes_sent)], 60 s apart: 3 periods of m
        ("m1", "v1", "eth0"): [(now - 170, 1000, 10), (now - 110, 7000, 70), (now - 50, 19000, 130)],
        ("m1", "v1", "eth1"): [(now - 170, 600, 0), (now - 110, 1200, 0), (now - 50, 1200, 60)],
        ("m1", "v2", "eth0"): [(now - 170, 0, 0), (now - 110, 3000, 600), (now - 50, 6000, 1200)],
    }
    lines = []
    for (mci, vm, c), rows in cpu.items():
        for t, idle, user in rows:
            lines.append("cpu,ns=%s,mci=%s,vm=%s,cpu=%s usage_idle=%s,usage_user=%s %d"
                         % (NS, mci, vm, c, idle, user, t))
    for (mci, vm, ifc), rows in net.items():
        for t, rx, tx in rows:
            lines.append("net,ns=%s,mci=%s,vm=%s,interface=%s bytes_recv=%di,bytes_sent=%di %d"
                         % (NS, mci, vm, ifc, rx, tx, t))
    pts = {"cpu": [[list(k), v] for k, v in cpu.items()], "net": [[list(k), v] for k, v in net.items()]}
    return "\n".join(lines) + "\n", pts


def bucket(t, period):
    return t - t % PERIODS[period]


def reduce(values, stat):
    if stat == "min":
        return min(values)
    if stat == "max":
        return max(values)
    if stat == "last":
        return values[-1]
    return sum(values) / len(values)


def cpu_per_vm(pts, mci, stat, period):
    """{vm: {bucket: {"cpu_utilization": x, "cpu_user": y}}}"""
    out = {}
    for (m, vm, c), rows in pts["cpu"]:
        if m != mci or c != "cpu-total":
            continue
        by = {}
        for t, idle, user in sorted(rows):
            by.setdefault(bucket(t, period), []).append((idle, user))
        flip = {"min": "max", "max": "min"}.get(stat, stat)
        out[vm] = {b: {"cpu_utilization": 100 - reduce([i for i, _ in s], flip),
                       "cpu_user": reduce([u for _, u in s], stat)} for b, s in by.items()}
    return out


def net_per_vm(pts, mci, period):
    out = {}
    for (m, vm, _), rows in pts["net"]:
        if m != mci:
            continue
        last = {}
        for t, rx, tx in sorted(rows):
            last[bucket(t, period)] = (rx, tx)
        bs = sorted(last)
        rows_out = out.setdefault(vm, {})
        for a, b in zip(bs, bs[1:]):
            dt = b - a
            rates = [(last[b][i] - last[a][i]) / dt for i in (0, 1)]
            if any(r < 0 for r in rates):
                continue
            row = rows_out.setdefault(b, {"bytes_in": 0, "bytes_out": 0})
            row["bytes_in"] += rates[0]
            row["bytes_out"] += rates[1]
    return out


def over_vms(per_vm, metric, stat):
    agg = {}
    for rows in per_vm.values():
        for b, row in rows.items():
            for k, v in row.items():
                agg.setdefault(b, {}).setdefault(k, []).append(v)
    if metric == "network":
        fn = sum
    else:
        fn = {"min": min, "max": max}.get(stat, lambda v: sum(v) / len(v))
    return {b: {k: fn(v) for k, v in row.items()} for b, row in agg.items()}


def epoch(s):
    return int(datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


def compare(what, got_rows, want):
    """got_rows: [{"time": ..., column: value}]; want: {bucket: {column: value}}."""
    got = {epoch(r["time"]): r for r in got_rows}
    if sorted(got) != sorted(want):
        sys.exit("%s: periods %s, expected %s" % (what, sorted(got), sorted(want)))
    for b, row in want.items():
        for k, v in row.items():
            g = got[b].get(k)
            if g is None or abs(g - v) > 1e-6:
                sys.exit("%s: %s at %d is %s, expected %s" % (what, k, b, g, v))


def as_dicts(columns, values):
    return [dict(zip(columns, row)) for row in values]


def check(points, answer, form, metric, vm, stat, period):
    pts = json.load(open(points))
    a = json.load(open(answer))
    per_vm = (net_per_vm(pts, "m1", period) if metric == "network"
              else cpu_per_vm(pts, "m1", stat, period))
    if form == "dragonfly":
        if a.get("name") != metric or a.get("tags") != {"nsId": NS, "mcisId": "m1", "vmId": vm}:
            sys.exit("not CB-Dragonfly's name and tags: %s" % a)
        compare("dragonfly " + vm, a["values"], per_vm.get(vm, {}))
        return
    for key, want in (("ns", NS), ("mci", "m1"), ("metric", metric), ("stat", stat), ("period", period)):
        if a.get(key) != want:
            sys.exit("%s is %r, expected %r" % (key, a.get(key), want))
    if form == "vm":
        if a.get("vm") != vm:
            sys.exit("vm is %r, expected %r" % (a.get("vm"), vm))
        compare("vm " + vm, as_dicts(a["columns"], a["values"]), per_vm.get(vm, {}))
        return
    if sorted(a["vms"]) != sorted(per_vm):
        sys.exit("VMs %s, expected %s" % (sorted(a["vms"]), sorted(per_vm)))
    for v, rows in per_vm.items():
        compare("mci, vm " + v, as_dicts(a["columns"], a["vms"][v]), rows)
    compare("mci over its VMs", as_dicts(a["columns"], a["values"]), over_vms(per_vm, metric, stat))


def main():
    if sys.argv[1] == "points":
        text, pts = make_points(int(sys.argv[2]))
        json.dump(pts, open(sys.argv[3], "w"))
        sys.stdout.write(text)
    else:
        check(*sys.argv[2:9])


if __name__ == "__main__":
    main()
