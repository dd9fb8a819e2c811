#!/usr/bin/env bash
# schemas/openapi.yaml is the truth about every daemon's HTTP routes: it parses as OpenAPI
# 3.x with every $ref resolved and every path parameter declared, and for each daemon the
# routes it registers (its --print-routes, after a start with every optional API on) are
# exactly the paths the spec gives it, with the methods and the public routes it says; paths
# marked x-status: planned are excepted until a daemon registers them. The checker fails on
# a route nobody documented and on a documented one gone (checked on doctored lists).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/openapi_lib.sh"

log "the spec parses and is structurally valid"
python3 "$CHECK" validate "$SPEC" >"$WORK/validate.out" 2>&1 ||
    fail "schemas/openapi.yaml: $(cat "$WORK/validate.out")"

cat >"$WORK/broken.yaml" <<'YAML'
openapi: 3.1.0
info: {title: t, version: "1"}
paths:
  /x/{y}:
    x-daemons: [agent]
    get:
      operationId: x
      responses: {"200": {$ref: "#/components/responses/Nowhere"}}
YAML
python3 "$CHECK" validate "$WORK/broken.yaml" >"$WORK/broken.out" 2>&1 && fail "a broken spec passed"
for want in "path parameter 'y' is not declared" "'#/components/responses/Nowhere' does not resolve" \
    "its servers do not" "no tag names its daemon"; do
    grep -qF "$want" "$WORK/broken.out" || fail "the checker did not say $want: $(cat "$WORK/broken.out")"
done

start_mosquitto
for d in "${OPENAPI_DAEMONS[@]}"; do
    log "$d: registered routes == documented paths"
    openapi_daemon_args "$d"
    "$(openapi_bin "$d")" "${DAEMON_ARGS[@]}" --set http.listen=127.0.0.1:0 --print-routes \
        >"$WORK/$d.routes" 2>"$WORK/$d-routes.log" ||
        fail "$d --print-routes failed: $(tail -n 5 "$WORK/$d-routes.log")"
    grep -q $'^/healthz\tGET,HEAD\tpublic$' "$WORK/$d.routes" ||
        fail "$d --print-routes has no public /healthz: $(cat "$WORK/$d.routes")"
    python3 "$CHECK" routes "$SPEC" "$d" "$WORK/$d.routes" >"$WORK/$d.check" 2>&1 ||
        fail "$d and schemas/openapi.yaml differ (routes: $(tr '\t\n' ' ;' <"$WORK/$d.routes")): $(cat "$WORK/$d.check")"
    [ ! -e "$WORK/state-$d/http.token" ] || fail "$d --print-routes made a token file"
done

log "the checker fails on an undocumented route and on a documented one missing"
{ cat "$WORK/control.routes"; printf '/api/v1/undocumented\tGET,HEAD\tauth\n'; } >"$WORK/extra.routes"
python3 "$CHECK" routes "$SPEC" control "$WORK/extra.routes" >"$WORK/extra.out" 2>&1 &&
    fail "an undocumented route passed"
grep -q "/api/v1/undocumented: control registers it" "$WORK/extra.out" ||
    fail "the undocumented route is not named: $(cat "$WORK/extra.out")"
grep -v '^/api/v1/pause' "$WORK/control.routes" >"$WORK/missing.routes"
python3 "$CHECK" routes "$SPEC" control "$WORK/missing.routes" >"$WORK/missing.out" 2>&1 &&
    fail "a documented route missing passed"
grep -q "/api/v1/pause: documented for control" "$WORK/missing.out" ||
    fail "the missing route is not named: $(cat "$WORK/missing.out")"
sed 's#^/metrics\tGET,HEAD\tauth#/metrics\tGET,HEAD\tpublic#' "$WORK/alarm.routes" >"$WORK/public.routes"
python3 "$CHECK" routes "$SPEC" alarm "$WORK/public.routes" >"$WORK/public.out" 2>&1 &&
    fail "a route served public against the spec passed"
grep -q "GET /metrics: the spec says authenticated" "$WORK/public.out" ||
    fail "the public route is not named: $(cat "$WORK/public.out")"
# A spec of its own: the real one loses its planned marks as their routes land.
cat >"$WORK/planned.yaml" <<'YAML'
openapi: 3.1.0
info: {title: t, version: "1"}
paths:
  /later/{x}:
    x-daemons: [control]
    x-status: planned
    get:
      security: []
      responses: {"200": {description: ok}}
YAML
printf '/later/*\tGET,HEAD\tpublic\n' >"$WORK/planned.routes"
python3 "$CHECK" routes "$WORK/planned.yaml" control "$WORK/planned.routes" >"$WORK/planned.out" 2>&1 &&
    fail "a planned path that is registered passed"
grep -q "/later/{x}: control registers it (/later/\*): drop its x-status: planned" "$WORK/planned.out" ||
    fail "a registered planned path is not named: $(cat "$WORK/planned.out")"
: >"$WORK/none.routes"
python3 "$CHECK" routes "$WORK/planned.yaml" control "$WORK/none.routes" >"$WORK/none.out" 2>&1 ||
    fail "a planned path not registered yet failed: $(cat "$WORK/none.out")"

log "--print-routes without an HTTP server is an error"
"$(openapi_bin collector)" --set mqtt.url="$MQTT_URL" --set id=c1 --set http.listen= \
    --set output.url=http://127.0.0.1:1 --print-routes >"$WORK/nohttp.out" 2>&1 &&
    fail "--print-routes without http.listen succeeded"
grep -q "http.listen is empty" "$WORK/nohttp.out" || fail "no reason given: $(cat "$WORK/nohttp.out")"
log "PASS"
