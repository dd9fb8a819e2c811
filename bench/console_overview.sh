#!/usr/bin/env bash
# How fast the web console's overview renders a large fleet: damselfly-control whose
# federation model holds MCIS MCIs of VMS VMs each (default 100 x 10), made by damselfly-fed's
# tumblebug driver against the CB-Tumblebug test double (tests/tools/tumblebug_double.py), so
# no agent runs; headless chromium logs in with the controller's token and loads the overview
# RUNS times (bench/console_overview.py): from navigation start to body[data-ready=overview],
# median and max, target < 1 s. Also prints the size of GET /api/v1/overview, the one call
# that feeds the page. The agents of these VMs never report: their cards show them offline.
# Usage: bench/console_overview.sh   MCIS=100 VMS=10 RUNS=5; BUILD=dir reuses a build
# Runtime: the build, then about 1 min to create the model (4 creations at a time), 10 s of
# browser.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
MCIS=${MCIS:-100} VMS=${VMS:-10} RUNS=${RUNS:-5}
BUILD=${BUILD:-$SRC/build-bench/release}
for tool in mosquitto curl python3 /usr/bin/chromium; do
    command -v $tool >/dev/null || { echo "missing $tool: scripts/install-deps.sh" >&2; exit 2; }
done
/usr/bin/python3 -c 'import websocket' 2>/dev/null ||
    { echo "missing python3-websocket: run scripts/install-deps.sh" >&2; exit 2; }
echo "building (Release) in $BUILD..." >&2
{ cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DDAMSELFLY_TESTS=ON &&
    cmake --build "$BUILD" -j "$(nproc)" --target damselfly-control damselfly-fed; } >/dev/null ||
    { echo "build failed" >&2; exit 1; }
export DSF_BUILD=$BUILD DSF_SRC=$SRC
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/federation_tumblebug_setup.sh"

log "the model: $MCIS MCIs x $VMS VMs through the Tumblebug double..."
tb_start --transition-delay 0.05 --lifetime 3600
csps=(aws+ap-northeast-2+t2.small gcp+asia-northeast3+e2-small azure+koreacentral+b1s)
for i in $(seq 1 "$MCIS"); do
    printf '{"vm": [{"name": "g1", "subGroupSize": "%d", "commonSpec": "%s",
                     "commonImage": "ubuntu22.04"}]}\n' "$VMS" "${csps[$((i % 3))]}" \
        >"$WORK/spec-$i.json"
done
export -f fed
export FED WORK TB_URL TB_USER TB_PASS
# shellcheck disable=SC2016 # the inner shell expands $1
seq 1 "$MCIS" | xargs -P 4 -n 1 bash -c 'fed create-mci bench "mci-$(printf %03d "$1")" \
    --spec "$WORK/spec-$1.json" >/dev/null 2>>"$WORK/create.log"' create ||
    fail "creating the model: $(tail -n 5 "$WORK/create.log")"
n=$(find "$WORK/state/mci/bench" -name '*.json' | wc -l)
[ "$n" = "$MCIS" ] || fail "the model holds $n MCIs, not $MCIS"

start_mosquitto
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
mkdir -p "$WORK/control" "$WORK/policies"
bg control "$DSF_BUILD/control/damselfly-control" --set id=bench --set log.level=warn \
    --set policies.dir="$WORK/policies" --set state.dir="$WORK/control" \
    --set federation.dir="$WORK/state" --set tumblebug.url="$TB_URL" \
    --set tumblebug.user="$TB_USER" --set tumblebug.password="$TB_PASS" \
    --set mqtt.url="$MQTT_URL" --set http.listen="127.0.0.1:$PORT"
wait_for 15 curl -sf "$BASE/healthz" || fail "damselfly-control did not start"
TOKEN_FILE="$WORK/control/http.token"
bytes=$(curl -sf -H "Authorization: Bearer $(cat "$TOKEN_FILE")" -o "$WORK/overview.json" \
    -w '%{size_download} bytes in %{time_total} s' "$BASE/api/v1/overview") ||
    fail "GET /api/v1/overview failed"
log "GET /api/v1/overview: $bytes"
/usr/bin/python3 "$SRC/bench/console_overview.py" "$BASE" "$TOKEN_FILE" "$MCIS" "$VMS" \
    "$RUNS" "$WORK" || fail "the overview in chromium"
