#!/usr/bin/env bash
# deploy/install-agent.sh into a directory (--prefix), twice, with the real agent binary:
# the files land where the unit expects them, the config carries the identity and passes
# the agent's own --check, a second run changes nothing, and bad input changes nothing; a
# broker password given in a file or the environment, and an HTTP token given in a file,
# land in the config, which only its owner may read, and are never printed.
. "$(dirname "$0")/lib.sh"

INSTALL="$DSF_SRC/deploy/install-agent.sh"
UNIT_SRC="$DSF_SRC/deploy/systemd/damselfly-agent.service"
[ -x "$AGENT" ] || fail "$AGENT is missing: build the whole tree first (cmake --build)"
python3 -c 'import json' || fail "python3 is needed"

P="$WORK/root"
args=(--binary "$AGENT" --prefix "$P" --ns test-ns --mci test-mci --vm vm-01 --host host-01
    --csp aws --region ap-northeast-2 --mqtt-url tcp://127.0.0.1:1883
    --mqtt-username 'agent"with\quote' --http-listen 127.0.0.1:9100 --interval 2s)

# Every file under the prefix with its mode and hash: equal listings mean equal installs.
snapshot() {
    (cd "$P" && find . -printf '%y %m %p\n' | sort && find . -type f -print0 | sort -z |
        xargs -0 sha256sum)
}

log "first install"
bash "$INSTALL" "${args[@]}" >"$WORK/run1.log" 2>&1 || fail "first run failed: $(cat "$WORK/run1.log")"

bin="$P/usr/local/bin/damselfly-agent"
cfg="$P/etc/damselfly/agent.json"
unit="$P/etc/systemd/system/damselfly-agent.service"
[ -f "$bin" ] || fail "$bin not installed"
[ -x "$bin" ] || fail "$bin not executable"
cmp -s "$AGENT" "$bin" || fail "installed binary differs from $AGENT"
[ -f "$cfg" ] || fail "$cfg not written"
[ "$(stat -c %a "$cfg")" = 600 ] || fail "$cfg has mode $(stat -c %a "$cfg"), want 600 (it may hold a password)"
python3 -m json.tool "$cfg" >/dev/null || fail "$cfg is not valid JSON: $(cat "$cfg")"
python3 - "$cfg" <<'EOF' || fail "config content wrong: $(cat "$cfg")"
import json, sys
c = json.load(open(sys.argv[1]))
want = {"ns": "test-ns", "mci": "test-mci", "vm": "vm-01", "host": "host-01", "csp": "aws",
        "region": "ap-northeast-2"}
assert c["identity"] == want, c["identity"]
assert c["push"]["mode"] == "mqtt", c["push"]
assert c["mqtt"] == {"url": "tcp://127.0.0.1:1883", "username": 'agent"with\\quote'}, c["mqtt"]
assert c["http"] == {"listen": "127.0.0.1:9100"}, c["http"]
assert c["interval"] == "2s"
assert c["privileges"] == {"user": "damselfly"}, c["privileges"]
EOF
"$bin" --config "$cfg" --check >"$WORK/check.log" 2>&1 ||
    fail "installed config rejected by damselfly-agent --check: $(cat "$WORK/check.log")"
[ -f "$unit" ] || fail "$unit not installed"
cmp -s "$UNIT_SRC" "$unit" || fail "installed unit differs from deploy/systemd/damselfly-agent.service"
[ -d "$P/var/lib/damselfly" ] || fail "state directory not created"
grep -q 'created system user' "$WORK/run1.log" && fail "a --prefix install created a user"
snapshot >"$WORK/snap1"

log "second install: nothing may change"
bash "$INSTALL" "${args[@]}" >"$WORK/run2.log" 2>&1 || fail "second run failed: $(cat "$WORK/run2.log")"
snapshot >"$WORK/snap2"
diff -u "$WORK/snap1" "$WORK/snap2" || fail "second run changed the installed files"
grep -q '^install-agent.sh: installed' "$WORK/run2.log" &&
    fail "second run replaced files: $(cat "$WORK/run2.log")"

log "--keep-config without a binary keeps everything"
bash "$INSTALL" --prefix "$P" --keep-config >"$WORK/run3.log" 2>&1 ||
    fail "--keep-config run failed: $(cat "$WORK/run3.log")"
snapshot >"$WORK/snap3"
diff -u "$WORK/snap1" "$WORK/snap3" || fail "--keep-config changed the installed files"

log "bad input is refused and leaves the install alone"
# rejected by the installer (MQTT topic level) ...
if bash "$INSTALL" "${args[@]}" --ns 'a/b' >"$WORK/bad1.log" 2>&1; then
    fail "--ns with '/' accepted"
fi
grep -q -- "--ns 'a/b'" "$WORK/bad1.log" || fail "error does not name --ns: $(cat "$WORK/bad1.log")"
# ... by the agent's own --check (a duration it cannot parse) ...
if bash "$INSTALL" "${args[@]}" --interval soon >"$WORK/bad2.log" 2>&1; then
    fail "--interval soon accepted: the config is not checked with damselfly-agent --check"
fi
grep -q 'check' "$WORK/bad2.log" || fail "no --check error shown: $(cat "$WORK/bad2.log")"
# ... and a newline that would break the JSON.
if bash "$INSTALL" "${args[@]}" --region $'a\nb' >"$WORK/bad3.log" 2>&1; then
    fail "a region with a newline accepted"
