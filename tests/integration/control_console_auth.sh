#!/usr/bin/env bash
# The web console's door (docs/console.md): every /ui path and every API path refused (401)
# without a token, with a wrong one and with a forged or ended session cookie, the static
# pages included, each /ui refusal answering the login page; a login with a wrong token
# refused and counted, with the right one a session cookie that opens the pages and, only
# with the header X-Damselfly-Console: 1, the API (reads and writes); logout ends it, so
# does a restart, so does idleness. Every /ui answer carries the CSP and its sibling headers;
# no HTML asset holds an inline script, style or handler; assets revalidate by ETag (304);
# over TLS the cookie is Secure.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"

CSP="default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
ctl_broker_start
ctl_start

# req ARGS...: one request; sets STATUS, the headers in $WORK/h.txt, the body in $WORK/b.txt.
req() {
    rm -f "$WORK/h.txt" "$WORK/b.txt"
    STATUS=$(curl -s -D "$WORK/h.txt" -o "$WORK/b.txt" -w '%{http_code}' "$@") || STATUS=000
}
# header NAME: the value of a response header of the last req (case-insensitive name).
header() { awk -v n="$(tr 'A-Z' 'a-z' <<<"$1")" -F': ' 'tolower($1) == n { sub(/\r$/, "", $2); print $2 }' "$WORK/h.txt"; }
# login_page WHAT: the last answer was 401 with the login page and the /ui headers.
login_page() {
    [ "$STATUS" = 401 ] || fail "$1: $STATUS, expected 401"
    grep -q '<form id="login" method="post" action="/ui/login">' "$WORK/b.txt" ||
        fail "$1: the 401 is not the login page: $(head -c 300 "$WORK/b.txt")"
    grep -qF "$CTL_TOKEN" "$WORK/b.txt" "$WORK/h.txt" && fail "$1: the login page shows the token"
    ui_headers "$1"
}
ui_headers() {
    [ "$(header Content-Security-Policy)" = "$CSP" ] || fail "$1: CSP is '$(header Content-Security-Policy)'"
    [ "$(header X-Content-Type-Options)" = nosniff ] || fail "$1: no X-Content-Type-Options: nosniff"
    [ "$(header Referrer-Policy)" = no-referrer ] || fail "$1: no Referrer-Policy: no-referrer"
}

"$CONTROL" --set http.listen=127.0.0.1:0 --set policies.dir="$CTL_POLICIES" --print-routes \
    >"$WORK/routes.txt" || fail "--print-routes failed"
mapfile -t UI < <(awk -F'\t' '$1 ~ /^\/ui\// && $1 != "/ui/login" { sub(/\*$/, "js/app.js", $1); print $1 }' "$WORK/routes.txt")
UI+=(/ui/index.html /ui/app.css /ui/login.html /ui/no-such-file)
mapfile -t API < <(awk -F'\t' '$3 == "auth" && $1 !~ /^\/ui\// { sub(/\*$/, "x", $1); print $1 }' "$WORK/routes.txt")
[ "${#API[@]}" -ge 10 ] || fail "only ${#API[@]} authenticated API routes listed: $(cat "$WORK/routes.txt")"
FORGED="dsf_session=$(printf '%064d' 0)"

log "/ redirects to /ui/"
req "$CTL_URL/"
[ "$STATUS" = 302 ] && [ "$(header Location)" = /ui/ ] || fail "GET /: $STATUS to '$(header Location)'"

log "no token, a wrong one, a forged session: every /ui path answers the login page"
for p in "${UI[@]}"; do
    req "$CTL_URL$p" && login_page "GET $p without credentials"
    req -H "Authorization: Bearer x$CTL_TOKEN" "$CTL_URL$p" && login_page "GET $p with a wrong token"
    req -b "$FORGED" "$CTL_URL$p" && login_page "GET $p with a forged session"
done
req -X POST "$CTL_URL/ui/logout" && login_page "POST /ui/logout without a session"

log "... and every API path 401, also with the forged cookie and the console's header"
for p in "${API[@]}"; do
    req "$CTL_URL$p"
    [ "$STATUS" = 401 ] || fail "GET $p without credentials: $STATUS"
    req -H "Authorization: Bearer x$CTL_TOKEN" "$CTL_URL$p"
    [ "$STATUS" = 401 ] || fail "GET $p with a wrong token: $STATUS"
    req -b "$FORGED" -H 'X-Damselfly-Console: 1' "$CTL_URL$p"
    [ "$STATUS" = 401 ] || fail "GET $p with a forged session: $STATUS"
