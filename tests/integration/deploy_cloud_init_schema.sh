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

# The placeholders replaced the way the header says (envsubst): still valid. Twice: for
# one VM with its broker credentials, and with them empty (one file for every VM).
PASSWORD='pw+/0123456789abcdefABCDEF'
# render OUT [NAME=VALUE...]: agent.yaml with the placeholders replaced.
render() {
    python3 - "$YAML" "$@" <<'EOF' || fail "rendering the placeholders failed"
import sys
vals = {"NS": "default", "MCI": "mci-01", "VM": "", "CSP": "aws", "REGION": "ap-northeast-2",
        "MQTT_URL": "tcp://broker.example.net:1883",
        "RELEASE_URL": "https://downloads.example.net/damselfly/0.1.0",
        "MQTT_USERNAME": "", "MQTT_PASSWORD": ""}
vals.update(kv.split("=", 1) for kv in sys.argv[3:])
text = open(sys.argv[1]).read()
for k, v in vals.items():
    text = text.replace("${%s}" % k, v)
body = "\n".join(l for l in text.splitlines() if not l.startswith("#"))
assert "${" not in body, "a placeholder was left"
open(sys.argv[2], "w").write(text)
EOF
}
render "$WORK/rendered.yaml" VM=vm-01 MQTT_USERNAME=default/mci-01/vm-01 "MQTT_PASSWORD=$PASSWORD"
render "$WORK/rendered-nocreds.yaml"
for r in rendered rendered-nocreds; do
    schema_ok "$WORK/$r.yaml" || fail "$r.yaml is invalid: $(cat "$WORK/schema.log")"
done

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

log "structure: user, unit, password file, installer call"
# structure RENDERED PREFIX: checks it, writes PREFIX.password (the password file's content)
# and PREFIX.args (the installer's arguments, one per line, the password file's path
# replaced by PREFIX.password).
structure() {
    python3 - "$1" "$DSF_SRC/deploy/systemd/damselfly-agent.service" "$2" <<'EOF' ||
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
unit = open(sys.argv[2]).read()
out = sys.argv[3]
users = [u for u in cfg["users"] if isinstance(u, dict) and u.get("name") == "damselfly"]
assert users and users[0].get("system") is True, "no system user damselfly in users:"
files = {f["path"]: f for f in cfg["write_files"]}
f = files.get("/etc/systemd/system/damselfly-agent.service")
assert f, "write_files does not install the unit"
assert f["content"] == unit, "the unit in agent.yaml differs from deploy/systemd/damselfly-agent.service"
pw_path = "/var/lib/damselfly-install/mqtt-password"
pw = files.get(pw_path)
assert pw, "write_files does not write the password file"
assert pw["permissions"] == "0600" and pw["owner"] == "root:root", pw
open(out + ".password", "w").write(pw["content"])
calls = [i for i, c in enumerate(cfg["runcmd"]) if isinstance(c, list) and any(
    str(a).endswith("install-agent.sh") for a in c)]
assert len(calls) == 1, "runcmd must run install-agent.sh once"
call = cfg["runcmd"][calls[0]]
argv = [str(a) for a in call[call.index(next(a for a in call if str(a).endswith("install-agent.sh"))) + 1:]]
assert argv[argv.index("--mqtt-password-file") + 1] == pw_path, argv
secret = pw["content"].strip()
assert not secret or not any(secret in a for a in argv), "the password is on a command line"
# After the installer, the password file goes.
assert ["rm", "-f", pw_path] in cfg["runcmd"][calls[0] + 1:], "runcmd does not remove " + pw_path
with open(out + ".args", "w") as f:
    for a in argv:
        f.write((out + ".password" if a == pw_path else a) + "\n")
EOF
        fail "agent.yaml structure check failed (see above)"
}
structure "$WORK/rendered.yaml" "$WORK/vm"
structure "$WORK/rendered-nocreds.yaml" "$WORK/any"

# The installer with exactly those arguments (binary and root swapped for the test's).
[ -x "$AGENT" ] || fail "$AGENT is not built (build the whole tree first)"
# install PREFIX ROOT: install-agent.sh with PREFIX.args into ROOT.
install() {
    local iargs i
    mapfile -t iargs <"$1.args"
    for i in "${!iargs[@]}"; do
        if [ "${iargs[$i]}" = --binary ]; then iargs[i + 1]=$AGENT; fi
    done
    bash "$DSF_SRC/deploy/install-agent.sh" "${iargs[@]}" --prefix "$2" >"$WORK/install.log" 2>&1 ||
        fail "install-agent.sh rejects the runcmd arguments: $(cat "$WORK/install.log")"
}
log "install-agent.sh with the runcmd arguments, with credentials"
install "$WORK/vm" "$WORK/root"
cfg="$WORK/root/etc/damselfly/agent.json"
python3 - "$cfg" "$PASSWORD" <<'EOF' || fail "config from cloud-init arguments is wrong: $(cat "$cfg")"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["identity"]["ns"] == "default" and c["identity"]["mci"] == "mci-01", c
assert c["identity"]["vm"] == "vm-01", c["identity"]
assert c["mqtt"] == {"url": "tcp://broker.example.net:1883", "username": "default/mci-01/vm-01",
                     "password": sys.argv[2]}, c["mqtt"]
EOF
mode=$(stat -c %a "$cfg")
[ "$mode" = 600 ] || fail "$cfg holds the password with mode $mode, want 600"
[ $((0$mode & 077)) -eq 0 ] || fail "$cfg is readable by others than its owner"
[ "$(stat -c %u "$cfg")" = "$(id -u)" ] || fail "$cfg is not owned by the installing user"
grep -qF -- "$PASSWORD" "$WORK/install.log" && fail "install-agent.sh printed the password"

log "install-agent.sh with the runcmd arguments, without credentials (hostname as vm)"
install "$WORK/any" "$WORK/root2"
python3 - "$WORK/root2/etc/damselfly/agent.json" "$(uname -n)" <<'EOF' || fail "config without credentials is wrong"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["identity"]["vm"] == sys.argv[2], c["identity"]
assert c["mqtt"] == {"url": "tcp://broker.example.net:1883"}, c["mqtt"]
EOF

log "PASS"
