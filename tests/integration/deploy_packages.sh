#!/usr/bin/env bash
# The Debian packages, as scripts/build-packages makes them: damselfly-server from the build
# under test, damselfly-agent from a static build of the agent alone in $WORK.
#   lintian reports no error on either; dpkg installs both into a throwaway root (dpkg --root,
#   maintainer scripts run chrootless and must leave this host's users and statoverrides
#   alone) and purges them again, leaving nothing but what was there; every binary of the root
#   prints the version and commit of HEAD and passes --check on the default config its unit
#   names (paths in it moved into the root); every unit passes systemd-analyze verify and
#   scores OK or better in systemd-analyze security --offline=true; every binary has a man
#   page and a bash completion that knows its options and keys; the agent's packaged unit is
#   deploy/systemd/damselfly-agent.service with ExecStart in /usr/bin. Then, as root, dpkg
#   installs them for real into an overlay of this host's root in a private mount namespace:
#   the postinst creates the damselfly user and the statoverrides there, each daemon passes
#   --check on its config as that user, a reinstall changes nothing, and purge removes it all.
. "$(dirname "$0")/lib.sh"

for tool in lintian dpkg dpkg-deb systemd-analyze help2man python3 man; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh)"
done

log "building the packages"
bash "$DSF_SRC/scripts/build-packages" --server-build "$DSF_BUILD" --agent-build "$WORK/static" \
    --out "$WORK/debs" --jobs 2 >"$WORK/build-packages.log" 2>&1 ||
    fail "scripts/build-packages failed: $(tail -n 20 "$WORK/build-packages.log")"
SERVER_DEB=$(ls "$WORK"/debs/damselfly-server_*.deb) || fail "no damselfly-server .deb"
AGENT_DEB=$(ls "$WORK"/debs/damselfly-agent_*.deb) || fail "no damselfly-agent .deb"

log "lintian"
for deb in "$SERVER_DEB" "$AGENT_DEB"; do
    name=$(basename "$deb" .deb)
    # Exit status 0 unless it found an error (or could not run).
    rc=0
    lintian --tag-display-limit 0 "$deb" >"$WORK/lintian-$name.out" 2>&1 || rc=$?
    cat "$WORK/lintian-$name.out"
    if grep -q '^E: ' "$WORK/lintian-$name.out" || [ $rc != 0 ]; then
        fail "lintian failed ($rc) on $name: $(grep -v '^[WIPN]: ' "$WORK/lintian-$name.out")"
    fi
done

log "contents: root-owned, nothing in /usr/local, every file where the units expect it"
# contents DEB: "MODE OWNER PATH" per entry.
contents() { dpkg-deb -c "$1" | awk '{ print $1, $2, $6 }'; }
contents "$SERVER_DEB" >"$WORK/server.contents"
contents "$AGENT_DEB" >"$WORK/agent.contents"
for c in server agent; do
    awk '$2 != "root/root"' "$WORK/$c.contents" | grep -q . &&
        fail "$c: files not owned by root: $(awk '$2 != "root/root"' "$WORK/$c.contents")"
    grep -q ' \./usr/local/' "$WORK/$c.contents" && fail "$c ships files in /usr/local"
done
want_server=(./usr/bin/damselfly-collector ./usr/bin/damselfly-balancer ./usr/bin/damselfly-alarm
    ./usr/bin/damselfly-control ./usr/bin/damselfly-scraper ./usr/bin/damselfly-fed ./usr/share/damselfly/install-agent.sh
    ./etc/damselfly/alarm.d/cpu_hot.json ./etc/damselfly/policies/agent-down.json
    ./var/lib/damselfly/ ./usr/share/doc/damselfly-server/copyright
    ./usr/share/doc/damselfly-server/changelog.Debian.gz)
for f in "${want_server[@]}"; do
    grep -q " $f\$" "$WORK/server.contents" || fail "damselfly-server lacks $f"
done
grep -q 'damselfly-agent$' "$WORK/server.contents" && fail "damselfly-server ships an agent"
[ "$(grep -c ' \./usr/bin/.' "$WORK/agent.contents")" = 1 ] ||
    fail "damselfly-agent must ship /usr/bin/damselfly-agent alone: $(grep ' \./usr/bin/' "$WORK/agent.contents")"