done

log "a login with a wrong token: the login page with an error, counted"
refused0=$(ctl_metric damselfly_http_requests_refused_total 'reason="unauthorized"')
req -d "token=x$CTL_TOKEN" "$CTL_URL/ui/login"
login_page "POST /ui/login with a wrong token"
grep -qE '<p id="login-error" role="alert">[^<]+</p>' "$WORK/b.txt" || fail "no text in #login-error"
header Set-Cookie | grep -q . && fail "a wrong token got a cookie: $(header Set-Cookie)"
req -d "" "$CTL_URL/ui/login" && login_page "POST /ui/login without a token"
[ "$(ctl_metric damselfly_console_logins_total 'result="refused"')" = 2 ] || fail "the refused logins are not counted 2"
refused1=$(ctl_metric damselfly_http_requests_refused_total 'reason="unauthorized"')
[ "$refused1" -gt "$refused0" ] || fail "the refused logins are not among the refused requests"

log "the right token: 303 to /ui/ with a session cookie"
req -d "token=$CTL_TOKEN" "$CTL_URL/ui/login"
[ "$STATUS" = 303 ] && [ "$(header Location)" = /ui/ ] || fail "login: $STATUS to '$(header Location)'"
cookie=$(header Set-Cookie)
[[ $cookie =~ ^dsf_session=([0-9a-f]{64})\;\ Path=/\;\ HttpOnly\;\ SameSite=Strict$ ]] ||
    fail "Set-Cookie: '$cookie'"
SESSION="dsf_session=${BASH_REMATCH[1]}"
[ "$(ctl_metric damselfly_console_logins_total 'result="ok"')" = 1 ] || fail "the login is not counted"
[ "$(ctl_metric damselfly_console_sessions)" = 1 ] || fail "damselfly_console_sessions is not 1"

