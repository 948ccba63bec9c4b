#!/usr/bin/env bash
# Install the Debian packages warren needs to build, test and run, when any
# is missing.  Shared by scripts/run-local.sh and tests/run.sh.
set -euo pipefail

PACKAGES=(build-essential cmake pkg-config librabbitmq-dev libuv1-dev libjansson-dev
          libcriterion-dev libinih-dev rabbitmq-server procps iproute2 clang-format git)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# Don't let the package start a system-wide broker: warren's scripts start
# private nodes (policy-rc.d is honoured by invoke-rc.d on sysvinit hosts;
# on systemd hosts the service may start, which is harmless).
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
