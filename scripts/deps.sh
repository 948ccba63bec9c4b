#!/usr/bin/env bash
# Install the Debian packages warren needs to build, test and run, when any
# is missing.  Shared by scripts/run-local.sh and tests/run.sh.
#
# As root it runs apt-get itself; as anyone else through sudo.  Without
# sudo (or when sudo refuses) it names the missing packages and the command
# for root to run, and fails.
set -euo pipefail

PACKAGES=(build-essential cmake pkg-config librabbitmq-dev libuv1-dev libjansson-dev
          libcriterion-dev libinih-dev libqpid-proton11-dev libssl-dev openssl rabbitmq-server procps
          iproute2 clang-format git)
# tests/fuzz/run.sh (libFuzzer, with llvm-symbolizer for its reports) and
# tests/daemon_check.sh (ThreadSanitizer, valgrind).
PACKAGES+=(clang libclang-rt-14-dev llvm libtsan2 valgrind)
# The man pages (man/*.scd: scdoc builds them, mandoc lints them) and the
# bash completion test (tests/completion_test.sh).
PACKAGES+=(scdoc mandoc bash-completion)
# bench/run.sh: the plots in BENCHMARKS.md.
PACKAGES+=(gnuplot-nox)
# promtool, to check GET /metrics (tests/integration/test_metrics.c).
PACKAGES+=(prometheus)
# The Debian package (packaging/build-deb.sh) and its clean-chroot install
# test (tests/deb_test.sh).
PACKAGES+=(debhelper dpkg-dev lintian debootstrap curl)

die() {
    echo "deps.sh: $*" >&2
    exit 1
}

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    die "not a Debian system (no dpkg-query/apt-get); install the equivalents of: ${PACKAGES[*]}"
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

as_root="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null ||
        die "missing Debian packages: ${missing[*]}; there is no sudo here, so as root run:  $as_root"
    SUDO=(sudo)
fi

echo "installing: ${missing[*]}" >&2
# Installing rabbitmq-server may start the system's broker (on systemd
# hosts); that is harmless: the tests start private nodes of their own,
# and scripts/run-local.sh uses a RabbitMQ it finds on 127.0.0.1:5672.
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
    ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    die "could not install ${missing[*]}; as root run:  $as_root"
fi