log "the session opens the pages, with the headers and ETags"
req -b "$SESSION" "$CTL_URL/ui/"
[ "$STATUS" = 200 ] || fail "GET /ui/ with the session: $STATUS"
grep -q '<script type="module" src="/ui/js/app.js"></script>' "$WORK/b.txt" || fail "/ui/ is not the app"
ui_headers "GET /ui/"
[ "$(header Cache-Control)" = no-store ] || fail "/ui/ Cache-Control: '$(header Cache-Control)'"
for p in /ui/app.css /ui/js/app.js /ui/js/api.js; do
    req -b "$SESSION" "$CTL_URL$p"
    [ "$STATUS" = 200 ] || fail "GET $p: $STATUS"
    ui_headers "GET $p"
    etag=$(header ETag)
    [[ $etag =~ ^\"[0-9a-f]{32}\"$ ]] || fail "$p: ETag '$etag'"
    cmp -s "$WORK/b.txt" "$DSF_SRC/control/console/${p#/ui/}" || fail "$p is not control/console/${p#/ui/}"
    req -b "$SESSION" -H "If-None-Match: $etag" "$CTL_URL$p"
    [ "$STATUS" = 304 ] && [ ! -s "$WORK/b.txt" ] || fail "$p with If-None-Match: $STATUS"
    req -b "$SESSION" -H 'If-None-Match: "0"' "$CTL_URL$p"
    [ "$STATUS" = 200 ] || fail "$p with another ETag: $STATUS"
done
req -b "$SESSION" "$CTL_URL/ui/no-such-file"
[ "$STATUS" = 404 ] || fail "GET /ui/no-such-file with the session: $STATUS"

log "the API takes the session only with X-Damselfly-Console: 1"
req -b "$SESSION" "$CTL_URL/api/v1/overview"
[ "$STATUS" = 401 ] || fail "the API took the cookie without the header: $STATUS"
req -b "$SESSION" -H 'X-Damselfly-Console: 0' "$CTL_URL/api/v1/overview"
[ "$STATUS" = 401 ] || fail "the API took the cookie with X-Damselfly-Console: 0: $STATUS"
req -b "$SESSION" -X POST "$CTL_URL/api/v1/pause"
[ "$STATUS" = 401 ] || fail "a cross-site form's POST (cookie, no header) was taken: $STATUS"
req -b "$SESSION" -H 'X-Damselfly-Console: 1' "$CTL_URL/api/v1/overview"
[ "$STATUS" = 200 ] || fail "GET /api/v1/overview with session and header: $STATUS"
req -b "$SESSION" -H 'X-Damselfly-Console: 1' -X POST "$CTL_URL/api/v1/pause"
[ "$STATUS" = 200 ] || fail "POST /api/v1/pause with session and header: $STATUS"
req -b "$SESSION" -H 'X-Damselfly-Console: 1' -X POST "$CTL_URL/api/v1/resume"
[ "$STATUS" = 200 ] || fail "POST /api/v1/resume with session and header: $STATUS"
req -H "Authorization: Bearer $CTL_TOKEN" "$CTL_URL/api/v1/overview"
[ "$STATUS" = 200 ] || fail "the bearer token no longer works: $STATUS"

log "no inline script, style or handler in any HTML asset"
for f in "$DSF_SRC"/control/console/*.html; do
    req -b "$SESSION" "$CTL_URL/ui/$(basename "$f")"
    [ "$STATUS" = 200 ] || fail "GET /ui/$(basename "$f"): $STATUS"
    if grep -nEi '<script([^>]*)>' "$WORK/b.txt" | grep -viE '<script[^>]* src="/ui/[^"]+"[^>]*></script>' ||
        grep -nEi '<style|[[:space:]]style=|[[:space:]]on[a-z]+=|javascript:' "$WORK/b.txt"; then
        fail "$(basename "$f") holds an inline script, style or handler (above)"
    fi
done

log "logout ends the session"
req -b "$SESSION" -X POST "$CTL_URL/ui/logout"
[ "$STATUS" = 303 ] || fail "POST /ui/logout: $STATUS"
header Set-Cookie | grep -q 'Max-Age=0' || fail "logout does not clear the cookie: $(header Set-Cookie)"
req -b "$SESSION" "$CTL_URL/ui/" && login_page "GET /ui/ after logout"
req -b "$SESSION" -H 'X-Damselfly-Console: 1' "$CTL_URL/api/v1/overview"
[ "$STATUS" = 401 ] || fail "the API took an ended session: $STATUS"
[ "$(ctl_metric damselfly_console_sessions)" = 0 ] || fail "damselfly_console_sessions is not 0"

log "a restart ends every session; an idle one ends after console.idle_timeout"
req -d "token=$CTL_TOKEN" "$CTL_URL/ui/login"
[[ $(header Set-Cookie) =~ ^(dsf_session=[0-9a-f]{64}) ]] || fail "no second session"
SESSION=${BASH_REMATCH[1]}
ctl_stop
ctl_start --set console.idle_timeout=2s
req -b "$SESSION" "$CTL_URL/ui/" && login_page "GET /ui/ with a session of before the restart"
req -d "token=$CTL_TOKEN" "$CTL_URL/ui/login"
[[ $(header Set-Cookie) =~ ^(dsf_session=[0-9a-f]{64}) ]] || fail "no session after the restart"
SESSION=${BASH_REMATCH[1]}
req -b "$SESSION" "$CTL_URL/ui/"
[ "$STATUS" = 200 ] || fail "GET /ui/ with a fresh session: $STATUS"
sleep 2.5
req -b "$SESSION" "$CTL_URL/ui/" && login_page "GET /ui/ with a session idle past console.idle_timeout"
ctl_stop

log "over TLS the cookie is Secure"
loopback_cert
export CURL_CA_BUNDLE="$WORK/cert.pem"
port=$(free_port)
bg control-tls "$CONTROL" --set id=k2 --set policies.dir="$CTL_POLICIES" \
    --set state.dir="$WORK/control-tls" --set federation.dir="$WORK/fed-tls" \
    --set mqtt.url="$MQTT_URL" --set http.listen="127.0.0.1:$port" \
    --set http.tls_cert="$WORK/cert.pem" --set http.tls_key="$WORK/key.pem"
wait_for 15 curl -sf "https://127.0.0.1:$port/healthz" || fail "no /healthz over TLS"
req -d "token=$(cat "$WORK/control-tls/http.token")" "https://127.0.0.1:$port/ui/login"
[[ $(header Set-Cookie) =~ ^dsf_session=[0-9a-f]{64}\;\ Path=/\;\ HttpOnly\;\ SameSite=Strict\;\ Secure$ ]] ||
    fail "Set-Cookie over TLS: '$(header Set-Cookie)' ($STATUS)"
stop_pid "$BG_PID"
log "PASS"
