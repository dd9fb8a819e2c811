#!/usr/bin/env bash
# deploy/cloud-init/agent.yaml passes cloud-init's own schema check (and a broken copy does
# not, so the check is really looking), its copy of the unit is the shipped unit, and the
# installer accepts the arguments its runcmd passes.
. "$(dirname "$0")/lib.sh"

YAML="$DSF_SRC/deploy/cloud-init/agent.yaml"
command -v cloud-init >/dev/null ||
    fail "cloud-init is not installed (scripts/install-deps.sh test installs it)"
python3 -c 'import yaml' 2>/dev/null || fail "python3 yaml module missing: apt-get install python3-yaml"

# schema_ok FILE: cloud-init's own validator (--config-file: 22.4 on Debian 12 and later).
schema_ok() { cloud-init schema --config-file "$1" >"$WORK/schema.log" 2>&1; }

log "cloud-init schema on $YAML"
schema_ok "$YAML" || fail "cloud-init schema rejects agent.yaml: $(cat "$WORK/schema.log")"

# The placeholders replaced the way the header says (envsubst): still valid.
python3 - "$YAML" "$WORK/rendered.yaml" <<'EOF' || fail "rendering the placeholders failed"
import sys
vals = {"NS": "default", "MCI": "mci-01", "CSP": "aws", "REGION": "ap-northeast-2",
        "MQTT_URL": "tcp://broker.example.net:1883",
        "RELEASE_URL": "https://downloads.example.net/damselfly/0.1.0"}
text = open(sys.argv[1]).read()
for k, v in vals.items():
    text = text.replace("${%s}" % k, v)
open(sys.argv[2], "w").write(text)
EOF
schema_ok "$WORK/rendered.yaml" || fail "rendered agent.yaml is invalid: $(cat "$WORK/schema.log")"

# Broken copies must fail the same check, or a passing check proves nothing.
log "broken copies must be rejected"
sed 's/^\( *system:\) true$/\1 "yes please"/' "$YAML" >"$WORK/broken1.yaml"
sed 's/^runcmd:$/runcmd: 5\nunused:/' "$YAML" >"$WORK/broken2.yaml"
sed '1d' "$YAML" >"$WORK/broken3.yaml" # no #cloud-config header
for b in broken1 broken2 broken3; do
    cmp -s "$YAML" "$WORK/$b.yaml" && fail "$b: the edit did not apply (agent.yaml changed shape?)"
    if schema_ok "$WORK/$b.yaml"; then
        fail "cloud-init schema accepted $b.yaml: $(cat "$WORK/schema.log")"
    fi
done

log "structure: user, unit, installer call"
python3 - "$WORK/rendered.yaml" "$DSF_SRC/deploy/systemd/damselfly-agent.service" \
    "$WORK/installer-args" <<'EOF' || fail "agent.yaml structure check failed (see above)"
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
unit = open(sys.argv[2]).read()
users = [u for u in cfg["users"] if isinstance(u, dict) and u.get("name") == "damselfly"]
assert users and users[0].get("system") is True, "no system user damselfly in users:"
files = {f["path"]: f for f in cfg["write_files"]}
f = files.get("/etc/systemd/system/damselfly-agent.service")
assert f, "write_files does not install the unit"
assert f["content"] == unit, "the unit in agent.yaml differs from deploy/systemd/damselfly-agent.service"
calls = [c for c in cfg["runcmd"] if isinstance(c, list) and any(
    str(a).endswith("install-agent.sh") for a in c)]
assert len(calls) == 1, "runcmd must run install-agent.sh once"
argv = calls[0][calls[0].index(next(a for a in calls[0] if str(a).endswith("install-agent.sh"))) + 1:]
# One argument per line; the binary path is replaced by the test.
with open(sys.argv[3], "w") as out:
    for a in argv:
        out.write(str(a) + "\n")
EOF

# The installer with exactly those arguments (binary and root swapped for the test's).
[ -x "$AGENT" ] || fail "$AGENT is not built (build the whole tree first)"
log "install-agent.sh with the runcmd arguments"
mapfile -t iargs <"$WORK/installer-args"
for i in "${!iargs[@]}"; do
    if [ "${iargs[$i]}" = --binary ]; then iargs[i + 1]=$AGENT; fi
done
bash "$DSF_SRC/deploy/install-agent.sh" "${iargs[@]}" --prefix "$WORK/root" \
    >"$WORK/install.log" 2>&1 || fail "install-agent.sh rejects the runcmd arguments: $(cat "$WORK/install.log")"
python3 - "$WORK/root/etc/damselfly/agent.json" <<'EOF' || fail "config from cloud-init arguments is wrong"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["identity"]["ns"] == "default" and c["identity"]["mci"] == "mci-01", c
assert c["mqtt"]["url"] == "tcp://broker.example.net:1883", c
EOF

log "PASS"
