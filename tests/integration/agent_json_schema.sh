#!/usr/bin/env bash
# The agent's JSON output follows schemas/: the snapshot and a json-format push match
# metric.schema.json, the retained status matches agent-status.schema.json.
. "$(dirname "$0")/lib.sh"

start_mosquitto
PORT=$(free_port)
bg sub mosquitto_sub -V 5 -p "$MQTT_PORT" -t 'dsf/#' -F '%t|%r|%P|%x'
sleep 0.5
bg agent "$AGENT" --set identity.ns=ns1 --set identity.mci=mci1 --set identity.vm=j1 \
    --set interval=1s --set push.format=json --set mqtt.url="$MQTT_URL" \
    --set http.listen="127.0.0.1:$PORT" --set privileges.drop=false
pushed() { grep -q '^dsf/m/.*fmt:json' "$WORK/sub.log"; }
wait_for 15 pushed || fail "no json message pushed"
curl -sf "http://127.0.0.1:$PORT/api/v1/snapshot" >"$WORK/snapshot.json" || fail "snapshot"
python3 - "$DSF_SRC/schemas" "$WORK/snapshot.json" "$WORK/sub.log" <<'PY' || fail "schema"
import json, sys, jsonschema
schemas, snapshot, sub = sys.argv[1:]
metric = json.load(open(f"{schemas}/metric.schema.json"))
status = json.load(open(f"{schemas}/agent-status.schema.json"))
jsonschema.Draft202012Validator.check_schema(metric)
jsonschema.validate(json.load(open(snapshot)), metric)
checked = {"metric": 0, "status": 0}
for line in open(sub):
    topic, _retained, props, payload = line.rstrip("\n").split("|", 3)
    doc = json.loads(bytes.fromhex(payload))
    if topic.startswith("dsf/m/"):
        jsonschema.validate(doc, metric)
        checked["metric"] += 1
    elif topic.endswith("/status"):
        jsonschema.validate(doc, status)
        checked["status"] += 1
assert checked["metric"] >= 1 and checked["status"] >= 1, checked
try:
    jsonschema.validate([{"name": "cpu", "tags": {}, "fields": {}, "timestamp": 1}], metric)
    sys.exit("the schema accepted a point without identity or fields")
except jsonschema.ValidationError:
    pass
print("valid:", checked)
PY
log "ok"
