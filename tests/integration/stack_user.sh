#!/usr/bin/env bash
# The README's main command as a user without root (the README's "sudo user"): with a login
# PATH (no /usr/sbin, where Debian keeps mosquitto) and no privileges, `scripts/damselfly up`
# starts every part healthy, `status` says so, and `down` leaves none of its processes.
# The user gets copies of the scripts, starter files and programs: a clone under /root is
# not readable by others.
. "$(dirname "$0")/lib.sh"

stack_env
user=nobody
src=$WORK/src
mkdir -p "$src/build"
cp -r "$DSF_SRC/scripts" "$DSF_SRC/deploy" "$src/"
for prog in agent/damselfly-agent collector/damselfly-collector alarm/damselfly-alarm \
    control/damselfly-control federation/damselfly-fed balancer/damselfly-balancer; do
    install -D -m 0755 "$DSF_BUILD/$prog" "$src/build/$prog"
done
chmod 0755 "$WORK"
chown -R "$user:" "$src"
export DAMSELFLY_BUILD=$src/build DAMSELFLY_STATE=$src/state
as_user() {
    local vars
    mapfile -t vars < <(env | grep -E '^(DAMSELFLY_|ASAN_OPTIONS=|UBSAN_OPTIONS=)')
    runuser -u "$user" -- env -i HOME="$src" USER="$user" LOGNAME="$user" \
        PATH=/usr/local/bin:/usr/bin:/bin "${vars[@]}" "$@"
}
as_user "$src/scripts/damselfly" up >"$WORK/up.log" 2>&1 || fail "up as $user: $(cat "$WORK/up.log")"
healthy() {
    as_user "$src/scripts/damselfly" status >"$WORK/status.log" 2>&1 && stack_healthy "$WORK/status.log"
}
wait_for 60 healthy || fail "status as $user not healthy within 60 s: $(cat "$WORK/status.log")"
cat "$WORK/status.log"
owned=$(pgrep -u "$user" -f "$DAMSELFLY_STATE|$src" | wc -l)
[ "$owned" -ge 10 ] || fail "expected the stack's processes to run as $user, found $owned"
pgrep -u root -f "$DAMSELFLY_STATE" && fail "a part of the stack runs as root"
as_user "$src/scripts/damselfly" down >"$WORK/down.log" 2>&1 || fail "down as $user: $(cat "$WORK/down.log")"
left() { pgrep -u "$user" -f "$DAMSELFLY_STATE|$src" >/dev/null && return 1 || return 0; }
wait_for 5 left || fail "processes of $user left after down: $(pgrep -a -u "$user")"
log "ok"
