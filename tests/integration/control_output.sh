#!/usr/bin/env bash
# The controller's audit records leave through control/output.c: into a real InfluxDB as
# dsf_action rows (tags, typed fields, the record's time), on a real mosquitto as the record's
# JSON on dsf/action/{ns}/{mci} (dsf/action/_/_ without one), and the ones a human must see to
# a webhook through the alarm engine's notifier: the healed and exhausted ends, the approval
# and the notify step told once, the breaker firing while open and resolved by its close (in
# a second run, as after a restart). A bus that is not there counts every record dropped.
. "$(dirname "$0")/lib.sh"
FEED="$DSF_BUILD/tests/tools/dsf-ctl-output-feed"
[ -x "$FEED" ] || fail "$FEED not built"

start_mosquitto
start_influxd
influx_create_db dsf
bg sink python3 "$DSF_SRC/tests/tools/notify_sink.py" "$WORK/hook.port" "$WORK/hook.jsonl"
wait_for 10 test -s "$WORK/hook.port" || fail "the webhook sink did not start"
touch "$WORK/hook.jsonl"
cat >"$WORK/notify.json" <<JSON
{"route": {"receiver": "hook", "group_by": ["alertname"], "group_wait": "0s",
           "group_interval": "1s", "repeat_interval": "1h"},
 "receivers": [{"name": "hook",
   "webhook_configs": [{"url": "http://127.0.0.1:$(cat "$WORK/hook.port")/hook"}]}]}
JSON
bg sub mosquitto_sub -p "$MQTT_PORT" -q 1 -v -t 'dsf/action/#'
sleep 0.5

# Records as the audit log holds them (seq, time), the times 1 ms apart but the last two's:
# InfluxDB must keep both.
python3 - "$WORK" <<'PY'
import datetime, json, sys
t0 = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
tgt = {"action": "a-17", "policy": "agent-down", "ns": "ns1", "mci": "m1", "target": "vm1"}
alarm = {"engine": "e1", "rule": "agent_down", "state": "firing", "severity": "crit", "key": "ns1/m1/vm1"}
recs = [
    {"event": "start", "version": "0.1.0"},
    dict(tgt, event="decision", kind="vm", op="reboot", verdict="run", why="agent down 2m", alarm=alarm),
    dict(tgt, event="step", step=0, op="reboot", phase="begin", dry_run=False),
    dict(tgt, event="step", step=0, op="reboot", phase="end", ok=True, dry_run=False),
    dict(tgt, event="verify", step=0, ok=True, why="agent back"),
    dict(tgt, event="end", outcome="healed"),
    {"event": "decision", "action": "a-18", "policy": "migrate", "ns": "ns1", "mci": "m2",
     "target": "vm7", "kind": "vm", "op": "migrate", "verdict": "approval", "why": "policy asks"},
    {"event": "breaker", "scope": "fleet", "open": True, "why": "6 actions in 1m"},
    dict(tgt, action="a-19", event="step", step=1, op="notify", phase="begin", dry_run=False),
    # second run
    dict(tgt, action="a-19", event="end", outcome="exhausted", hold_until="2030-01-01T00:00:00Z"),
    {"event": "breaker", "scope": "fleet", "open": False, "why": "calm again"},
    {"event": "operator", "op": "pause", "who": "api"},
    {"event": "operator", "op": "pause", "who": "api"},  # in the same millisecond
]
out = []
for i, r in enumerate(recs):
    t = t0 + datetime.timedelta(milliseconds=min(i, 11))
    r = dict(r, seq=i + 1, time=t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000))
    out.append(json.dumps(r, sort_keys=True, separators=(",", ":")))
open(sys.argv[1] + "/run1.jsonl", "w").write("\n".join(out[:9]) + "\n")
open(sys.argv[1] + "/run2.jsonl", "w").write("\n".join(out[9:]) + "\n")
open(sys.argv[1] + "/all.jsonl", "w").write("\n".join(out) + "\n")
PY

run_feed() { # NAME INPUT ARGS...
    local name=$1 input=$2; shift 2
    "$FEED" "$WORK/state" --set output.url="$INFLUX_URL" --set output.db=dsf \
        --set output.interval=50ms --set notify.config="$WORK/notify.json" \
        --metrics "$WORK/$name.prom" "$@" <"$input" >"$WORK/$name.log" 2>&1 ||
        fail "dsf-ctl-output-feed ($name) exited with $?"
}
prom() { awk -v k="$2" '$1 == k {print $2}' "$WORK/$1.prom"; }

mkdir -p "$WORK/state"
run_feed feed1 "$WORK/run1.jsonl" --bus --set mqtt.url="$MQTT_URL" --linger 1500
wait_for 10 sh -c "grep -c '\"status\": 200' '$WORK/hook.jsonl' | grep -q '^2$'" ||
    fail "the webhook did not get the actions and the breaker's firing"
run_feed feed2 "$WORK/run2.jsonl" --bus --set mqtt.url="$MQTT_URL" --linger 1500
log "fed"
[ "$(prom feed1 'damselfly_control_output_store_points_total{result="ok"}')" = 9 ] ||
    fail "first run: $(prom feed1 'damselfly_control_output_store_points_total{result="ok"}') points written, want 9"
[ "$(prom feed1 damselfly_control_output_bus_published_total)" = 9 ] ||
    fail "first run: records not all published"