dpkg-deb -f "$SERVER_DEB" Depends | tee "$WORK/server.depends"
for dep in adduser libc6 libcurl4 libjansson4; do
    grep -Eq "(^|, )$dep( |,|$)" "$WORK/server.depends" || fail "damselfly-server does not depend on $dep"
done
dpkg-deb -f "$AGENT_DEB" Depends | grep -q 'lib' &&
    fail "the static agent depends on shared libraries: $(dpkg-deb -f "$AGENT_DEB" Depends)"

log "dpkg --root: install both into $WORK/root"
ROOT="$WORK/root"
mkdir -p "$ROOT/var/lib/dpkg/info" "$ROOT/var/lib/dpkg/updates" "$ROOT/var/log"
: >"$ROOT/var/lib/dpkg/status"
# dpkg_root ARGS...: dpkg on the throwaway root; the packages' Depends are this host's.
dpkg_root() {
    dpkg --root="$ROOT" --force-not-root --force-script-chrootless --force-depends \
        --log="$ROOT/var/log/dpkg.log" "$@"
}
host_state() {
    sha256sum /etc/passwd /etc/group /etc/shadow 2>/dev/null
    dpkg-statoverride --list 2>/dev/null | sort
    ls /lib/systemd/system /etc/systemd/system 2>/dev/null | grep damselfly || true
}
host_state >"$WORK/host.before"
find "$ROOT" | sort >"$WORK/root.before"
dpkg_root -i "$SERVER_DEB" "$AGENT_DEB" >"$WORK/dpkg-install.log" 2>&1 ||
    fail "dpkg --root -i failed: $(cat "$WORK/dpkg-install.log")"
host_state >"$WORK/host.after"
diff -u "$WORK/host.before" "$WORK/host.after" ||
    fail "installing into $ROOT changed this host's users, statoverrides or units"
dpkg --root="$ROOT" -l damselfly-server damselfly-agent | grep -c '^ii' | grep -qx 2 ||
    fail "the packages are not installed in $ROOT: $(dpkg --root="$ROOT" -l 2>&1 | tail -n 3)"
conf=$(dpkg --root="$ROOT" -s damselfly-server | sed -n '/^Conffiles:/,/^[A-Z]/p')
for f in /etc/damselfly/collector.json /etc/damselfly/alarm.d/cpu_hot.json; do
    echo "$conf" | grep -q " $f " || fail "$f is not a conffile of damselfly-server"
done
dpkg --root="$ROOT" -s damselfly-agent | grep -q ' /etc/damselfly/agent.json ' ||
    fail "/etc/damselfly/agent.json is not a conffile of damselfly-agent"

log "agent unit: the shipped one, with ExecStart in /usr/bin"
sed 's|^ExecStart=/usr/local/bin/|ExecStart=/usr/bin/|' "$DSF_SRC/deploy/systemd/damselfly-agent.service" |
    cmp -s - "$ROOT/lib/systemd/system/damselfly-agent.service" ||
    fail "the packaged agent unit is not deploy/systemd/damselfly-agent.service with /usr/bin"

