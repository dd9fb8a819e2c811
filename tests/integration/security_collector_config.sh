#!/usr/bin/env bash
# Collector ids and the DLQ topic become topic levels or whole topics: an id with '/', '+' or
# '#' would make the collector subscribe to other collectors' assignments (dsf/c/+/assign) or
# publish where it should not, and a DLQ topic with a wildcard cannot be published to, or on
# a metrics topic would feed its own rejects back into itself. Each is refused when the
# configuration is read: exit 2, naming the key and the value, before anything connects.
. "$(dirname "$0")/lib.sh"

COLLECTOR="$DSF_BUILD/collector/damselfly-collector"
refused() { # KEY VALUE [--check]: exit 2 with a message naming both
    local rc=0
    timeout 10 "$COLLECTOR" ${3:-} --set "$1=$2" --set mqtt.url=tcp://127.0.0.1:1 \
        --set http.listen= >"$WORK/out.log" 2>&1 || rc=$?
    [ "$rc" = 2 ] || fail "$1=$2: exit $rc, expected 2: $(cat "$WORK/out.log")"
    grep -qF "key '$1' is '$2'" "$WORK/out.log" || fail "$1=$2: the message does not name both: $(cat "$WORK/out.log")"
}
for id in 'c1/assign' 'c+' '#' 'a/b/c'; do
    refused id "$id"
    refused id "$id" --check
done
for topic in 'dsf/+/dlq' 'dlq/#' 'dsf/m/3/ns1/mci1/vm1'; do
    refused dlq.topic "$topic"
done
echo '{"id": "x/y"}' >"$WORK/c.json"
rc=0
"$COLLECTOR" --check -c "$WORK/c.json" >"$WORK/out.log" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -qF "key 'id' is 'x/y'" "$WORK/out.log" || fail "id from a file: exit $rc: $(cat "$WORK/out.log")"
"$COLLECTOR" --check --set id=c-1.eu --set dlq.topic=ops/dlq >"$WORK/out.log" 2>&1 ||
    fail "a plain id and DLQ topic were refused: $(cat "$WORK/out.log")"
log "ok"