[ "$(prom feed2 damselfly_control_output_alerts_total)" = 2 ] ||
    fail "second run: $(prom feed2 damselfly_control_output_alerts_total) alerts, want the end and the close"

python3 - "$INFLUX_URL" "$WORK/all.jsonl" <<'PY' || fail "InfluxDB does not hold the records as dsf_action"
import calendar, datetime, json, sys, urllib.parse, urllib.request
def q(s):
    u = sys.argv[1] + "/query?" + urllib.parse.urlencode({"db": "dsf", "q": s, "epoch": "ms"})
    res = json.load(urllib.request.urlopen(u))["results"][0]
    if "series" not in res:
        return []
    cols = res["series"][0]["columns"]
    return [dict(zip(cols, v)) for v in res["series"][0]["values"]]
recs = [json.loads(l) for l in open(sys.argv[2])]
rows = q("SELECT * FROM dsf_action")
assert len(rows) == len(recs), f"{len(rows)} rows, want {len(recs)}"
for rec, row in zip(recs, rows):
    t = datetime.datetime.strptime(rec["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    assert row["time"] == int(t.timestamp() * 1000 + 0.5), (row["time"], rec["time"])
    assert row["seq"] == rec["seq"] and row["event"] == rec["event"], (row, rec)
    for k in ("policy", "ns", "mci", "target", "kind", "op", "verdict", "outcome", "scope", "phase"):
        assert row.get(k) == rec.get(k), (k, row, rec)
    for k in ("action", "why", "step", "ok", "open"):
        assert row.get(k) == rec.get(k), (k, row, rec)
ends = q("SELECT outcome, action FROM dsf_action WHERE event = 'end'")
assert [(r["outcome"], r["action"]) for r in ends] == [("healed", "a-17"), ("exhausted", "a-19")], ends
step = q("SELECT step, ok FROM dsf_action WHERE event = 'step' AND phase = 'end'")
assert step == [dict(time=step[0]["time"], step=0, ok=True)], step
print("dsf_action:", len(rows), "rows; ends", [r["outcome"] for r in ends])
PY

wait_for 10 sh -c "[ \$(wc -l <'$WORK/sub.log') -ge 13 ]" || fail "not every record came on the bus"
python3 - "$WORK/sub.log" "$WORK/all.jsonl" <<'PY' || fail "the bus does not carry the records"
import json, sys
got = [l.rstrip("\n").split(" ", 1) for l in open(sys.argv[1])]
recs = [json.loads(l) for l in open(sys.argv[2])]
assert len(got) == len(recs), f"{len(got)} messages, want {len(recs)}"
for (topic, payload), rec in zip(got, recs):
    want = "dsf/action/%s/%s" % (rec.get("ns", "_"), rec.get("mci", "_"))
    assert topic == want, (topic, want)
    assert json.loads(payload) == rec, (payload, rec)
print("bus:", sorted(set(t for t, _ in got)))
PY

wait_for 10 sh -c "grep -c '\"status\": 200' '$WORK/hook.jsonl' | grep -q '^[4-9]'" ||
    fail "the webhook did not get the exhausted end and the breaker's close"
sleep 1.5 # nothing more may come
python3 - "$WORK/hook.jsonl" <<'PY' || fail "the webhook bodies are not the actions a human must see"
import json, sys
bodies = [json.loads(json.loads(l)["body"]) for l in open(sys.argv[1])]
alerts = [(b["status"], a) for b in bodies for a in b["alerts"]]
actions = [a for _, a in alerts if a["labels"]["alertname"] == "damselfly_action"]
told = sorted((a["labels"]["action"], a["labels"]["event"], a["labels"]["severity"], a["status"]) for a in actions)
assert told == [("a-17", "end", "warn", "resolved"), ("a-18", "decision", "warn", "resolved"),
                ("a-19", "end", "crit", "resolved"), ("a-19", "step", "warn", "resolved")], told
healed = next(a for a in actions if a["labels"]["action"] == "a-17")
assert {k: healed["labels"].get(k) for k in ("ns", "mci", "target", "policy", "outcome")} == \
    {"ns": "ns1", "mci": "m1", "target": "vm1", "policy": "agent-down", "outcome": "healed"}, healed
assert "healed" in healed["annotations"]["summary"] and "vm1" in healed["annotations"]["summary"], healed
approval = next(a for a in actions if a["labels"]["action"] == "a-18")
assert "approval" in approval["annotations"]["summary"] and approval["labels"]["op"] == "migrate", approval
breaker = [(s, a["status"], a["labels"]) for s, a in alerts if a["labels"]["alertname"] == "damselfly_breaker"]
assert [b[1] for b in breaker] == ["firing", "resolved"], breaker
assert breaker[0][2] == breaker[1][2] == {"alertname": "damselfly_breaker", "severity": "crit", "scope": "fleet"}, breaker
print("webhook:", told, [b[1] for b in breaker])
PY

# No broker: every record is counted as not published, none is lost without a trace.
dead=$(free_port)
"$FEED" "$WORK/state2" --bus --set mqtt.url="tcp://127.0.0.1:$dead" --linger 100 \
    --metrics "$WORK/dead.prom" <"$WORK/run2.jsonl" >"$WORK/dead.log" 2>&1 ||
    fail "dsf-ctl-output-feed without a broker exited with $?"
[ "$(prom dead damselfly_control_output_bus_dropped_total)" = 4 ] ||
    fail "without a broker: $(prom dead damselfly_control_output_bus_dropped_total) dropped, want 4"
log "ok"
