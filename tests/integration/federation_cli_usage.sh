#!/usr/bin/env bash
# damselfly-fed's command line without any backend: an unknown command is a usage error
# (exit 2) found before a driver or the state directory is touched, and the state directory
# is the key state.dir, set by --state-dir, --set, the environment or a configuration file.
source "$(dirname "$0")/lib.sh"

FED="$DSF_BUILD/federation/damselfly-fed"
[ -x "$FED" ] || fail "$FED is missing"

# expect_exit CODE TEXT COMMAND...: COMMAND exits CODE and its output contains TEXT.
expect_exit() {
    local code=$1 text=$2 rc=0
    shift 2
    "$@" >"$WORK/out" 2>&1 || rc=$?
    [ "$rc" -eq "$code" ] || fail "'$*' exited $rc, want $code: $(cat "$WORK/out")"
    grep -qF -- "$text" "$WORK/out" || fail "'$*' does not say '$text': $(cat "$WORK/out")"
}

log "an unknown command is a usage error, whatever the driver and state directory"
unknown="damselfly-fed: unknown command 'frobnicate'. Try 'damselfly-fed --help'."
# A state directory that cannot be made: the command must not get that far.
expect_exit 2 "$unknown" "$FED" --state-dir /proc/version/state frobnicate
expect_exit 2 "$unknown" "$FED" --state-dir "$WORK/state" frobnicate ns1
expect_exit 2 "$unknown" "$FED" --driver tumblebug --set tumblebug.url=http://127.0.0.1:1/tb \
    --state-dir "$WORK/state" frobnicate
[ ! -e "$WORK/state" ] || fail "an unknown command created the state directory: $(ls -R "$WORK/state")"
expect_exit 2 "no command given" "$FED" --state-dir "$WORK/state"
expect_exit 2 "unknown option '--frobnicate'" "$FED" --state-dir "$WORK/state" status --frobnicate
[ ! -e "$WORK/state" ] || fail "a usage error created the state directory"

log "the state directory is state.dir"
"$FED" --help >"$WORK/help" || fail "--help failed"
grep -qF -- "--set state.dir=DIR" "$WORK/help" || fail "--help does not name state.dir"
! grep -qF "state_dir" "$WORK/help" || fail "--help still names state_dir: $(grep -F state_dir "$WORK/help")"
for how in "--state-dir $WORK/s1" "--set state.dir=$WORK/s2"; do
    # shellcheck disable=SC2086 # the words of how are the arguments
    "$FED" $how status >"$WORK/out" 2>&1 || fail "status with $how: $(cat "$WORK/out")"
done
DAMSELFLY_STATE_DIR="$WORK/s3" "$FED" status >"$WORK/out" 2>&1 || fail "status with DAMSELFLY_STATE_DIR: $(cat "$WORK/out")"
echo "{\"state\": {\"dir\": \"$WORK/s4\"}}" >"$WORK/fed.json"
"$FED" -c "$WORK/fed.json" status >"$WORK/out" 2>&1 || fail "status with state.dir in a file: $(cat "$WORK/out")"
for n in 1 2 3 4; do
    [ -d "$WORK/s$n/mci" ] || fail "state directory s$n was not used: $(ls "$WORK")"
done
expect_exit 2 "state_dir" "$FED" --set state_dir="$WORK/s5" status
log "PASS"
