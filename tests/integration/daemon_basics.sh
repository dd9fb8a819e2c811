#!/usr/bin/env bash
# What every daemon gets from the skeleton (common/daemon.c), checked on one daemon:
# daemon_basics.sh agent|collector|alarm|control|scraper
#   --version names the version and the commit the binary was built from; log.format=json
#   gives one JSON object per line (jq parses each); /metrics passes promtool (the agent:
#   only node_exporter's own names draw warnings) and has process_* and damselfly_build_info;
#   /healthz answers without a token while /metrics needs it; SIGHUP is handled (logged, the
#   daemon lives on); SIGTERM stops it with status 0; --check refuses a bad http.listen and
#   a bad DAMSELFLY_* value naming the variable and the value, and http.tls_cert without
#   http.tls_key; a mistyped DAMSELFLY_* name
#   is warned about.
. "$(dirname "$0")/lib.sh"
which=${1:?agent, collector, alarm, control or scraper}
case $which in
agent) BIN="$DSF_BUILD/agent/damselfly-agent" ;;
collector) BIN="$DSF_BUILD/collector/damselfly-collector" ;;
alarm) BIN="$DSF_BUILD/alarm/damselfly-alarm" ;;
control) BIN="$DSF_BUILD/control/damselfly-control" ;;
scraper) BIN="$DSF_BUILD/scraper/damselfly-scraper" ;;
*) fail "unknown daemon $which" ;;
esac
[ -x "$BIN" ] || fail "$BIN is missing"

start_mosquitto
PORT=$(free_port)
TOKEN=s3cret
common=(--set "http.listen=127.0.0.1:$PORT" --set "http.token=$TOKEN")
bus=(--set "mqtt.url=$MQTT_URL")
case $which in
agent) args=("${bus[@]}" --set identity.ns=ns1 --set identity.mci=m1 --set identity.vm=v1
    --set interval=1s --set privileges.drop=false) ;;
collector) args=("${bus[@]}" --set id=c1 --set output.url=http://127.0.0.1:1) ;;
alarm)
    mkdir -p "$WORK/rules"
    cp "$DSF_SRC"/deploy/alarm.d/*.json "$WORK/rules/"
    args=("${bus[@]}" --set id=a1 --set "rules.dir=$WORK/rules" --set "state.dir=$WORK/state") ;;
control)
    mkdir -p "$WORK/policies"
    args=(--set id=k1 --set "policies.dir=$WORK/policies" --set "state.dir=$WORK/state") ;;
scraper) args=("${bus[@]}" --set id=s1) ;;
esac

log "--version"
version=$("$BIN" --version)
echo "$version"
commit=$(git -C "$DSF_SRC" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
echo "$version" | grep -Eq "^damselfly-$which [0-9]+\.[0-9]+\.[0-9]+ \(commit $commit(-dirty)?\)$" ||
    fail "--version does not name the version and commit $commit: $version"

log "--check refuses bad values, naming the key or the variable"
for bad in 127.0.0.1:99999 5 "[::1]"; do
    if "$BIN" "${args[@]}" --set "http.listen=$bad" --check >"$WORK/check.out" 2>&1; then
        fail "--check accepted http.listen=$bad"
    fi
    grep -q "http.listen" "$WORK/check.out" || fail "no key named for http.listen=$bad"
done
if "$BIN" "${args[@]}" --set "http.tls_cert=$WORK/cert.pem" --check >"$WORK/check.out" 2>&1; then
    fail "--check accepted http.tls_cert without http.tls_key"
fi
grep -q "http.tls_key" "$WORK/check.out" || fail "no http.tls_key named: $(cat "$WORK/check.out")"
env_name=DAMSELFLY_HTTP_LISTEN
if env "$env_name=nope:x" "$BIN" "${args[@]}" --check >"$WORK/check.out" 2>&1; then
    fail "--check accepted $env_name=nope:x"
fi
grep -q "$env_name='nope:x'" "$WORK/check.out" || fail "the error does not name $env_name and its value: $(cat "$WORK/check.out")"
DAMSELFLY_HTTP_LISTNE=x "$BIN" "${args[@]}" --check >"$WORK/check.out" 2>&1 ||
    fail "--check failed: $(cat "$WORK/check.out")"
grep -q "DAMSELFLY_HTTP_LISTNE is not a configuration key.*DAMSELFLY_HTTP_LISTEN" "$WORK/check.out" ||
    fail "a mistyped variable is not warned about: $(cat "$WORK/check.out")"

log "running with log.format=json"
bg "$which" "$BIN" "${args[@]}" "${common[@]}" --set log.format=json --set log.level=debug
PID=$BG_PID
wait_for 15 curl -sf "http://127.0.0.1:$PORT/healthz" -o "$WORK/health.json" ||
    fail "/healthz did not answer"
jq -e '.status == "ok"' "$WORK/health.json" >/dev/null || fail "/healthz: $(cat "$WORK/health.json")"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics")
[ "$code" = 401 ] || fail "/metrics without the token answered $code"
curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt" ||
    fail "/metrics with the token failed"
grep -q '^process_cpu_seconds_total ' "$WORK/metrics.txt" || fail "no process_cpu_seconds_total"
grep -q '^process_resident_memory_bytes ' "$WORK/metrics.txt" || fail "no process_resident_memory_bytes"
grep -q '^process_open_fds ' "$WORK/metrics.txt" || fail "no process_open_fds"
grep -Eq "^damselfly_build_info\{daemon=\"$which\",version=\"[0-9.]+\",commit=\"$commit(-dirty)?\"\} 1$" \
    "$WORK/metrics.txt" || fail "no damselfly_build_info for $which at $commit"
promtool check metrics <"$WORK/metrics.txt" >"$WORK/promtool.out" 2>&1 || true
if [ "$which" = agent ]; then
    # node_exporter's own names (node_cpu_seconds_total and the like) are kept as they are.
    if grep -v '^node_' "$WORK/promtool.out" | grep -q .; then
        fail "promtool: $(cat "$WORK/promtool.out")"
    fi
else
    [ ! -s "$WORK/promtool.out" ] || fail "promtool: $(cat "$WORK/promtool.out")"
    promtool check metrics <"$WORK/metrics.txt" || fail "promtool check metrics failed"
fi

log "SIGHUP"
kill -HUP "$PID"
wait_for 5 grep -q 'SIGHUP' "$WORK/$which.log" || fail "SIGHUP was not logged"
sleep 0.5
kill -0 "$PID" 2>/dev/null || fail "the daemon died on SIGHUP"
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || fail "/healthz after SIGHUP"

log "SIGTERM"
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
lines=$(wc -l <"$WORK/$which.log")
[ "$lines" -ge 3 ] || fail "only $lines log lines"
while IFS= read -r line; do
    echo "$line" | jq -e '.time and .level and .module and (.msg | type == "string")' >/dev/null ||
        fail "not a JSON log line: $line"
done <"$WORK/$which.log"
log "ok: $lines JSON log lines"
