#!/usr/bin/env bash
# The Debian package, installed with apt in a clean Debian 12 chroot:
#   tests/deb_test.sh [DEB_DIR]
# Takes warren_*.deb and warren-dev_*.deb from DEB_DIR, or builds them
# (packaging/build-deb.sh, lintian included) when no DEB_DIR is given.
# Then: debootstraps bookworm (minbase) from http://deb.debian.org/debian,
# installs both packages with apt, which fetches their Depends from the
# mirror, and inside the chroot checks the layout, `warren --version`,
# `warren --check` (the default config is /etc/warren/warren.conf), runs a
# real warren in the foreground against a private broker started outside
# the chroot (tests/broker.sh; the chroot shares the network namespace, so
# loopback reaches it) and has warren-call get ["hi"] back from echo;
# finally purges the package.  Everything is removed afterwards.
#
# Root only (debootstrap, chroot, mount).  Exit 0: passed; 77: skipped
# because the mirror cannot be reached; anything else: failed.
#
# Caches, under /var/cache/warren-deb-test/ (WARREN_DEB_CACHE), so that a
# second run is fast: the debootstrap tarball (debootstrap --make-tarball,
# then --unpack-tarball) and apt's downloaded .debs (bind-mounted as the
# chroot's /var/cache/apt/archives).  apt still reads the mirror's
# package lists on every run.  Delete the directory to start cold.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
mirror=${WARREN_DEB_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
cache=${WARREN_DEB_CACHE:-/var/cache/warren-deb-test}
tarball=$cache/debootstrap-$suite-minbase-$(dpkg --print-architecture).tgz
t0=$SECONDS

root='' broker='' debs='' warren_pid='' mounts=()
step() { echo "deb_test: [$((SECONDS - t0)) s] $*"; }
fail() {
    echo "deb_test: FAIL: $*" >&2
    exit 1
}
skip() {
    echo "deb_test: SKIP: $*" >&2
    exit 77
}

# In reverse order of acquisition.  The chroot is removed only when no
# mount is left inside it: rm -rf through a bind mount would empty the
# host's /dev or the apt cache.
cleanup() {
    local rc=$? m i
    if [ -n "$warren_pid" ]; then
        kill -TERM "$warren_pid" 2>/dev/null || true
        wait "$warren_pid" 2>/dev/null || true
    fi
    if [ -n "$broker" ]; then
        "$src/tests/broker.sh" stop "$broker" >/dev/null 2>&1 || echo "deb_test: cannot stop the broker in $broker" >&2
    fi
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null ||
            echo "deb_test: cannot unmount ${mounts[i]}" >&2
    done
    if [ -n "$root" ]; then
        if m=$(awk -v r="$root/" 'index($2 "/", r) == 1 {print $2}' /proc/self/mounts) && [ -z "$m" ]; then
            rm -rf "$root"
        else
            echo "deb_test: left $root in place: still mounted there: $m" >&2
        fi
    fi
    [ -n "$debs" ] && rm -rf "$debs"
    echo "deb_test: exit $rc after $((SECONDS - t0)) s"
}
trap cleanup EXIT

# Not root: a skip that tests/run.sh reports (CI runs as root).
[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, chroot and mount): run it as root"
for tool in debootstrap chroot mount curl; do
    command -v "$tool" >/dev/null || fail "$tool not installed (apt-get install debootstrap curl)"
done

# The one reason to skip: no mirror.  Asked first, before the slow parts.
curl -fsS --max-time 30 -o /dev/null "$mirror/dists/$suite/Release" ||
    skip "cannot reach the Debian mirror $mirror (needed by debootstrap and apt)"

# The packages.
if [ $# -ge 1 ]; then
    deb_dir=$(cd "$1" && pwd)
else
    debs=$(mktemp -d /tmp/warren-deb-test-debs.XXXXXX)
    step "building the packages (packaging/build-deb.sh)"
    "$src/packaging/build-deb.sh" "$debs" || fail "packaging/build-deb.sh failed"
    deb_dir=$debs
fi
# shellcheck disable=SC2012
warren_deb=$(ls -t "$deb_dir"/warren_*.deb 2>/dev/null | head -n 1)
# shellcheck disable=SC2012
dev_deb=$(ls -t "$deb_dir"/warren-dev_*.deb 2>/dev/null | head -n 1)
[ -n "$warren_deb" ] || fail "no warren_*.deb in $deb_dir"
[ -n "$dev_deb" ] || fail "no warren-dev_*.deb in $deb_dir"
version=$(dpkg-deb -f "$warren_deb" Version)

# The chroot: from the cached tarball when there is one.
mkdir -p "$cache/apt-archives/partial"
root=$(mktemp -d /var/tmp/warren-deb-chroot.XXXXXX)
if [ ! -s "$tarball" ]; then
    step "debootstrap --make-tarball (cold: downloading $suite minbase into $tarball)"
    scratch=$(mktemp -d /var/tmp/warren-deb-tarball.XXXXXX)
    if ! debootstrap --variant=minbase --make-tarball="$tarball.part" "$suite" "$scratch" "$mirror" \
        >"$cache/make-tarball.log" 2>&1; then
        rm -rf "$scratch" "$tarball.part"
        tail -n 20 "$cache/make-tarball.log" >&2
        fail "debootstrap --make-tarball failed ($cache/make-tarball.log)"
    fi
    rm -rf "$scratch"
    mv "$tarball.part" "$tarball"
fi
step "debootstrap --unpack-tarball into $root"
if ! debootstrap --variant=minbase --unpack-tarball="$tarball" "$suite" "$root" "$mirror" \
    >"$cache/debootstrap.log" 2>&1; then
    tail -n 20 "$cache/debootstrap.log" >&2
    fail "debootstrap failed ($cache/debootstrap.log)"
fi

# What the chroot needs: /proc (warren finds itself through
# /proc/self/exe), the host's /dev, the apt cache, a resolver, and no
# daemon started by a maintainer script (there is no systemd in here; the
# policy-rc.d is belt and braces).
mount -t proc proc "$root/proc" || fail "cannot mount /proc in the chroot"
mounts+=("$root/proc")
mount --bind /dev "$root/dev" || fail "cannot bind-mount /dev into the chroot"
mounts+=("$root/dev")
mount --bind "$cache/apt-archives" "$root/var/cache/apt/archives" ||
    fail "cannot bind-mount $cache/apt-archives into the chroot"
mounts+=("$root/var/cache/apt/archives")
cp /etc/resolv.conf "$root/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"
# Keep what apt downloads, for the next run.
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$root/etc/apt/apt.conf.d/01keep-debs"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

# pkgconf: to read warren-plugin.pc (warren-dev only recommends it).
step "apt-get install $(basename "$warren_deb") $(basename "$dev_deb") pkgconf"
cp "$warren_deb" "$dev_deb" "$root/tmp/"
in_root apt-get -q update >"$root/tmp/apt.log" 2>&1 || { cat "$root/tmp/apt.log"; fail "apt-get update in the chroot"; }
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "/tmp/$(basename "$warren_deb")" "/tmp/$(basename "$dev_deb")" pkgconf >>"$root/tmp/apt.log" 2>&1 ||
    { cat "$root/tmp/apt.log"; fail "apt-get install of the packages in a clean $suite"; }
grep -E '^(Get|Setting up)' "$root/tmp/apt.log" | sed 's/^/  /' || true

step "the installed layout"
for f in /usr/bin/warren /usr/bin/warren-call /usr/lib/warren/warren-worker \
         /usr/lib/warren/plugins/echo.so /usr/lib/warren/plugins/time.so /etc/warren/warren.conf \
         /usr/lib/systemd/system/warren.service /usr/lib/systemd/system/warren@.service \
         /usr/share/man/man8/warren.8.gz /usr/share/man/man5/warren.conf.5.gz \
         /usr/share/man/man1/warren-call.1.gz /usr/share/man/man7/warren-plugin.7.gz \
         /usr/share/bash-completion/completions/warren /usr/include/warren/plugin.h \
         /usr/share/pkgconfig/warren-plugin.pc /usr/share/doc/warren/README.Debian \
         /usr/share/doc/warren-dev/examples/plugin-template/hello.c; do
    [ -e "$root$f" ] || fail "$f not installed"
done
# shellcheck disable=SC2016
in_root dpkg-query -W -f='${Conffiles}\n' warren | grep -q '^ /etc/warren/warren.conf ' ||
    fail "/etc/warren/warren.conf is not a conffile"
grep -q '^ExecStart=/usr/bin/warren -c /etc/warren/warren.conf$' "$root/usr/lib/systemd/system/warren.service" ||
    fail "warren.service does not run /usr/bin/warren -c /etc/warren/warren.conf"
# Not enabled on install (debian/warren.README.Debian says why).
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/warren.service" ] ||
    fail "warren.service was enabled on install"
out=$(in_root pkg-config --variable=plugindir warren-plugin) || fail "pkg-config warren-plugin exited $?"
[ "$out" = /usr/lib/warren/plugins ] || fail "pkg-config warren-plugin: plugindir is '$out', not /usr/lib/warren/plugins"
out=$(in_root pkg-config --variable=warren warren-plugin)
[ "$out" = /usr/bin/warren ] || fail "pkg-config warren-plugin: warren is '$out', not /usr/bin/warren"

step "warren --version"
out=$(in_root warren --version) || fail "warren --version exited $?"
echo "  $out"
[[ $out == "warren ${version%%-*} "* ]] || fail "warren --version says '$out', the package is $version"

step "a private broker, outside the chroot (tests/broker.sh)"
broker=$(mktemp -d /tmp/warren-deb-test-broker.XXXXXX)
"$src/tests/broker.sh" start "$broker" >/dev/null || fail "tests/broker.sh start failed"
uri=$(cat "$broker/uri")

step "warren --check"
# Without -c: the default config of a /usr install is /etc/warren/warren.conf.
in_root warren --check -o "broker.uri=$uri" >"$root/tmp/check.log" 2>&1 ||
    { cat "$root/tmp/check.log"; fail "warren --check (default config) exited non-zero"; }
grep -q '^/etc/warren/warren.conf: OK: .* from /usr/lib/warren/plugins: echo time' "$root/tmp/check.log" ||
    fail "warren --check did not check /etc/warren/warren.conf with /usr/lib/warren/plugins: $(cat "$root/tmp/check.log")"
in_root warren --check -c /etc/warren/warren.conf -o "broker.uri=$uri" | sed 's/^/  /' ||
    fail "warren --check -c /etc/warren/warren.conf exited non-zero"

step "warren (foreground, in the chroot) and warren-call echo '[\"hi\"]'"
# chroot and env exec, so $! is warren itself (in_root, a function, would
# put a subshell in between, and SIGTERM would miss warren).
chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    warren -c /etc/warren/warren.conf -o "broker.uri=$uri" -o pool.workers=1 \
    -o pool.control_socket=/run/warren-deb-test.sock >"$root/tmp/warren.log" 2>&1 &
warren_pid=$!
for _ in $(seq 1 300); do
    grep -q "ready:" "$root/tmp/warren.log" && break
    kill -0 "$warren_pid" 2>/dev/null || break
    sleep 0.1
done
grep -q "ready:" "$root/tmp/warren.log" || { cat "$root/tmp/warren.log"; fail "warren in the chroot never became ready"; }
out=$(in_root timeout 30 warren-call -u "$uri" echo '["hi"]') || fail "warren-call exited $?"
echo "  warren-call echo '[\"hi\"]' -> $out"
[ "$out" = '["hi"]' ] || fail "warren-call echo '[\"hi\"]' answered '$out'"
kill -TERM "$warren_pid"
rc=0
wait "$warren_pid" || rc=$?
warren_pid=
[ "$rc" = 0 ] || { cat "$root/tmp/warren.log"; fail "warren exited $rc on SIGTERM"; }

step "apt-get purge"
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q warren-dev warren >"$root/tmp/purge.log" 2>&1 ||
    { cat "$root/tmp/purge.log"; fail "apt-get purge warren"; }
[ ! -e "$root/etc/warren/warren.conf" ] || fail "/etc/warren/warren.conf survived the purge"
[ ! -e "$root/usr/bin/warren" ] || fail "/usr/bin/warren survived the purge"

step "PASS: warren $version installs, checks, serves and purges in a clean Debian $suite"
