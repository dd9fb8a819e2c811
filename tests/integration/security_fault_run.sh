#!/usr/bin/env bash
# Fault run with an attacker who holds one agent's credentials (vm "x"): while the collector
# is paused and the broker restarts, the attacker floods forged acks for every agent, a forged
# "offline" status, a poisoned seq and wrong-bucket messages under x's identity. Checked:
# zero points missing from the other agents (a, b) and from x's real agent, and what the
# attacker did under x is flagged by the counters, not silently lost or believed.
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
SERIES=100
start_mosquitto_auth --agent ns1/mci1/a --agent ns1/mci1/b --agent ns1/mci1/x --collector c1
start_influxd
influx_create_db dsf
CPORT=$(free_port)
bg collector "$COLLECTOR" --set id=c1 --set mqtt.url="$MQTT_URL" --set mqtt.username=collector.c1 \
    --set mqtt.password="$(mqtt_creds collector.c1)" --set output.url="$INFLUX_URL" \
    --set output.db=dsf --set batch.interval=200ms --set http.listen="127.0.0.1:$CPORT"
COLLECTOR_PID=$BG_PID
wait_for 10 curl -sf "http://127.0.0.1:$CPORT/healthz" || fail "collector did not start"

declare -A port pid
for vm in a b x; do
    port[$vm]=$(free_port)
    bg "agent-$vm" "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm=$vm \
        --set interval=1s --set mqtt.url="$MQTT_URL" --set mqtt.username="ns1/mci1/$vm" \
        --set mqtt.password="$(mqtt_creds "ns1/mci1/$vm")" --set mqtt.keepalive=2 \
        --set buffer.ack=collector --set buffer.ack_timeout=4s \
        --set http.listen="127.0.0.1:${port[$vm]}" --set privileges.drop=false \
        --set inputs.synthetic.enabled=true --set inputs.synthetic.series=$SERIES \
        --set inputs.cpu.enabled=false --set inputs.mem.enabled=false \
        --set inputs.swap.enabled=false --set inputs.disk.enabled=false \
        --set inputs.diskio.enabled=false --set inputs.net.enabled=false \
        --set inputs.system.enabled=false --set inputs.processes.enabled=false \
        --set inputs.container.enabled=false
    pid[$vm]=$BG_PID
done
am() { metric "http://127.0.0.1:${port[$1]}/metrics" "$2" "${3:-}"; }
cm() { metric "http://127.0.0.1:$CPORT/metrics" "$1" "${2:-}"; }
acked() { [ "$(am "$1" damselfly_agent_acks_total)" -ge 2 ]; }
for vm in a b x; do wait_for 20 acked $vm || fail "agent $vm got no acks"; done

XPW=$(mqtt_creds ns1/mci1/x)
status_of() { # VM: its retained status (read as the operator)
    mosquitto_sub -V 5 -p "$MQTT_PORT" -u operator -P "$(mqtt_creds operator)" -C 1 -W 5 \
        -t "dsf/a/ns1/mci1/$1/status"
}
declare -A boot
for vm in a b x; do
    boot[$vm]=$(status_of $vm | python3 -c 'import json,sys; print(json.load(sys.stdin)["boot"])')
done
log "boots: a=${boot[a]} b=${boot[b]} x=${boot[x]}"

# The attacker: x's credentials, its own client id (the real agent stays connected).
forge() {
    mosquitto_pub -V 5 -q 1 -p "$MQTT_PORT" -u ns1/mci1/x -P "$XPW" -i attacker "$@" \
        >>"$WORK/attacker.out" 2>&1 || true
}
XB=$(bucket ns1/mci1/x 64)
WRONG=$(((XB + 1) % 64))
attack() {
    local end=$((SECONDS + 30)) n=0
    while [ $SECONDS -lt $end ]; do
        for vm in a b x; do
            forge -t "dsf/a/ns1/mci1/$vm/ack" \
                -m "{\"boot\":\"${boot[$vm]}\",\"ranges\":[[0,18446744073709551615]]}"
        done
        forge -r -t dsf/a/ns1/mci1/a/status -m '{"status":"offline"}'
        forge -r -t dsf/a/ns1/mci1/x/status -m '{"status":"offline"}'
        forge -t "dsf/m/$XB/ns1/mci1/x" -D publish user-property seq 18446744073709551615 \
            -D publish user-property boot "${boot[x]}" -D publish user-property fmt lp \
            -m "cpu,cpu=cpu-total usage_idle=0 $(date +%s%N)"
        forge -t "dsf/m/$WRONG/ns1/mci1/x" -D publish user-property seq $((1000 + n)) \
            -D publish user-property boot "${boot[x]}" -D publish user-property fmt lp \
            -m "cpu,cpu=cpu-total usage_idle=0 $(date +%s%N)"
        n=$((n + 1))
        sleep 0.3
    done
}
attack &
ATTACKER=$!
DSF_PIDS+=("$ATTACKER")
sleep 4
log "pausing the collector for 8 s"
kill -STOP "$COLLECTOR_PID"
sleep 8
kill -CONT "$COLLECTOR_PID"
sleep 3
log "restarting the broker"
stop_pid "$MOSQUITTO_PID"
sleep 3
start_mosquitto "$MQTT_PORT"
wait "$ATTACKER" || true
log "attack over"

