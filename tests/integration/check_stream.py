#!/usr/bin/env python3
"""Checks a message log written by mosquitto_sub -V 5 -F '%t|%r|%P|%x'.

Usage: check_stream.py LOG --ns NS --mci MCI --vm VM [--buckets B] [--min N]
       [--expect-missing N] [--report]
Verifies the topic is the bucket topic, every line carries the identity tags, the
timestamps increase, and seq runs without gaps (or with exactly --expect-missing gaps).
"""
import argparse
import sys


def fnv1a32(data):
    h = 2166136261
    for b in data:
        h ^= b
        h = (h * 16777619) & 0xFFFFFFFF
    return h


def split_unescaped(s, sep):
    out, cur, i = [], [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur.append(s[i:i + 2])
            i += 2
            continue
        if c == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


def tags_of(line):
    head = split_unescaped(line, " ")[0]
    parts = split_unescaped(head, ",")
    return dict(p.split("=", 1) for p in parts[1:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--ns", required=True)
    ap.add_argument("--mci", required=True)
    ap.add_argument("--vm", required=True)
    ap.add_argument("--buckets", type=int, default=64)
    ap.add_argument("--min", type=int, default=1)
    ap.add_argument("--expect-missing", type=int, default=0)
    ap.add_argument("--boots", type=int, default=1,
                    help="agent runs expected, each with its own seq from 1, in order")
    args = ap.parse_args()

    key = f"{args.ns}/{args.mci}/{args.vm}"
    topic = f"dsf/m/{fnv1a32(key.encode()) % args.buckets}/{key}"
    seqs, boots, last_ts = [], [], 0
    errors = []
    for raw in open(args.log, encoding="utf-8", errors="replace"):
        raw = raw.rstrip("\n")
        if not raw.startswith("dsf/m/"):
            continue
        t, _retained, props, hexpayload = raw.split("|", 3)
        if t != topic:
            errors.append(f"message on {t}, expected {topic}")
            continue
        p = dict(kv.split(":", 1) for kv in props.split(" ") if ":" in kv)
        if p.get("fmt") != "lp":
            errors.append(f"fmt property {p.get('fmt')!r}")
        seqs.append((p["boot"], int(p["seq"])))
        if p["boot"] not in boots:
            boots.append(p["boot"])
        payload = bytes.fromhex(hexpayload).decode()
        for line in payload.strip().split("\n"):
            tags = tags_of(line)
            for k, v in (("ns", args.ns), ("mci", args.mci), ("vm", args.vm)):
                if tags.get(k) != v:
                    errors.append(f"line without {k}={v}: {line[:120]}")
                    break
            ts = int(line.rsplit(" ", 1)[1])
            if ts < last_ts:
                errors.append(f"timestamp went back: {ts} < {last_ts}")
            last_ts = max(last_ts, ts)
    if len(boots) != args.boots:
        errors.append(f"{len(boots)} boot ids, expected {args.boots}")
    # Replays may repeat a message, but what arrives first must be in order: runs one after
    # the other, and seq increasing within each run.
    first_seen, seen = [], set()
    for m in seqs:
        if m not in seen:
            seen.add(m)
            first_seen.append((boots.index(m[0]), m[1]))
    if first_seen != sorted(first_seen):
        errors.append("messages arrived out of order")
    missing, distinct = 0, len(seen)
    for boot in boots:
        run = sorted(s for b, s in seen if b == boot)
        missing += run[-1] - len(run)  # every run starts at seq 1
        print(f"boot {boot}: distinct={len(run)} first={run[0]} last={run[-1]}")
    if distinct < args.min:
        errors.append(f"only {distinct} distinct messages, expected at least {args.min}")
    if missing != args.expect_missing:
        errors.append(f"{missing} seq numbers missing, expected {args.expect_missing}")
    print(f"messages={len(seqs)} distinct={distinct} missing={missing} "
          f"duplicates={len(seqs) - distinct}")
    for e in errors[:20]:
        print("error:", e)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
