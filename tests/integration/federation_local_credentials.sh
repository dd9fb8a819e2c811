#!/usr/bin/env bash
# Broker credentials of the agents on local VMs, with a real mosquitto that refuses anonymous
# clients (password file + the contract's ACL patterns) and the real agent: damselfly-fed
# adds each new VM's user {ns}/{mci}/{vm} to the password file with a "$7$" hash and reloads
# the broker (SIGHUP from its pid file); install-agent.sh puts the password into the VM's
# agent config (0600); the agents log in with it and their metrics reach a subscriber; an
# anonymous client is refused, and a VM's credentials do not publish as another VM. After
# terminate the user is gone from the file and its old password is refused. No password is
# ever printed by damselfly-fed or left in a temporary file.
. "$(dirname "$0")/lib.sh"

FED="$DSF_BUILD/federation/damselfly-fed"
[ -x "$FED" ] || fail "$FED is missing: build the tree first"
[ -x "$AGENT" ] || fail "$AGENT is missing: build the tree first"
for t in mosquitto_passwd mosquitto_sub mosquitto_pub; do
    command -v $t >/dev/null || fail "$t is needed (apt-get install mosquitto mosquitto-clients)"
done

B="$WORK/broker"
mkdir -p "$B"
MQTT_PORT=$(free_port)
OP_PW="op-$RANDOM$RANDOM"
mosquitto_passwd -c -b "$B/passwd" operator "$OP_PW" || fail "mosquitto_passwd failed"
# As a packaged broker has it: readable by the broker's group, which mosquitto drops to
# when started as root (it then writes its pid file as that user too).
if [ "$(id -u)" = 0 ] && getent passwd mosquitto >/dev/null; then
    chgrp mosquitto "$B/passwd"
    chown mosquitto "$B"
fi
chmod 0640 "$B/passwd"
chmod 0755 "$B"
# The contract's agent patterns and an operator who reads everything.
cat >"$B/acl" <<'EOF'
pattern write dsf/m/+/%u
pattern readwrite dsf/a/%u/status
pattern read dsf/a/%u/ack
pattern read dsf/a/%u/req
pattern write dsf/a/%u/reply/#

user operator
topic read dsf/#
topic write dsf/a/+/+/+/req
EOF
cat >"$B/mosquitto.conf" <<EOF
listener $MQTT_PORT 127.0.0.1
allow_anonymous false
password_file $B/passwd
acl_file $B/acl
pid_file $B/mosquitto.pid
persistence false
EOF
bg mosquitto mosquitto -c "$B/mosquitto.conf"
wait_for 10 port_open "$MQTT_PORT" || fail "mosquitto did not start on $MQTT_PORT"
wait_for 10 test -s "$B/mosquitto.pid" || fail "mosquitto wrote no pid file"

STATE="$WORK/state"
fed() {
    "$FED" --state-dir "$STATE" --driver local \
        --set local.mqtt_url="tcp://127.0.0.1:$MQTT_PORT" --set local.interval=1s \
        --set local.agent_binary="$AGENT" \
        --set local.install_script="$DSF_SRC/deploy/install-agent.sh" \
        --set bus.password_file="$B/passwd" --set bus.broker_pid_file="$B/mosquitto.pid" "$@"
}
bg sub mosquitto_sub -p "$MQTT_PORT" -u operator -P "$OP_PW" -V 5 -t 'dsf/m/#' -F '%U|%t|%p'
sleep 0.3

count_msgs() { # VM SINCE [PAYLOAD]: metrics messages of VM since SINCE (containing PAYLOAD)
    python3 - "$WORK/sub.log" "$@" <<'PY'
import sys
log, vm, since = sys.argv[1], sys.argv[2], float(sys.argv[3])
want = sys.argv[4] if len(sys.argv) > 4 else ""
n = 0
for line in open(log, errors="replace"):
    p = line.rstrip("\n").split("|", 2)
    if len(p) == 3 and p[1].startswith("dsf/m/") and p[1].endswith("/ns1/m1/" + vm):
        n += float(p[0]) > since and want in p[2]
print(n)
PY
}
now() { python3 -c 'import time; print("%.3f" % time.time())'; }
reporting() { [ "$(count_msgs "$@")" -ge 1 ]; }
user_line() { grep "^ns1/m1/$1:" "$B/passwd"; }
vm_config() { echo "$STATE/local/vms/ns1/m1/$1/etc/damselfly/agent.json"; }
# vm_password VM: the password install-agent.sh wrote into the VM's agent config.
vm_password() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["mqtt"]["password"])' "$(vm_config "$1")"
}
# matches LINE PASSWORD: the $7$ line holds PASSWORD (mosquitto's PBKDF2-SHA512).
matches() {
    python3 - "$1" "$2" <<'PY'
import base64, hashlib, sys
user, h = sys.argv[1].split(":", 1)
_, kind, it, salt, want = h.split("$")
got = hashlib.pbkdf2_hmac("sha512", sys.argv[2].encode(), base64.b64decode(salt), int(it), 64)
sys.exit(0 if kind == "7" and it == "101" and base64.b64encode(got).decode() == want else 1)
PY
}
# as USER PASSWORD ARGS...: mosquitto_pub with those credentials.
as() {
    local u=$1 p=$2
    shift 2
    mosquitto_pub -p "$MQTT_PORT" -u "$u" -P "$p" -V 5 -q 1 "$@"
}

