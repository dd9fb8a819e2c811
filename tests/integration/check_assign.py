#!/usr/bin/env python3
"""Checks the balancer's assignments as collectors see them.

Reads a capture of `mosquitto_sub -F '%U %t %p'` on dsf/c/+/assign and dsf/c/+/hb (retained
copies first, then live messages, each with its arrival time) and replays it:

  owned IDS        the latest state: every bucket in exactly one retained assignment, that
                   of a member of IDS (space separated), each of which holds some and has
                   confirmed its assignment (a heartbeat with an epoch >= it). Prints the
                   owners as JSON.
  owned_among IDS the same, reading only the assignments of IDS (one pool of several, each
                   pool owning every bucket once)
  owned_at IDS T0  the first time after T0 (unix s) the state above held; prints the seconds
  assigned_at IDS T0  the same without waiting for the heartbeats' confirmation
  doubles LIMIT    no bucket in two assignments for longer than LIMIT seconds (a move's
                   give-before-take overlap) and none at the end.
"""
import json
import sys

B = 64


def replay(path):
    """Yields (time, assignments {id: (epoch, set)}, hb epochs {id: epoch}) after each line."""
    assign, hb = {}, {}
    with open(path, errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 2)
            if len(parts) < 3:
                continue
            t, topic, payload = float(parts[0]), parts[1], parts[2]
            seg = topic.split("/")
            if len(seg) != 4:
                continue
            if seg[3] == "assign" and payload == "":  # the retained copy cleared
                assign.pop(seg[2], None)
                continue
            try:
                o = json.loads(payload)
            except ValueError:
                continue
            if not isinstance(o, dict):
                continue
            if seg[3] == "assign" and isinstance(o.get("epoch"), int):
                if o["epoch"] >= assign.get(seg[2], (0, set()))[0]:
                    assign[seg[2]] = (o["epoch"], set(o.get("buckets", [])))
            elif seg[3] == "hb" and isinstance(o.get("epoch"), int):
                hb[seg[2]] = o["epoch"]
            yield t, assign, hb


def owners(assign):
    own = {}
    for cid, (_, bs) in assign.items():
        for b in bs:
            own.setdefault(b, []).append(cid)
    return own


def owned_ok(assign, hb, ids, confirmed=True):
    own = owners(assign)
    for b in range(B):
        if len(own.get(b, [])) != 1 or own[b][0] not in ids:
            return False
    if any(not assign.get(i, (0, set()))[1] for i in ids):
        return False  # a member of IDS holds nothing (yet)
    return not confirmed or all(hb.get(i, -1) >= assign.get(i, (0, set()))[0] for i in ids if i in assign)


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd in ("owned", "owned_among"):
        ids = set(sys.argv[3].split())
        state = None
        for _, a, h in replay(path):
            state = (a, h)
        if state and cmd == "owned_among":
            state = ({i: v for i, v in state[0].items() if i in ids}, state[1])
        if not state or not owned_ok(state[0], state[1], ids):
            sys.exit(1)
        print(json.dumps({b: o[0] for b, o in sorted(owners(state[0]).items())}))
    elif cmd in ("owned_at", "assigned_at"):
        ids, t0 = set(sys.argv[3].split()), float(sys.argv[4])
        for t, a, h in replay(path):
            if t >= t0 and owned_ok(a, h, ids, cmd == "owned_at"):
                print(f"{t - t0:.2f}")
                return
        sys.exit(1)
    elif cmd == "doubles":
        limit, since, worst = float(sys.argv[3]), {}, 0.0
        t = 0.0
        for t, a, _ in replay(path):
            own = owners(a)
            for b in range(B):
                if len(own.get(b, [])) > 1:
                    since.setdefault(b, t)
                    worst = max(worst, t - since[b])
                else:
                    since.pop(b, None)
        if since:
            print(f"buckets in two assignments at the end: {sorted(since)}")
            sys.exit(1)
        if worst > limit:
            print(f"a bucket was in two assignments for {worst:.2f} s")
            sys.exit(1)
        print(f"{worst:.2f}")


if __name__ == "__main__":
    main()