drained() {
    for vm in a b x; do [ "$(am $vm damselfly_agent_buffer_messages)" = 0 ] || return 1; done
}
wait_for 60 drained || fail "agents still hold unacknowledged messages after 60 s"
declare -A sent
for vm in a b x; do sent[$vm]=$(am $vm damselfly_agent_seq); done
curl -sf "http://127.0.0.1:$CPORT/metrics" >"$WORK/collector.metrics"
for vm in a b x; do curl -sf "http://127.0.0.1:${port[$vm]}/metrics" >"$WORK/agent-$vm.metrics"; done
# The attacker's retained statuses do not stay: each agent puts its own back within seconds.
own_status() { case $(status_of "$1") in *'"online"'*"${boot[$1]}"*) ;; *) return 1 ;; esac; }
for vm in a b x; do
    wait_for 5 own_status $vm || fail "agent $vm's retained status is now: $(status_of $vm)"
done
for vm in a b x; do stop_pid "${pid[$vm]}"; done
denied=$(grep -c 'Not authorized' "$WORK/attacker.out" || true) # mosquitto_pub: reason 135
log "sent: a=${sent[a]} b=${sent[b]} x=${sent[x]} messages of $SERIES points; broker denied $denied publishes"
[ "$denied" -gt 0 ] || fail "the broker denied none of the attacker's acks"
python3 - "$INFLUX_URL" "$SERIES" a="${sent[a]}" b="${sent[b]}" x="${sent[x]}" <<'PY' ||
import json, sys, time, urllib.parse, urllib.request
url, series = sys.argv[1], int(sys.argv[2])
sent = {k: int(v) for k, v in (a.split("=") for a in sys.argv[3:])}
def q(text):
    u = url + "/query?" + urllib.parse.urlencode({"db": "dsf", "q": text})
    return json.load(urllib.request.urlopen(u))["results"][0].get("series", [])
for _ in range(30):
    got = q("SELECT count(f0) FROM synthetic")
    if got and got[0]["values"][0][1] >= sum(sent.values()) * series:
        break
    time.sleep(1)
counts = {}
for s in q('SELECT count(f0) FROM synthetic GROUP BY "vm", "series"'):
    counts.setdefault(s["tags"]["vm"], []).append(s["values"][0][1])
bad = 0
for vm, n in sent.items():
    got = counts.get(vm, [])
    short = [c for c in got if c < n]
    bad += len(short) + (series - len(got))
    print(f"{vm}: {len(got)} series of {series}, each expected {n} points; {len(short)} short")
sys.exit(1 if bad else 0)
PY
    fail "points missing"
# x's forged traffic is flagged, not believed: the poisoned seq as suspect, the wrong bucket
# refused, the forged status put back by x's agent; a and b never saw a forged ack (the
# broker refused them all) and x's agent refused what reached it (nothing: ACL).
cnum() { # FILE NAME [LABELS]: a counter's value, 0 when absent
    awk -v n="$2" -v l="${3:-}" '($1 == n || $1 == n "{" l "}") { v = $2 } END { print v + 0 }' "$1"
}
suspect=$(cnum "$WORK/collector.metrics" damselfly_collector_seq_suspect_total)
wrong=$(cnum "$WORK/collector.metrics" damselfly_collector_messages_rejected_total 'reason="wrong_bucket"')
restored=$(cnum "$WORK/agent-x.metrics" damselfly_agent_status_overwritten_total)
log "collector: $suspect suspect seqs, $wrong wrong-bucket messages refused; agent x put its status back $restored times"
[ "${suspect%.*}" -ge 1 ] || fail "the poisoned seq was not flagged as suspect"
[ "${wrong%.*}" -ge 1 ] || fail "the wrong-bucket messages were not refused"
[ "${restored%.*}" -ge 1 ] || fail "agent x did not put back its forged status"
gaps=$(cnum "$WORK/collector.metrics" damselfly_collector_agent_gaps_total 'agent="ns1/mci1/x"')
[ "${gaps%.*}" -lt 100 ] || fail "the collector counts $gaps gaps for x: the forged seq moved its tracking"
log "ok: zero points missing, the attacker's traffic flagged"
