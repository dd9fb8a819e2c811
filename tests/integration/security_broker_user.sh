#!/usr/bin/env bash
# Issuing credentials to a running broker: `damselfly bus-acl` run again keeps every
# password (the principals already given theirs keep connecting) and adds the new ones;
# `damselfly bus-user add` admits a new agent at once (SIGHUP, no restart) and `bus-user
# remove` disconnects it and refuses it from then on. The passwords are only in 0600 files
# of a 0700 directory, never in the password file or the ACL.
. "$(dirname "$0")/lib.sh"

LAUNCHER="$DSF_SRC/scripts/damselfly"
start_mosquitto_auth --agent ns1/mci1/vm1
echo "$MOSQUITTO_PID" >"$WORK/mosquitto.pid"
DIR=$MQTT_ACL_DIR
pub() { # NAME [PASSWORD]: NAME publishes on its own metrics topic
    mosquitto_pub -p "$MQTT_PORT" -V 5 -q 1 -u "$1" -P "${2:-$(mqtt_creds "$1")}" \
        -t "dsf/m/0/$1" -m x
}

log "files and modes"
vm1_pw=$(mqtt_creds ns1/mci1/vm1)
[[ $vm1_pw =~ ^[0-9a-f]{48}$ ]] || fail "vm1's password is not 48 hex digits: '$vm1_pw'"
[ "$(stat -c %a "$DIR/creds")" = 700 ] || fail "creds/ is not 0700"
[ "$(stat -c %a "$DIR/creds/ns1%2Fmci1%2Fvm1")" = 600 ] || fail "vm1's creds file is not 0600"
[ "$(stat -c %a "$DIR/passwd")" = 640 ] || fail "passwd is not 0640"
grep -rqF "$vm1_pw" "$DIR/passwd" "$DIR/acl" && fail "a clear password is in passwd or acl"
# shellcheck disable=SC2016 # $7$101$: mosquitto's PBKDF2-SHA512 tag, not a variable
grep -q '^ns1/mci1/vm1:\$7\$101\$' "$DIR/passwd" || fail "vm1 has no PBKDF2 hash in passwd"
pub ns1/mci1/vm1 || fail "vm1 cannot publish"

log "bus-acl again: passwords kept, principals added, broker reloaded"
hash_before=$(grep '^ns1/mci1/vm1:' "$DIR/passwd")
"$LAUNCHER" bus-acl "$DIR" --agent ns1/mci1/vm1 --operator --collector c1 \
    --pid-file "$WORK/mosquitto.pid" >"$WORK/rerun.out" 2>&1 || fail "bus-acl: $(cat "$WORK/rerun.out")"
[ "$(mqtt_creds ns1/mci1/vm1)" = "$vm1_pw" ] || fail "bus-acl changed vm1's password"
[ "$(grep '^ns1/mci1/vm1:' "$DIR/passwd")" = "$hash_before" ] || fail "vm1's hash changed"
[ "$(grep -c '^operator:' "$DIR/passwd")" = 1 ] || fail "the operator is not in passwd once"
grep -qx 'user collector.c1' "$DIR/acl" || fail "collector.c1 has no ACL block"
pub ns1/mci1/vm1 || fail "vm1 cannot publish after bus-acl ran again"
wait_for 5 mosquitto_pub -p "$MQTT_PORT" -V 5 -q 1 -u collector.c1 \
    -P "$(mqtt_creds collector.c1)" -t dsf/c/c1/hb -m '{}' ||
    fail "collector.c1 cannot publish its heartbeat after bus-acl reloaded the broker"

log "bus-user add: a new agent connects without a broker restart"
pub ns1/mci1/vm3 not-yet 2>/dev/null && fail "an unknown agent published"
"$LAUNCHER" bus-user add ns1/mci1/vm3 --dir "$DIR" --pid-file "$WORK/mosquitto.pid" \
    >"$WORK/add.out" 2>&1 || fail "bus-user add: $(cat "$WORK/add.out")"
grep -q 'reloaded the broker' "$WORK/add.out" || fail "bus-user add did not reload: $(cat "$WORK/add.out")"
wait_for 5 pub ns1/mci1/vm3 || fail "the added agent cannot publish"
vm3_pw=$(mqtt_creds ns1/mci1/vm3)
mosquitto_sub -p "$MQTT_PORT" -V 5 -u ns1/mci1/vm3 -P "$(mqtt_creds ns1/mci1/vm3)" \
    -t dsf/a/ns1/mci1/vm3/ack >"$WORK/sub-vm3.log" 2>&1 &
vm3_sub=$!
DSF_PIDS+=("$vm3_sub")
sleep 0.5
kill -0 $vm3_sub 2>/dev/null || fail "vm3 could not subscribe: $(cat "$WORK/sub-vm3.log")"

log "bus-user remove: the agent is disconnected and refused"
"$LAUNCHER" bus-user remove ns1/mci1/vm3 --dir "$DIR" --pid-file "$WORK/mosquitto.pid" \
    >"$WORK/remove.out" 2>&1 || fail "bus-user remove: $(cat "$WORK/remove.out")"
[ ! -e "$DIR/creds/ns1%2Fmci1%2Fvm3" ] || fail "vm3's creds file is still there"
grep -q '^ns1/mci1/vm3:' "$DIR/passwd" && fail "vm3 is still in passwd"
wait_for 5 sh -c "! kill -0 $vm3_sub 2>/dev/null" ||
    fail "the removed agent's connection was not closed"
pub ns1/mci1/vm3 "$vm3_pw" 2>/dev/null &&
    fail "the removed agent still publishes"
pub ns1/mci1/vm1 || fail "removing vm3 affected vm1"
"$LAUNCHER" bus-user remove collector.c1 --dir "$DIR" >/dev/null || fail "remove collector.c1"
grep -q 'collector.c1' "$DIR/acl" && fail "collector.c1's ACL block stayed"

log "bad names are usage errors"
rc=0
"$LAUNCHER" bus-acl "$DIR" --agent ns1/vm1 >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "bus-acl --agent ns1/vm1 exited $rc, not 2"
rc=0
"$LAUNCHER" bus-user add 'ns1/mci1/vm#' --dir "$DIR" >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "bus-user add with '#' exited $rc, not 2"
log "ok"
