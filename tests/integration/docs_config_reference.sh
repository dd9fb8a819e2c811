#!/usr/bin/env bash
# docs/configuration.md is what scripts/config-reference prints from the daemons' own tables:
# a key added, removed or redescribed without refreshing the page fails here. Each daemon must
# also list the keys a user sets most, in well-formed rows (a generator printing nothing would
# match an empty page).
. "$(dirname "$0")/lib.sh"

DOC="$DSF_SRC/docs/configuration.md"
REFRESH="scripts/config-reference BUILD_DIR > docs/configuration.md"

log "generating the reference from $DSF_BUILD"
"$DSF_SRC/scripts/config-reference" "$DSF_BUILD" >"$WORK/configuration.md" 2>"$WORK/gen.log" ||
    fail "scripts/config-reference failed: $(cat "$WORK/gen.log")"

for want in '## damselfly-agent' '## damselfly-collector' '## damselfly-balancer' \
    '## damselfly-alarm' '## damselfly-control' '## damselfly-scraper' '| `mqtt.url` | URL | `tcp://127.0.0.1:1883` |' \
    '`DAMSELFLY_HTTP_LISTEN`' '| `runner.kubernetes.deployment` |' '| `scale.max` | integer | `8` |'; do
    grep -qF -- "$want" "$WORK/configuration.md" || fail "the generated reference lacks '$want'"
done
# One row per key: a row without its five cells would render as a broken table.
awk -F' \\| ' '/^\| `/ && NF != 5 { print; bad = 1 } END { exit bad }' "$WORK/configuration.md" \
    >"$WORK/badrows.log" || fail "rows without 5 cells: $(head -n 3 "$WORK/badrows.log")"

log "comparing with docs/configuration.md"
[ -f "$DOC" ] || fail "docs/configuration.md is missing: run $REFRESH"
if ! diff -u "$DOC" "$WORK/configuration.md" >"$WORK/diff.txt"; then
    head -n 40 "$WORK/diff.txt" >&2
    fail "docs/configuration.md is stale (diff above: - committed, + the code): run $REFRESH"
fi
log "PASS"