commit=$(git -C "$DSF_SRC" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# in_root CONFIG OUT: CONFIG with every absolute path moved into $ROOT.
in_root() {
    python3 - "$1" "$2" "$ROOT" <<'EOF' || fail "rewriting $1 failed"
import json, sys
def move(v):
    if isinstance(v, dict):
        return {k: move(x) for k, x in v.items()}
    if isinstance(v, str) and v.startswith("/"):
        return sys.argv[3] + v
    return v
json.dump(move(json.load(open(sys.argv[1]))), open(sys.argv[2], "w"), indent=2)
EOF
}
# check_binary BIN CONFIG: --version names HEAD; --check accepts CONFIG (an installed default).
check_binary() {
    local bin=$1 cfg=$2 name=${1##*/} v
    [ -x "$ROOT$bin" ] || fail "$bin is not installed executable"
    v=$(env -i PATH=/usr/bin:/bin "$ROOT$bin" --version 2>&1) || fail "$name --version failed: $v"
    echo "$v" | grep -Eq "^$name [0-9]+\.[0-9]+\.[0-9]+ \(commit $commit(-dirty)?\)$" ||
        fail "$name --version does not name commit $commit: $v"
    [ -f "$ROOT$cfg" ] || fail "$name: its config $cfg is not installed"
    in_root "$ROOT$cfg" "$WORK/check-${cfg##*/}"
    env -i PATH=/usr/bin:/bin "$ROOT$bin" --config "$WORK/check-${cfg##*/}" --check \
        >"$WORK/check-$name.out" 2>&1 || fail "$name --check on $cfg: $(cat "$WORK/check-$name.out")"
    log "  $v; $cfg OK"
}

log "every unit: its binary runs, its config passes --check, systemd accepts and scores it"
units=("$ROOT"/lib/systemd/system/damselfly-*.service)
[ ${#units[@]} = 6 ] || fail "want 6 units (agent, collector, balancer, alarm, control, scraper), got ${units[*]}"
mkdir -p "$WORK/units"
for u in "${units[@]}"; do
    name=$(basename "$u")
    exec=$(sed -n 's/^ExecStart=//p' "$u")
    read -r bin opt cfg extra <<<"$exec"
    [ "$opt" = --config ] && [ -n "$cfg" ] && [ -z "${extra:-}" ] ||
        fail "$name: ExecStart is not 'BINARY --config FILE': $exec"
    check_binary "$bin" "$cfg"
    # systemd-analyze wants ExecStart to exist: point it into the root.
    sed "s|^ExecStart=$bin |ExecStart=$ROOT$bin |" "$u" >"$WORK/units/$name"
    out=$(cd "$WORK/units" && systemd-analyze verify --man=no "./$name" 2>&1) ||
        fail "systemd-analyze verify $name: $out"
    echo "$out" | grep -q . && fail "systemd-analyze verify complains about $name: $out"
    level=$(cd "$WORK/units" && systemd-analyze security --offline=true "./$name" 2>&1 |
        sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
    case ${level#* } in
    SAFE | OK) log "  $name: exposure $level" ;;
    *) fail "$name: systemd-analyze security says '${level:-nothing}', want OK or better" ;;
    esac
done
check_binary /usr/bin/damselfly-fed /etc/damselfly/fed.json

log "man pages and bash completions of every binary"
for bin in "$ROOT"/usr/bin/*; do
    name=${bin##*/}
    man=$(ls "$ROOT"/usr/share/man/man[18]/"$name".[18].gz 2>/dev/null) || fail "$name has no man page"
    MANWIDTH=100 man -l "$man" 2>"$WORK/man.err" | grep -q "^NAME" || fail "$man does not render"
    comp="$ROOT/usr/share/bash-completion/completions/$name"
    [ -f "$comp" ] || fail "$name has no bash completion"
    # Complete "NAME --se" and "NAME --set http.li" with the installed file.
    got=$(bash -c '. "$1"; f=$(complete -p "$2" | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
        COMP_WORDS=("$2" --se); COMP_CWORD=1; $f; echo "${COMPREPLY[*]}"
        COMP_WORDS=("$2" --set http.li); COMP_CWORD=2; $f; echo "${COMPREPLY[*]}"' _ "$comp" "$name")
    [ "$(echo "$got" | sed -n 1p)" = --set ] || fail "$name: '--se' completes to '$(echo "$got" | sed -n 1p)'"
    if "$bin" --help | grep -q '^  http.listen '; then
        [ "$(echo "$got" | sed -n 2p)" = http.listen= ] ||
            fail "$name: '--set http.li' completes to '$(echo "$got" | sed -n 2p)'"
    fi
done
bash -c '. "$1"; COMP_WORDS=(damselfly-fed vm ""); COMP_CWORD=2; _damselfly_fed
    echo "${COMPREPLY[*]}"' _ "$ROOT/usr/share/bash-completion/completions/damselfly-fed" >"$WORK/fed-vm.out"
grep -qw reboot "$WORK/fed-vm.out" || fail "'damselfly-fed vm ' does not offer reboot: $(cat "$WORK/fed-vm.out")"

log "purge: the root is as before, the host untouched"
mkdir -p "$ROOT/var/lib/damselfly/alarm" "$ROOT/etc/damselfly/policies"
echo '{}' >"$ROOT/var/lib/damselfly/alarm/state.json"      # what a daemon wrote
echo '{}' >"$ROOT/etc/damselfly/policies/written-by-api.json" # what the policies API wrote
dpkg_root --purge damselfly-server damselfly-agent >"$WORK/dpkg-purge.log" 2>&1 ||
    fail "dpkg --root --purge failed: $(cat "$WORK/dpkg-purge.log")"
find "$ROOT" | sort | grep -v "^$ROOT/var/lib/dpkg/\|^$ROOT/var/log/dpkg.log$" >"$WORK/root.after"
grep -v "^$ROOT/var/lib/dpkg/" "$WORK/root.before" | diff -u - "$WORK/root.after" ||
    fail "purging left files in $ROOT"
host_state >"$WORK/host.after"
diff -u "$WORK/host.before" "$WORK/host.after" || fail "purging changed this host"

# The maintainer scripts for real: dpkg installs both packages into an overlay of this host's
# own root (in a private mount namespace, writes go to a tmpfs that vanishes with it), so the
# postinst creates the user and the statoverrides there and the daemons read their configs
# as that user. Needs root and mount namespaces (ctest runs as root, see scripts/test.sh).
overlay_phase() {
    cat >"$WORK/overlay.sh" <<'OVL'
set -eu
T=$1
mount -t tmpfs tmpfs "$T"
mkdir -p "$T/u" "$T/w" "$T/m"
mount -t overlay overlay -o "lowerdir=/,upperdir=$T/u,workdir=$T/w" "$T/m"
for d in proc dev sys; do mount --rbind "/$d" "$T/m/$d"; done
mkdir -p "$T/m/debs"
cp "$2" "$3" "$T/m/debs/"
chroot "$T/m" /bin/bash -s <<'IN'
set -eu
fail() { echo "FAIL: $*"; exit 1; }
getent passwd damselfly >/dev/null && fail "damselfly exists before the install"
dpkg -i /debs/*.deb
getent passwd damselfly | grep -q ':/var/lib/damselfly:/usr/sbin/nologin$' ||
    fail "postinst made no system user damselfly: $(getent passwd damselfly)"
[ "$(stat -c '%U:%G %a' /etc/damselfly/collector.json)" = "root:damselfly 640" ] ||
    fail "collector.json is $(stat -c '%U:%G %a' /etc/damselfly/collector.json)"
[ "$(stat -c '%U:%G %a' /etc/damselfly/alarm.d)" = "root:damselfly 2770" ] ||
    fail "alarm.d is $(stat -c '%U:%G %a' /etc/damselfly/alarm.d)"
for d in agent collector balancer alarm control scraper; do
    runuser -u damselfly -- damselfly-$d --config /etc/damselfly/$d.json --check ||
        fail "damselfly-$d --check as user damselfly"
done
runuser -u damselfly -- touch /etc/damselfly/policies/api-write.json ||
    fail "the damselfly user cannot write policies/ (the policies API writes there)"
dpkg -i /debs/*.deb >/dev/null || fail "reinstalling failed"
[ "$(getent passwd | grep -c '^damselfly:')" = 1 ] || fail "a second user damselfly"
mkdir -p /var/lib/damselfly/control && echo '{}' >/var/lib/damselfly/control/audit.jsonl
dpkg --purge damselfly-server damselfly-agent
for p in /etc/damselfly /var/lib/damselfly /usr/bin/damselfly-agent; do
    [ ! -e "$p" ] || fail "$p is left after purge"
done
dpkg-statoverride --list | grep -q damselfly && fail "statoverrides left after purge"
echo "overlay: OK"
IN
OVL
    mkdir -p "$WORK/ovl"
    unshare -m --propagation private bash "$WORK/overlay.sh" "$WORK/ovl" "$SERVER_DEB" "$AGENT_DEB" \
        >"$WORK/overlay.log" 2>&1 || fail "install in an overlay of this host: $(tail -n 30 "$WORK/overlay.log")"
    grep -q '^overlay: OK$' "$WORK/overlay.log" || fail "the overlay phase did not finish: $(tail -n 30 "$WORK/overlay.log")"
}
if [ "$(id -u)" = 0 ] && unshare -m --propagation private true 2>/dev/null; then
    log "dpkg -i in an overlay of this host: user, statoverrides, --check as damselfly, purge"
    host_state >"$WORK/host.before-overlay"
    overlay_phase
    host_state | diff -u "$WORK/host.before-overlay" - || fail "the overlay phase changed this host"
else
    log "not root or no mount namespaces: the maintainer scripts ran only under dpkg --root"
fi

log "PASS"
