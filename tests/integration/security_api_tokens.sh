#!/usr/bin/env bash
# Every daemon started with http.token refuses every operation schemas/openapi.yaml gives it
# that is not public (each with its path parameters filled), without credentials, with a
# wrong bearer token and with wrong basic credentials: 401 with WWW-Authenticate each time,
# each refusal counted in damselfly_http_requests_refused_total{reason="unauthorized"};
# /healthz stays open and the right token is taken. The agent is checked with basic auth
# (http.username) too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/openapi_lib.sh"

TOKEN=tok-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
start_mosquitto

# run_checked NAME DAEMON GOOD_AUTH_HEADER ARGS...: starts the daemon, tries every operation,
# compares the refusals with its counter, stops it.
run_checked() {
    local name=$1 d=$2 good=$3 port pid refused counted
    shift 3
    port=$(free_port)
    openapi_daemon_args "$d"
    bg "$name" "$(openapi_bin "$d")" "${DAEMON_ARGS[@]}" --set http.listen="127.0.0.1:$port" "$@"
    pid=$BG_PID
    local url="http://127.0.0.1:$port"
    wait_for 15 curl -sf "$url/healthz" || fail "$name did not answer /healthz without credentials"
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "$good" "$url/metrics")" = 200 ] ||
        fail "$name refused GET /metrics with the right credentials"
    python3 "$CHECK" unauthorized "$SPEC" "$d" "$url" >"$WORK/$name.check" 2>&1 ||
        fail "$name: $(cat "$WORK/$name.check")"
    cat "$WORK/$name.check"
    refused=$(sed -n 's/.*, \([0-9]*\) refused with 401.*/\1/p' "$WORK/$name.check")
    [ "${refused:-0}" -gt 0 ] || fail "$name: no refusal reported: $(cat "$WORK/$name.check")"
    counted=$(METRIC_HEADER=$good metric "$url/metrics" damselfly_http_requests_refused_total \
        'reason="unauthorized"')
    [ "$counted" = "$refused" ] || fail "$name: $refused refusals, $counted counted"
    stop_pid "$pid"
    kill -0 "$pid" 2>/dev/null && fail "$name did not stop"
    return 0
}

for d in "${OPENAPI_DAEMONS[@]}"; do
    log "$d with http.token"
    run_checked "$d-token" "$d" "Authorization: Bearer $TOKEN" --set http.token="$TOKEN"
done
log "agent with basic auth"
run_checked agent-basic agent "Authorization: Basic $(printf 'dsf:%s' "$TOKEN" | base64 -w0)" \
    --set http.username=dsf --set http.password="$TOKEN"
log "PASS"
