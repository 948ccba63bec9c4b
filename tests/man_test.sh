#!/usr/bin/env bash
# The man pages: built, lint-clean, installed, and unable to drift.
#   tests/man_test.sh SOURCE_DIR BUILD_DIR
# - `mandoc -T lint` says nothing about any generated page;
# - warren.conf(5) documents exactly the keys of config/config.c's table
#   (each one, and no other), and the example config names each too;
# - every option the programs' --help lists is in their page;
# - cmake --install puts the pages under share/man and the completions
#   under share/bash-completion/completions.
set -uo pipefail
src=$1 build=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v mandoc >/dev/null || fail "mandoc missing (Debian: apt-get install mandoc)"
pages="warren.8 warren.conf.5 warren-call.1 warren-plugin.7"

for p in $pages; do
    [ -s "$build/man/$p" ] || fail "$build/man/$p not built (cmake --build $build --target man)"
    out=$(mandoc -T lint "$build/man/$p" 2>&1) || [ -n "$out" ] || fail "mandoc failed on $p"
    [ -z "$out" ] || fail "mandoc -T lint $p:"$'\n'"$out"
done

# The table: [K_...] = {"section", "key", ...} lines, as SECTION.KEY.
table=$(sed -n 's/^ *\[K_[A-Z_]*\] = {"\([a-z]*\)", "\([a-z_]*\)".*/\1.\2/p' "$src/config/config.c" | sort)
[ "$(wc -l <<<"$table")" -ge 20 ] || fail "could not read the key table of config/config.c"
# The page: "*key* = ..." items under "## [section]" or "## [route NAME]".
documented=$(awk '/^## \[/ { s = $2; sub(/^\[/, "", s); sub(/\]$/, "", s); next }
                  /^# / { s = "" }
                  s != "" && match($0, /^\*[a-z_]+\* = /) { print s "." substr($0, 2, RLENGTH - 5) }' \
    "$src/man/warren.conf.5.scd" | sort)
missing=$(comm -23 <(echo "$table") <(echo "$documented"))
extra=$(comm -13 <(echo "$table") <(echo "$documented"))
[ -z "$missing" ] || fail "keys of config/config.c not in man/warren.conf.5.scd: $(tr "\n" " " <<<"$missing")"
[ -z "$extra" ] || fail "keys in man/warren.conf.5.scd that config/config.c does not have: $(tr "\n" " " <<<"$extra")"
# The example config, the other reference: each key under its section.
example=$(awk '/^;?\[/ { s = $0; sub(/^;?\[/, "", s); sub(/[ \]].*/, "", s); next }
               s != "" && match($0, /^[; ]*[a-z_]+ = /) { k = substr($0, 1, RLENGTH - 3); gsub(/[; ]/, "", k); print s "." k }' \
    "$src/config/warren.conf" | sort -u)
missing=$(comm -23 <(echo "$table") <(echo "$example"))
[ -z "$missing" ] || fail "keys of config/config.c not in config/warren.conf: $(tr "\n" " " <<<"$missing")"

# --help's options, each in its page as *--option*.
check_options() {
    local page=$1 opt
    shift
    for opt in $("$@" --help | grep -oE -- '(^|[ ,])--[a-z][a-z-]+' | grep -oE -- '--[a-z-]+' | sort -u); do
        grep -qF -- "*$opt*" "$src/man/$page.scd" || fail "$* --help lists $opt, man/$page.scd does not"
    done
}
check_options warren.8 "$build/bin/warren"
check_options warren.8 "$build/bin/warren" plugin-call
check_options warren.8 "$build/bin/warren" status
check_options warren-call.1 "$build/bin/warren-call"

prefix=$(mktemp -d /tmp/warren-man-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null || fail "cmake --install"
for f in share/man/man8/warren.8 share/man/man5/warren.conf.5 share/man/man1/warren-call.1 \
         share/man/man7/warren-plugin.7 share/bash-completion/completions/warren \
         share/bash-completion/completions/warren-call; do
    [ -s "$prefix/$f" ] || fail "$f not installed"
done
echo "man pages: OK"
