#!/usr/bin/env bash
# Build warren's Debian packages (debian/) and lint them:
#   packaging/build-deb.sh OUT_DIR
# installs what the build needs (debhelper, dpkg-dev, lintian and the
# Build-Depends of debian/control) when any is missing, builds the working
# tree as it is (tracked and untracked files, not ignored ones; in a copy,
# so no build debris lands in the checkout), and leaves in OUT_DIR:
#   warren_VERSION_ARCH.deb  warren-dev_VERSION_all.deb  warren-dbgsym_...deb
#   warren_VERSION_ARCH.changes  .buildinfo  build.log  lintian.txt
# Fails when the build fails, when debian/changelog's version is not
# CMakeLists.txt's project(VERSION), or when lintian reports an error or a
# warning (informational tags are printed, not fatal).
set -euo pipefail

die() {
    echo "build-deb.sh: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: packaging/build-deb.sh OUT_DIR"
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)

# Root runs apt-get itself; anyone else through sudo (as scripts/deps.sh).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "not root and no sudo: as root, run: $*"
    fi
}

tools=(debhelper dpkg-dev lintian)
missing=()
for p in "${tools[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "build-deb.sh: installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
# The Build-Depends: dpkg-checkbuilddeps names the unmet ones, with
# version constraints apt-get does not take; strip those.
if ! unmet=$(cd "$src" && dpkg-checkbuilddeps 2>&1); then
    pkgs=$(sed -n 's/.*Unmet build dependencies: //p' <<<"$unmet" | sed 's/([^)]*)//g; s/|[^ ]*//g')
    [ -n "$pkgs" ] || die "dpkg-checkbuilddeps failed: $unmet"
    echo "build-deb.sh: installing the build dependencies $pkgs"
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs
fi

# One version: the project's.
cmake_version=$(sed -n 's/^project(warren VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
deb_version=$(cd "$src" && dpkg-parsechangelog -S Version)
[ -n "$cmake_version" ] || die "no project(warren VERSION ...) in CMakeLists.txt"
[ "${deb_version%%-*}" = "$cmake_version" ] ||
    die "debian/changelog says $deb_version but CMakeLists.txt says $cmake_version: add a changelog entry (dch -v $cmake_version)"

# dpkg-buildpackage builds in the source tree and writes to its parent, so
# both are a scratch directory.
work=$(mktemp -d /tmp/warren-deb-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/warren-$cmake_version"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$src" && git ls-files -co --exclude-standard -z) |
        (cd "$src" && tar -c --null -T -) | tar -x -C "$work/warren-$cmake_version"
else
    tar -C "$src" -c --exclude='./build*' --exclude='./obj-*' . | tar -x -C "$work/warren-$cmake_version"
fi

echo "build-deb.sh: building warren $deb_version (log: $out/build.log)"
start=$SECONDS
if ! (cd "$work/warren-$cmake_version" &&
      DEB_BUILD_OPTIONS="parallel=2 ${DEB_BUILD_OPTIONS:-}" dpkg-buildpackage -us -uc -b) \
      >"$out/build.log" 2>&1; then
    tail -n 40 "$out/build.log" >&2
    die "dpkg-buildpackage failed (the whole log: $out/build.log)"
fi
echo "build-deb.sh: built in $((SECONDS - start)) s"
changes=$(ls "$work"/warren_*.changes)
cp "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out/"

# lintian as root says so on stderr; that line is not a finding.
lintian --display-info --pedantic --fail-on error,warning "$out/$(basename "$changes")" \
    >"$out/lintian.txt" 2>&1 || lrc=$?
grep -v '^running with root privileges' "$out/lintian.txt" || true
[ "${lrc:-0}" -eq 0 ] || die "lintian found errors or warnings (above; $out/lintian.txt)"
echo "build-deb.sh: lintian: no errors or warnings"
ls -1 "$out"/*.deb
