#!/usr/bin/env bash
# Install the Debian packages the client-compatibility tests need
# (tests/clients_test.sh): each language's own RabbitMQ client, the way a
# user of that language would get it on Debian 12.  Node's amqplib is not a
# Debian package; clients_test.sh installs it from the npm registry into
# the build tree.  Safe to run again: installs only what is missing.
#
#   tests/clients/deps.sh
set -euo pipefail

PACKAGES=(python3 python3-pika python3-kombu
          default-jdk-headless librabbitmq-client-java
          golang-go golang-github-rabbitmq-amqp091-go-dev
          ruby ruby-bunny
          nodejs
          python3-qpid-proton libqpid-proton11-dev libjansson-dev pkg-config gcc)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm comes with Debian's nodejs as a separate package, or inside a nodejs
# built elsewhere: only ask for it when there is no npm at all.
command -v npm >/dev/null || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
