#!/usr/bin/env bash
# Per-receiver rate limit (token bucket): 6 groups due at once through a receiver allowed 2
# notifications per second with a burst of 1 -> all 6 arrive, spread over >= 2.5 s, and the
# 5 that had to wait are counted as rate limited. Another receiver is not slowed down.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alarm_notify_lib.sh"

start_sink slow
start_sink fast
cat >"$WORK/notify.json" <<JSON
{
  "route": {"receiver": "slow", "group_by": ["vm"], "group_wait": "200ms",
            "group_interval": "1m", "repeat_interval": "1h",
            "routes": [{"matchers": ["team=fast"], "receiver": "fast"}]},
  "receivers": [
    {"name": "slow", "rate_limit": {"per_second": 2, "burst": 1},
     "webhook_configs": [{"url": "http://127.0.0.1:$slow_PORT/"}]},
    {"name": "fast", "webhook_configs": [{"url": "http://127.0.0.1:$fast_PORT/"}]}]
}
JSON
start_drive "$WORK/notify.json"
for i in 1 2 3 4 5 6; do
    echo "fire alertname=Busy,team=slow,vm=vm$i" >&3
    echo "fire alertname=Busy,team=fast,vm=vm$i" >&3
done
wait_for 10 has_posts slow 6 || fail "only $(posts slow) of 6 rate-limited notifications arrived"
wait_for 5 has_posts fast 6 || fail "only $(posts fast) of 6 unlimited notifications arrived"
limited=$(notify_metric 'damselfly_alarm_notifications_rate_limited_total{receiver="slow"}')
fast_limited=$(notify_metric 'damselfly_alarm_notifications_rate_limited_total{receiver="fast"}')
stop_drive
[ "${limited%.*}" -eq 5 ] || fail "rate limited: $limited, expected 5"
[ "${fast_limited%.*}" -eq 0 ] || fail "the unlimited receiver was limited: $fast_limited"
python3 - "$WORK/slow.jsonl" "$WORK/fast.jsonl" <<'PY' || fail "spacing"
import json, sys
slow = sorted(json.loads(l)["t"] for l in open(sys.argv[1]))
fast = sorted(json.loads(l)["t"] for l in open(sys.argv[2]))
gaps = [b - a for a, b in zip(slow, slow[1:])]
assert slow[-1] - slow[0] >= 2.4, f"6 notifications within {slow[-1] - slow[0]:.2f} s"
assert min(gaps) >= 0.4, f"gaps {gaps}"
assert fast[-1] - fast[0] < 1.0, f"unlimited receiver spread over {fast[-1] - fast[0]:.2f} s"
print(f"slow receiver: {len(slow)} over {slow[-1] - slow[0]:.2f} s (min gap {min(gaps):.2f} s); "
      f"fast: {fast[-1] - fast[0]:.2f} s")
PY
log "ok"
