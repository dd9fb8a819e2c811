#!/usr/bin/env bash
# The static build: DAMSELFLY_STATIC=ON yields a damselfly-agent that `file` calls statically
# linked, that needs no shared library, and that runs and pushes to a real mosquitto.
. "$(dirname "$0")/lib.sh"

STATIC_BUILD="$DSF_BUILD/static-agent"
log "building the static agent in $STATIC_BUILD"
cmake -S "$DSF_SRC" -B "$STATIC_BUILD" -DCMAKE_BUILD_TYPE=Release -DDAMSELFLY_STATIC=ON \
    -DDAMSELFLY_TESTS=OFF -DDAMSELFLY_SANITIZE=OFF -DDAMSELFLY_FUZZ=OFF \
    -DCMAKE_C_COMPILER=gcc >"$WORK/cmake.log" 2>&1 || fail "configure the static build"
cmake --build "$STATIC_BUILD" -j "$(nproc)" --target damselfly-agent >"$WORK/build.log" 2>&1 ||
    fail "build the static agent: $(grep -m3 -i error "$WORK/build.log")"
BIN="$STATIC_BUILD/agent/damselfly-agent"
file "$BIN" | tee "$WORK/file.out"
grep -q 'statically linked' "$WORK/file.out" || fail "file does not say statically linked"
if ldd "$BIN" >"$WORK/ldd.out" 2>&1; then
    grep -q 'not a dynamic executable\|statically linked' "$WORK/ldd.out" ||
        fail "ldd lists shared libraries: $(cat "$WORK/ldd.out")"
fi
strip -o "$WORK/agent.stripped" "$BIN"
log "stripped size: $(stat -c %s "$WORK/agent.stripped") bytes (with Kafka and TLS)"

start_mosquitto
bg sub mosquitto_sub -V 5 -p "$MQTT_PORT" -t 'dsf/m/#' -F '%t|%r|%P|%x'
sleep 0.5
bg agent "$WORK/agent.stripped" --set identity.ns=ns1 --set identity.mci=mci1 \
    --set identity.vm=static1 --set interval=1s --set mqtt.url="$MQTT_URL" \
    --set http.listen= --set privileges.user=nobody
arrived() { [ "$(grep -c '/static1|' "$WORK/sub.log" || true)" -ge 3 ]; }
wait_for 20 arrived || fail "the static agent's messages did not arrive"
stop_pid "$BG_PID"
python3 "$DSF_SRC/tests/integration/check_stream.py" "$WORK/sub.log" --ns ns1 --mci mci1 \
    --vm static1 --min 3 || fail "stream from the static agent"
log "ok"