fi
if bash "$INSTALL" --no-such-option >"$WORK/bad4.log" 2>&1; then
    fail "unknown option accepted"
fi
snapshot >"$WORK/snap4"
diff -u "$WORK/snap1" "$WORK/snap4" || fail "a refused run changed the installed files"
for f in "$P"/etc/damselfly/* "$P"/usr/local/bin/*; do
    case ${f##*/} in agent.json | damselfly-agent) ;; *) fail "leftover file $f" ;; esac
done

log "broker password from a file or the environment: in the config, mode 0600, never printed"
PW='s3cret+/pw"with\quote'
printf '%s\n' "$PW" >"$WORK/pw"
chmod 600 "$WORK/pw"
cargs=(--binary "$AGENT" --ns test-ns --mci test-mci --vm vm-01 --mqtt-url tcp://127.0.0.1:1883
    --mqtt-username test-ns/test-mci/vm-01)
bash "$INSTALL" "${cargs[@]}" --prefix "$WORK/pf" --mqtt-password-file "$WORK/pw" >"$WORK/pf.log" 2>&1 ||
    fail "--mqtt-password-file run failed: $(cat "$WORK/pf.log")"
DAMSELFLY_MQTT_PASSWORD=$PW bash "$INSTALL" "${cargs[@]}" --prefix "$WORK/pe" >"$WORK/pe.log" 2>&1 ||
    fail "DAMSELFLY_MQTT_PASSWORD run failed: $(cat "$WORK/pe.log")"
for d in pf pe; do
    c="$WORK/$d/etc/damselfly/agent.json"
    python3 - "$c" "$PW" <<'EOF' || fail "$d: the password is not in the config: $(cat "$c")"
import json, sys
m = json.load(open(sys.argv[1]))["mqtt"]
assert m == {"url": "tcp://127.0.0.1:1883", "username": "test-ns/test-mci/vm-01",
             "password": sys.argv[2]}, m
EOF
    [ "$(stat -c %a "$c")" = 600 ] || fail "$c holds the password with mode $(stat -c %a "$c"), want 600"
    grep -qF -- "$PW" "$WORK/$d.log" && fail "install-agent.sh printed the password: $(cat "$WORK/$d.log")"
    "$WORK/$d/usr/local/bin/damselfly-agent" --config "$c" --check >"$WORK/check.log" 2>&1 ||
        fail "$d: config rejected by --check: $(cat "$WORK/check.log")"
done
if bash "$INSTALL" "${cargs[@]}" --prefix "$WORK/pb" --mqtt-password-file "$WORK/pw" \
    --mqtt-password x >"$WORK/pb.log" 2>&1; then
    fail "--mqtt-password-file and --mqtt-password together accepted"
fi
if bash "$INSTALL" "${cargs[@]}" --prefix "$WORK/pb" --mqtt-password-file "$WORK/nope" >"$WORK/pb.log" 2>&1; then
    fail "a missing --mqtt-password-file accepted"
fi
grep -q -- "--mqtt-password-file '$WORK/nope'" "$WORK/pb.log" || fail "error does not name the file: $(cat "$WORK/pb.log")"
[ ! -e "$WORK/pb" ] || [ -z "$(find "$WORK/pb" -type f)" ] || fail "a refused run installed files"

log "HTTP token from a file (--http-token-file): in the config, never printed"
TOK='tok-0123456789abcdef0123456789abcdef'
printf '%s\n' "$TOK" >"$WORK/tok"
bash "$INSTALL" "${cargs[@]}" --prefix "$WORK/pt" --push off --http-token-file "$WORK/tok" >"$WORK/pt.log" 2>&1 ||
    fail "--http-token-file run failed: $(cat "$WORK/pt.log")"
python3 - "$WORK/pt/etc/damselfly/agent.json" "$TOK" <<'EOF' || fail "the token is not in the config: $(cat "$WORK/pt/etc/damselfly/agent.json")"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["http"]["token"] == sys.argv[2] and c["push"]["mode"] == "off", c
EOF
grep -qF -- "$TOK" "$WORK/pt.log" && fail "install-agent.sh printed the token: $(cat "$WORK/pt.log")"
if bash "$INSTALL" "${cargs[@]}" --prefix "$WORK/pb" --http-token-file "$WORK/tok" --http-token x >"$WORK/pb.log" 2>&1; then
    fail "--http-token-file and --http-token together accepted"
fi
if bash "$INSTALL" "${cargs[@]}" --prefix "$WORK/pb" --http-token-file "$WORK/nope" >"$WORK/pb.log" 2>&1; then
    fail "a missing --http-token-file accepted"
fi
grep -q -- "--http-token-file '$WORK/nope'" "$WORK/pb.log" || fail "error does not name the file: $(cat "$WORK/pb.log")"

# systemd's own parser on the installed unit, with ExecStart pointed at the installed binary
# (the check wants it to exist). systemd-analyze is absent from some containers: skip then.
if command -v systemd-analyze >/dev/null; then
    log "systemd-analyze verify"
    sed "s|/usr/local/bin/damselfly-agent|$bin|" "$unit" >"$WORK/damselfly-agent.service"
    out=$(systemd-analyze verify --man=no "$WORK/damselfly-agent.service" 2>&1) ||
        fail "systemd-analyze verify failed: $out"
    if echo "$out" | grep -q 'damselfly-agent'; then
        fail "systemd-analyze verify complains: $out"
    fi
else
    log "systemd-analyze not installed: unit syntax not verified"
fi

log "PASS"
