#!/usr/bin/env bash
# Installs everything Damselfly needs to build and to run its tests on Debian 12.
# Idempotent: packages already present are left alone. Run as root (or with sudo).
set -euo pipefail

build_pkgs=(
  build-essential cmake pkg-config clang file
  libpaho-mqtt-dev librdkafka-dev libjansson-dev libcurl4-openssl-dev
  libevent-dev libssl-dev libcap-dev libcmocka-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev
  libyaml-dev
)
test_pkgs=(
  mosquitto mosquitto-clients influxdb kafkacat prometheus victoria-metrics
  python3 python3-jsonschema curl procps iproute2 cloud-init
  prometheus-alertmanager python3-aiosmtpd openssl
)
bench_pkgs=(collectd-core prometheus-node-exporter)

want=("${build_pkgs[@]}")
case "${1:-all}" in
  build) ;;
  test) want+=("${test_pkgs[@]}") ;;
  all) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Debian's packages start their daemons on install; Damselfly's tests start their own.
policy_rc=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  policy_rc=1
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
[ -z "$policy_rc" ] || $SUDO rm -f /usr/sbin/policy-rc.d
