# Helpers for the alarm_notify_* tests (sourced after lib.sh): HTTP and SMTP sinks and the
# notifier driver, which reads commands from a FIFO held open on fd 3.
DRIVE="$DSF_BUILD/tests/tools/dsf-notify-drive"
TOOLS="$DSF_SRC/tests/tools"
[ -x "$DRIVE" ] || fail "$DRIVE not built"

# start_sink NAME [notify_sink.py options]: sets NAME_PORT; requests go to $WORK/NAME.jsonl.
start_sink() {
    local name=$1; shift
    bg "sink-$name" python3 "$TOOLS/notify_sink.py" "$WORK/$name.port" "$WORK/$name.jsonl" "$@"
    wait_for 10 test -s "$WORK/$name.port" || fail "sink $name did not start"
    printf -v "${name}_PORT" '%s' "$(cat "$WORK/$name.port")"
    touch "$WORK/$name.jsonl"
}

# start_smtp_sink: sets SMTP_PORT; messages land in $WORK/mail/N.eml.
start_smtp_sink() {
    bg smtp python3 "$TOOLS/smtp_sink.py" "$WORK/smtp.port" "$WORK/mail"
    wait_for 10 test -s "$WORK/smtp.port" || fail "SMTP sink did not start"
    SMTP_PORT=$(cat "$WORK/smtp.port")
}

# posts NAME: requests the sink answered with 200.
posts() { grep -c '"status": 200' "$WORK/$1.jsonl" || true; }
# has_posts NAME N: at least N answered requests (for wait_for).
has_posts() { [ "$(posts "$1")" -ge "$2" ]; }

# start_drive ROUTING_FILE [API_LISTEN]: the driver on state dir $WORK/state.
start_drive() {
    rm -f "$WORK/cmd"
    mkfifo "$WORK/cmd"
    "$DRIVE" "$1" "$WORK/state" ${2:-} <"$WORK/cmd" >"$WORK/drive.log" 2>&1 &
    DRIVE_PID=$!
    DSF_PIDS+=("$DRIVE_PID")
    exec 3>"$WORK/cmd"
    wait_for 10 grep -q '^ready' "$WORK/drive.log" || fail "driver did not start"
}

# drive COMMAND...: sends one command and waits until the driver ran it.
drive() {
    local before
    before=$(grep -c '^done' "$WORK/drive.log" || true)
    echo "$*" >&3
    local deadline=$((SECONDS + 10))
    until [ "$(grep -c '^done' "$WORK/drive.log" || true)" -gt "$before" ]; do
        [ $SECONDS -lt $deadline ] || fail "driver did not run: $*"
        sleep 0.02
    done
}

# metric NAME_WITH_LABELS: a value from the notifier's metrics (written by the driver).
notify_metric() {
    drive metrics "$WORK/metrics.txt"
    awk -v k="$1" '$1 == k {print $2}' "$WORK/metrics.txt"
}

# stop_drive [quit|quit_flush]: the driver must exit 0 (sanitizers clean, nothing leaked).
stop_drive() {
    echo "${1:-quit}" >&3
    exec 3>&-
    local rc=0
    wait "$DRIVE_PID" || rc=$?
    [ "$rc" -eq 0 ] || fail "driver exited with $rc"
}