cat >"$WORK/spec.json" <<'EOF'
{"vm": [{"name": "web", "subGroupSize": 2, "csp": "local", "region": "r1"}]}
EOF
log "create 2 VMs: each gets its broker user"
t0=$(now)
fed create-mci ns1 m1 --spec "$WORK/spec.json" >"$WORK/fed.out" 2>&1 ||
    fail "create-mci failed: $(cat "$WORK/fed.out")"
for vm in web-1 web-2; do
    line=$(user_line $vm) || fail "no user ns1/m1/$vm in the password file: $(cat "$B/passwd")"
    [[ $line =~ ^ns1/m1/$vm:\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$ ]] ||
        fail "$vm's line is not mosquitto's \$7\$ format: $line"
    cfg=$(vm_config $vm)
    [ "$(stat -c %a "$cfg")" = 600 ] || fail "$cfg holds a password with mode $(stat -c %a "$cfg")"
    python3 -c 'import json, sys; assert json.load(open(sys.argv[1]))["mqtt"]["username"] == sys.argv[2]' \
        "$cfg" "ns1/m1/$vm" || fail "$vm's agent config has the wrong broker user: $(cat "$cfg")"
    matches "$line" "$(vm_password $vm)" || fail "$vm's password does not match its line in the password file"
    ls -A "$STATE/local/vms/ns1/m1/$vm" | grep -q mqtt-password &&
        fail "a password file was left in $vm's directory: $(ls -A "$STATE/local/vms/ns1/m1/$vm")"
done
user_line operator >/dev/null 2>&1 || grep -q '^operator:' "$B/passwd" || fail "the operator's line is gone"
[ "$(stat -c %a "$B/passwd")" = 640 ] || fail "the password file's mode changed to $(stat -c %a "$B/passwd")"
PW1=$(vm_password web-1)
PW2=$(vm_password web-2)

log "their agents log in and report; anonymous clients are refused"
for vm in web-1 web-2; do
    wait_for 20 reporting $vm "$t0" || fail "$vm's metrics do not reach the subscriber"
done
if mosquitto_pub -p "$MQTT_PORT" -t dsf/m/0/ns1/m1/web-1 -m anon >"$WORK/anon.out" 2>&1; then
    fail "an anonymous client could publish"
fi
grep -qi 'not authori' "$WORK/anon.out" || fail "anonymous client: $(cat "$WORK/anon.out")"

log "web-1's credentials publish as web-1 only"
t1=$(now)
as ns1/m1/web-1 "$PW1" -t dsf/m/3/ns1/m1/web-1 -m own-topic-probe || fail "web-1 cannot publish on its topic"
as ns1/m1/web-1 "$PW1" -t dsf/m/3/ns1/m1/web-2 -m foreign-topic-probe >/dev/null 2>&1 || true
wait_for 10 reporting web-1 "$t1" own-topic-probe || fail "web-1's own publish did not arrive"
sleep 1
[ "$(count_msgs web-2 "$t1" foreign-topic-probe)" = 0 ] || fail "web-1's credentials published as web-2"

log "terminate web-1: its user goes, its old password is refused, web-2 goes on"
fed vm terminate ns1 m1 web-1 >>"$WORK/fed.out" 2>&1 || fail "terminate failed: $(cat "$WORK/fed.out")"
user_line web-1 && fail "ns1/m1/web-1 is still in the password file"
user_line web-2 >/dev/null || fail "terminating web-1 removed web-2's user"
refused() { ! as ns1/m1/web-1 "$PW1" -t dsf/m/3/ns1/m1/web-1 -m after-terminate >/dev/null 2>&1; }
wait_for 10 refused || fail "web-1's old credentials are still accepted after the reload"
as ns1/m1/web-1 "$PW1" -t dsf/m/3/ns1/m1/web-1 -m x >"$WORK/old.out" 2>&1 || true
grep -qi 'not authori' "$WORK/old.out" || fail "old credentials: $(cat "$WORK/old.out")"
t2=$(now)
wait_for 15 reporting web-2 "$t2" || fail "web-2 stopped reporting after the broker reloaded"

log "delete the MCI: every agent user is gone, the operator stays"
fed mci delete ns1 m1 >>"$WORK/fed.out" 2>&1 || fail "mci delete failed: $(cat "$WORK/fed.out")"
grep -q '^ns1/' "$B/passwd" && fail "agent users remain: $(cat "$B/passwd")"
grep -q '^operator:\$7\$' "$B/passwd" || fail "the operator's line is gone: $(cat "$B/passwd")"
rc=0
mosquitto_sub -p "$MQTT_PORT" -u operator -P "$OP_PW" -t dsf/none -W 1 >"$WORK/op.out" 2>&1 || rc=$?
# 27: connected, and -W ran out waiting for a message.
[ $rc -eq 27 ] || fail "the operator can no longer log in: $(cat "$WORK/op.out")"

log "no password in damselfly-fed's output or the install logs"
for pw in "$PW1" "$PW2"; do
    grep -rqF -- "$pw" "$WORK/fed.out" "$STATE"/local/vms/ns1/m1/*/install.log &&
        fail "a password was printed"
done
grep -q 'broker user ns1/m1/web-1 added' "$WORK/fed.out" || fail "the grant was not logged: $(cat "$WORK/fed.out")"
log "PASS"
