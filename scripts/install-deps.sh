#!/usr/bin/env bash
# Installs everything Damselfly needs to build and to run its tests on Debian 12.
# Idempotent: packages already present are left alone. Run it as root or as a user with sudo:
# it asks for root (directly when root, through sudo otherwise) only when there is something
# to install or a service to disable, and says so when it cannot.
#
# The daemons installed for the tests and benchmarks (mosquitto, InfluxDB, Prometheus,
# Alertmanager, node_exporter, collectd, VictoriaMetrics) are not started at install
# (policy-rc.d) and their units are disabled, so that none of them comes up at the next boot:
# Damselfly starts its own, and node_exporter would take the agent's port 9100. Any other
# package this script installs has its units disabled too.
set -euo pipefail

build_pkgs=(
  build-essential cmake pkg-config clang file
  libpaho-mqtt-dev librdkafka-dev libjansson-dev libcurl4-openssl-dev
  libevent-dev libssl-dev libcap-dev libcmocka-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev
  libyaml-dev protobuf-c-compiler libprotobuf-c-dev libsnappy-dev
  help2man
)
test_pkgs=(
  mosquitto mosquitto-clients influxdb kafkacat prometheus victoria-metrics
  python3 python3-jsonschema python3-yaml curl procps iproute2 cloud-init
  prometheus-alertmanager python3-aiosmtpd openssl
  lintian man-db
  python3-websocket chromium python3-bcrypt
)
bench_pkgs=(collectd-core prometheus-node-exporter)
# The packages whose daemons must stay off (tests/integration/deploy_deps_services.sh reads
# this line).
daemon_pkgs=(mosquitto influxdb prometheus prometheus-alertmanager victoria-metrics collectd-core prometheus-node-exporter)

want=("${build_pkgs[@]}")
case "${1:-all}" in
  build) ;;
  test) want+=("${test_pkgs[@]}") ;;
  all) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac

# as_root COMMAND...: COMMAND as root: directly when root, through sudo otherwise.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "install-deps: '$*' needs root, and sudo is not installed: run $0 as root" >&2
    exit 1
  fi
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# units PACKAGE...: the systemd units (services, sockets, timers) the packages ship.
units() {
  local p
  for p in "$@"; do
    installed "$p" || continue
    dpkg -L "$p" | grep -E '^/(usr/)?lib/systemd/system/[^/@]+\.(service|socket|timer)$' || true
  done | xargs -r -n1 basename | sort -u
}

# enabled UNIT: whether UNIT starts at boot: systemctl when systemd runs, else the symlinks
# that enabling it made in /etc/systemd/system.
enabled() {
  if [ -d /run/systemd/system ]; then
    [ "$(systemctl is-enabled "$1" 2>/dev/null)" = enabled ]
  else
    compgen -G "/etc/systemd/system/*.wants/$1" >/dev/null
  fi
}

# disable_units UNIT...: those enabled no longer start at boot.
disable_units() {
  local u on=()
  for u in "$@"; do enabled "$u" && on+=("$u"); done
  [ ${#on[@]} -gt 0 ] || return 0
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "install-deps: WARNING: ${on[*]} start at boot; without root (no sudo) they stay" \
      "enabled: run $0 as root to disable them" >&2
    return 0
  fi
  echo "install-deps: disabling ${on[*]} (Damselfly starts its own daemons)"
  if [ -d /run/systemd/system ]; then
    as_root systemctl disable --now "${on[@]}" 2>&1 | grep -v '^Removed' || true
  else # no running systemd: remove what `systemctl enable` made
    for u in "${on[@]}"; do as_root rm -f /etc/systemd/system/*.wants/"$u"; done
  fi
}

before=$(dpkg-query -W -f='${Package}\n' 2>/dev/null | sort)
missing=()
for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # Debian's packages start their daemons on install; Damselfly's tests start their own.
  policy_rc=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    policy_rc=1
  fi
  status=0
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" || status=$?
  [ -z "$policy_rc" ] || as_root rm -f /usr/sbin/policy-rc.d
  [ $status = 0 ] || { echo "install-deps: apt-get install failed ($status)" >&2; exit $status; }
fi
new=$(comm -13 <(echo "$before") <(dpkg-query -W -f='${Package}\n' 2>/dev/null | sort))
# shellcheck disable=SC2086 # one package a word
mapfile -t off < <(units "${daemon_pkgs[@]}" $new)
[ ${#off[@]} -eq 0 ] || disable_units "${off[@]}"
