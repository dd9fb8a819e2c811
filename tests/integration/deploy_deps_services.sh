#!/usr/bin/env bash
# The daemons scripts/install-deps.sh installs for the tests and benchmarks (node_exporter,
# collectd, Prometheus, Alertmanager, VictoriaMetrics, mosquitto, InfluxDB) must not start at
# the next boot, where node_exporter would take the agent's port 9100: every unit those
# installed packages ship is disabled, as systemd sees it (systemctl is-enabled when systemd
# is PID 1, else the symlinks `systemctl enable` makes under /etc/systemd/system).
. "$(dirname "$0")/lib.sh"

SCRIPT=$DSF_SRC/scripts/install-deps.sh
line=$(grep '^daemon_pkgs=(' "$SCRIPT") || fail "install-deps.sh lists no daemon_pkgs"
eval "$line" # sets daemon_pkgs
# shellcheck disable=SC2154 # assigned by the eval
[ ${#daemon_pkgs[@]} -ge 7 ] || fail "daemon_pkgs: ${daemon_pkgs[*]}"
checked=0
for pkg in "${daemon_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || continue
    for unit in $(dpkg -L "$pkg" | grep -E '^/(usr/)?lib/systemd/system/[^/@]+\.(service|socket|timer)$' |
        xargs -r -n1 basename); do
        if [ -d /run/systemd/system ]; then
            state=$(systemctl is-enabled "$unit" 2>/dev/null) || true
            [ "$state" != enabled ] || fail "$unit (package $pkg) is enabled: it starts at boot"
        else
            links=$(compgen -G "/etc/systemd/system/*.wants/$unit") &&
                fail "$unit (package $pkg) starts at boot: $links"
        fi
        checked=$((checked + 1))
    done
done
log "$checked units of the installed daemons are disabled"
[ $checked -ge 1 ] || fail "none of ${daemon_pkgs[*]} is installed: nothing was checked"
log "ok"
