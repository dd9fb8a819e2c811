#!/usr/bin/env bash
# The web console in a real browser (headless chromium over the DevTools protocol,
# tests/tools/cdp.py) against a stack of `damselfly up` with its local MCI default/demo: the
# login page without a session (401), a wrong token refused, the controller's token typed in;
# the MCI's card with its status; kill -9 of demo-1's agent, and on the same page (no reload)
# the agent_down alarm appears and the healing action reaches healed; the action's chain;
# Tab reaches the MCI card and Enter opens it. No page exception during the run. Screenshots of
# each step stay in $DSF_BUILD/test-artifacts/stack_console_browser/ after the test.
. "$(dirname "$0")/lib.sh"

[ -x /usr/bin/chromium ] || fail "chromium is missing (scripts/install-deps.sh test)"
/usr/bin/python3 -c 'import websocket' 2>/dev/null ||
    fail "python3-websocket is missing (scripts/install-deps.sh test)"
ARTIFACTS="$DSF_BUILD/test-artifacts/stack_console_browser"
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"

stack_env
STATE=$DAMSELFLY_STATE
trap '"$LAUNCHER" down >/dev/null 2>&1 || true; cleanup' EXIT
"$LAUNCHER" up >"$WORK/up.log" 2>&1 || fail "damselfly up: $(cat "$WORK/up.log")"
BASE="http://$DAMSELFLY_CONTROL_HTTP"
TOKEN_FILE="$STATE/control/http.token"
demo_ok() {
    "$LAUNCHER" status >"$WORK/status.out" 2>&1
    stack_demo_running "$WORK/status.out"
}
wait_for 60 demo_ok || fail "the demo MCI is not healthy 60 s after up: $(cat "$WORK/status.out")"

# What the browser is shown before it logs in, as a client without a cookie sees it.
code=$(curl -s -o "$WORK/login.html" -D "$WORK/login.headers" -w '%{http_code}' "$BASE/ui/")
[ "$code" = 401 ] || fail "GET /ui/ without a session: HTTP $code, not 401"
grep -q '<form id="login" method="post" action="/ui/login">' "$WORK/login.html" ||
    fail "the 401 body is not the login page: $(head -c 400 "$WORK/login.html")"
grep -qF "$(cat "$TOKEN_FILE")" "$WORK/login.html" && fail "the login page holds the token"
grep -qi "^content-security-policy: default-src 'self'" "$WORK/login.headers" ||
    fail "the login page has no Content-Security-Policy: $(cat "$WORK/login.headers")"
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/")
[ "$code" = 302 ] || fail "GET / answered $code, not a redirect to /ui/"

before=$(stack_agent_pid demo-1) || fail "no pid for demo-1"
log "the browser, against $BASE"
if ! /usr/bin/python3 "$DSF_SRC/tests/integration/console_browser.py" "$BASE" "$TOKEN_FILE" \
    "$before" "$ARTIFACTS" "$WORK"; then
    # What the page was given, and what the alarm engine and the controller did, for fail.
    curl -s -H "Authorization: Bearer $(cat "$TOKEN_FILE")" "$BASE/api/v1/overview" >"$WORK/overview.log"
    cp "$STATE/alarm.log" "$STATE/control.log" "$WORK/"
    fail "the console in chromium (screenshots: $ARTIFACTS)"
fi
[ "$(stack_agent_pid demo-1)" != "$before" ] ||
    fail "demo-1 was not rebooted: its agent is still pid $before"
# The healed action the page showed is the one the audit holds.
python3 - "$STATE/control/audit.jsonl" <<'PY' || fail "the audit has no healed action on demo-1"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert any(r["event"] == "end" and r.get("target") == "demo-1" and r["outcome"] == "healed"
           for r in recs), recs[-5:]
PY
ls "$ARTIFACTS"
log "ok"
