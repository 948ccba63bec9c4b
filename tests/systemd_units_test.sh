#!/usr/bin/env bash
# The installed systemd units, checked by systemd itself:
#   tests/systemd_units_test.sh SOURCE_DIR BUILD_DIR
# installs the build into a temp prefix (so that every ExecStart= names a
# binary that exists), runs `systemd-analyze verify` on warren.service and
# warren@.service, and requires an exposure score of 2.0 or lower ("OK")
# from `systemd-analyze security --offline=yes` for each, printing both.
# Skips (77) where systemd-analyze is absent.
set -euo pipefail
src=$1 build=$2
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
prefix=$(mktemp -d /tmp/warren-units-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
max=2.0

cmake --install "$build" --prefix "$prefix" >/dev/null
units=$prefix/lib/systemd/system
for u in warren.service warren@.service; do
    [ -f "$units/$u" ] || fail "$u not installed"
    [ -f "$src/systemd/$u.in" ] || fail "no $src/systemd/$u.in"
done

# What the supervisor and the README rely on, in both units.
for u in warren.service warren@.service; do
    # shellcheck disable=SC2016 # $MAINPID is for systemd, literally
    for line in Type=notify NotifyAccess=main 'ExecReload=/bin/kill -HUP $MAINPID' WatchdogSec=30 \
                KillMode=mixed RuntimeDirectory=warren RuntimeDirectoryPreserve=yes \
                RestartPreventExitStatus=78; do
        grep -qxF "$line" "$units/$u" || fail "$u lacks \"$line\""
    done
done
grep -qxF "ExecStart=$prefix/bin/warren -c $prefix/etc/warren/warren.conf" "$units/warren.service" ||
    fail "warren.service does not run the installed warren on the installed config"
grep -qxF "ExecStart=$prefix/bin/warren -c $prefix/etc/warren/%i.conf" "$units/warren@.service" ||
    fail "warren@.service does not run the installed warren on etc/warren/%i.conf"

out=$(systemd-analyze verify "$units/warren.service" "$units/warren@.service" 2>&1) ||
    { echo "$out"; fail "systemd-analyze verify"; }
[ -z "$out" ] || { echo "$out"; fail "systemd-analyze verify is not silent"; }

for u in warren.service warren@.service; do
    out=$(systemd-analyze security --offline=yes "$units/$u" 2>&1) || true
    score=$(printf '%s\n' "$out" | sed -n 's/^→ Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p')
    [ -n "$score" ] || { echo "$out"; fail "no exposure level for $u"; }
    echo "$u: exposure $score (at most $max)"
    awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }' ||
        { printf '%s\n' "$out" | grep -v '^✓'; fail "$u: exposure $score above $max"; }
done
echo "systemd units: OK"
