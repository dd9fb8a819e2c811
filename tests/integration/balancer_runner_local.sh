#!/usr/bin/env bash
# The local runner (through dsf-runner-drive, as the balancer drives it) starts two real
# collectors that follow assignments and beat on a real mosquitto; stops one (SIGTERM, and
# SIGKILL when it does not go: here it is frozen with SIGSTOP), reaping it without leaving a
# zombie; a restarted runner adopts the survivor from children.json instead of starting
# another, and scaling back to two starts only the missing member. Each member loads its own
# config file (runner.local.config with {id}: its own bus credentials in a real deployment).
. "$(dirname "$0")/lib.sh"

DRIVE="$DSF_BUILD/tests/tools/dsf-runner-drive"
COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
[ -x "$DRIVE" ] || fail "$DRIVE is missing"
MEMBERS="$WORK/members"

# Whatever happens, no collector of this test outlives it.
kill_members() {
    local pid
    for pid in $(members_pids); do kill -9 "$pid" 2>/dev/null || true; done
}
trap 'kill_members; cleanup' EXIT

members_pids() {
    [ -f "$MEMBERS/children.json" ] || return 0
    python3 -c 'import json,sys; [print(c["pid"]) for c in json.load(open(sys.argv[1]))["children"]]' \
        "$MEMBERS/children.json"
}
pid_of() { # ID: the pid children.json records for it
    python3 -c '
import json, sys
for c in json.load(open(sys.argv[1]))["children"]:
    if c["id"] == sys.argv[2]:
        print(c["pid"])' "$MEMBERS/children.json" "$1"
}

start_mosquitto
for id in rc-1 rc-2; do echo "{\"pool\": \"pool-of-$id\"}" >"$WORK/collector-$id.json"; done
bg hb mosquitto_sub -V 5 -p "$MQTT_PORT" -t 'dsf/c/+/hb' -v

# start_drive: a runner reading commands from a fifo; say CMD sends one, answer PATTERN waits
# for its line.
DRIVES=0
start_drive() {
    DRIVES=$((DRIVES + 1))
    rm -f "$WORK/drive.in"
    mkfifo "$WORK/drive.in"
    DRIVE_OUT="$WORK/drive-$DRIVES.out"
    : >"$DRIVE_OUT"
    "$DRIVE" --set runner.kind=local --set runner.local.collector="$COLLECTOR" \
        --set runner.local.dir="$MEMBERS" --set runner.local.id_prefix=rc \
        --set runner.local.stop_timeout=1s --set runner.local.config="$WORK/collector-{id}.json" \
        --set runner.local.set="mqtt.url=$MQTT_URL,heartbeat=300ms,output.url=http://127.0.0.1:9" \
        <"$WORK/drive.in" >"$DRIVE_OUT" 2>"$WORK/drive-$DRIVES.log" &
    DRIVE_PID=$!
    DSF_PIDS+=("$DRIVE_PID")
    exec 3>"$WORK/drive.in"
}
say() { echo "$1" >&3; }
answered() { grep -qxF -- "$1" "$DRIVE_OUT"; }
expect() { # CMD ANSWER
    say "$1"
    wait_for 10 answered "$1: $2" || fail "'$1' did not answer '$2': $(cat "$DRIVE_OUT")"
}
stop_drive() {
    exec 3>&-
    wait "$DRIVE_PID" || fail "dsf-runner-drive exited with $?: $(cat "$WORK/drive-$DRIVES.log")"
}
beating() { grep -q "^dsf/c/$1/hb .*\"status\":\"online\"" "$WORK/hb.log"; }
beats_since() { # ID LINE: a heartbeat of ID after line LINE of the capture
    tail -n "+$(($2 + 1))" "$WORK/hb.log" | grep -q "^dsf/c/$1/hb .*\"epoch\""
}
running() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" | cut -c1)" != Z ]; }
gone() { ! ps -p "$1" >/dev/null 2>&1; }
unlisted() { [ -z "$(pid_of "$1")" ]; }

# ---- two members, beating
start_drive
expect "replicas" "0"
expect "scale 2" "ok"
expect "replicas" "2"
wait_for 15 beating rc-1 || fail "no heartbeat from rc-1"
wait_for 15 beating rc-2 || fail "no heartbeat from rc-2"
P1=$(pid_of rc-1) P2=$(pid_of rc-2)
[ -n "$P1" ] && [ -n "$P2" ] || fail "children.json lacks a member: $(cat "$MEMBERS/children.json")"
tr '\0' ' ' <"/proc/$P1/cmdline" | grep -q -- "--set mqtt.follow_assign=true" ||
    fail "rc-1 does not follow assignments: $(tr '\0' ' ' <"/proc/$P1/cmdline")"
[ -d "$MEMBERS/rc-1/spool" ] && [ -s "$MEMBERS/rc-1/collector.log" ] ||
    fail "rc-1 has no spool directory or log of its own: $(ls -R "$MEMBERS")"
grep -q '^dsf/c/rc-2/hb .*"pool":"pool-of-rc-2"' "$WORK/hb.log" ||
    fail "rc-2 did not load its own config file: $(grep rc-2 "$WORK/hb.log" | tail -n 1)"
log "rc-1 (pid $P1) and rc-2 (pid $P2) beat, each with its own config file"

# ---- stop one that ignores SIGTERM (frozen): SIGKILL after the timeout, reaped
kill -STOP "$P2"
expect "stop rc-2" "ok"
expect "replicas" "1"
expect "owns rc-2" "0"
wait_for 10 gone "$P2" || fail "rc-2 (pid $P2) still exists: $(ps -o pid,stat,cmd -p "$P2")"
grep -q "SIGKILL" "$WORK/drive-1.log" || fail "no SIGKILL logged: $(cat "$WORK/drive-1.log")"
wait_for 5 unlisted rc-2 || fail "children.json still lists rc-2"
running "$P1" || fail "rc-1 died with rc-2"
expect "stop nobody" "error: cannot stop nobody: not a running member this runner started"
log "rc-2 stopped (SIGKILL after 1 s), reaped, forgotten"
stop_drive

# ---- the runner's restart: adopts rc-1, starts no other
running "$P1" || fail "rc-1 did not outlive the runner"
start_drive
expect "replicas" "1"
expect "owns rc-1" "1"
grep -q "adopted rc-1 (pid $P1)" "$WORK/drive-2.log" || fail "rc-1 not adopted: $(cat "$WORK/drive-2.log")"
HB_LINE=$(wc -l <"$WORK/hb.log")
expect "scale 1" "ok"
expect "scale 2" "ok"
expect "replicas" "2"
[ "$(pid_of rc-1)" = "$P1" ] || fail "rc-1 was replaced: $(cat "$MEMBERS/children.json")"
P2B=$(pid_of rc-2)
[ -n "$P2B" ] && [ "$P2B" != "$P2" ] || fail "rc-2 was not started again"
[ "$(members_pids | wc -l)" = 2 ] || fail "not two members: $(cat "$MEMBERS/children.json")"
wait_for 15 beats_since rc-2 "$HB_LINE" || fail "the new rc-2 does not beat"
log "restarted runner adopted rc-1 (pid $P1), started only rc-2 again (pid $P2B)"

# ---- an adopted member (not our child) stops on SIGTERM too
expect "stop rc-1" "ok"
wait_for 10 unlisted rc-1 || fail "rc-1 still listed after its stop"
running "$P1" && fail "rc-1 (pid $P1) still runs after its stop"
expect "stop -" "ok"
wait_for 10 gone "$P2B" || fail "rc-2 (pid $P2B) was not reaped"
expect "replicas" "0"
stop_drive
log "ok"
