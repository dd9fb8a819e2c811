#!/usr/bin/env bash
# Policies are checked where users write them: the starter policies of deploy/policies pass
# --check; a policy with a mistyped key, an unknown action or a duplicate name stops --check
# and the start (exit 2), naming the file, the key path and the value.
. "$(dirname "$0")/lib.sh"

CONTROL="$DSF_BUILD/control/damselfly-control"
"$CONTROL" --set "policies.dir=$DSF_SRC/deploy/policies" --check >"$WORK/out" 2>&1 ||
    fail "the starter policies do not pass --check: $(cat "$WORK/out")"

expect_bad() { # FILE-CONTENT EXPECTED-TEXT
    rm -rf "$WORK/p" && mkdir -p "$WORK/p"
    cp "$DSF_SRC"/deploy/policies/*.json "$WORK/p/"
    printf '%s\n' "$1" >"$WORK/p/zz-bad.json"
    local mode rc
    for mode in --check start; do
        rc=0
        timeout 10 "$CONTROL" --set "policies.dir=$WORK/p" --set "state.dir=$WORK/state" \
            --set http.listen= $([ $mode = start ] || echo --check) >"$WORK/out" 2>&1 || rc=$?
        [ "$rc" = 2 ] || fail "$mode accepted a bad policy (exit $rc): $1"
        grep -qF "zz-bad.json" "$WORK/out" || fail "$mode: the file is not named: $(cat "$WORK/out")"
        grep -qF -- "$2" "$WORK/out" || fail "$mode: '$2' not in: $(cat "$WORK/out")"
    done
}
expect_bad '{"name":"x","match":{"rule":"r"},"steps":[{"action":"migrate","regoin":"r2"}]}' \
    "key 'steps[0].regoin'"
expect_bad '{"name":"x","match":{"rule":"r"},"steps":[{"action":"explode"}]}' "explode"
expect_bad '{"name":"x","match":{"rule":"r"},"steps":[]}' "key 'steps'"
expect_bad '{"name":"x","match":{"rule":"r"},"steps":[{"action":"reboot"}],"cooldown":"soon"}' \
    "key 'cooldown'"
name=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' \
    "$(ls "$DSF_SRC"/deploy/policies/*.json | head -1)")
expect_bad "{\"name\":\"$name\",\"match\":{\"rule\":\"r\"},\"steps\":[{\"action\":\"reboot\"}]}" "$name"
log "ok"
