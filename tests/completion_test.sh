#!/usr/bin/env bash
# Bash completion for warren and warren-call, as bash-completion runs it:
#   tests/completion_test.sh SOURCE_DIR WARREN_BIN WARREN_CALL_BIN
# sources bash-completion and completions/, asks for the completions of
# partial command lines, and checks that every option --help lists is
# offered and every config key of config/config.c's table is among
# warren -o's.
set -uo pipefail
src=$1 warren=$2 warren_call=$3
fail() { echo "FAIL: $*" >&2; exit 1; }
bc=/usr/share/bash-completion/bash_completion
[ -r "$bc" ] || fail "$bc missing (Debian: apt-get install bash-completion)"
# shellcheck disable=SC1090
source "$bc" || fail "sourcing $bc"
# shellcheck disable=SC1091
source "$src/completions/warren" || fail "sourcing completions/warren"
# shellcheck disable=SC1091
source "$src/completions/warren-call" || fail "sourcing completions/warren-call"

# Outside a real completion, compopt (nospace) can only complain.
compopt() { :; }

# complete LINE: the completions bash would offer at the end of LINE (a
# trailing space starts a new, empty word), one per line, sorted.
complete_line() {
    local line=$1 fn
    COMP_LINE=$line
    COMP_POINT=${#line}
    read -ra COMP_WORDS <<<"$line"
    [[ $line == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    fn=$(complete -p "${COMP_WORDS[0]}" | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
    [ -n "$fn" ] || fail "no completion for ${COMP_WORDS[0]}"
    "$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf '%s\n' "${COMPREPLY[@]}" | sort
}

expect() {
    local line=$1 want got
    want=$(printf '%s\n' "${@:2}" | sort)
    got=$(complete_line "$line")
    [ "$got" = "$want" ] || fail "completing '$line': got [$(tr "\n" " " <<<"$got")], want [$(tr "\n" " " <<<"$want")]"
}

expect "warren-call --pr" --pretty
expect "warren-call --ra" --raw
expect "warren-call --re" --reply-prefix --reply-exchange
expect "warren-call -f " jsonrpc raw amqpbus
expect "warren-call --format a" amqpbus
expect "warren --ch" --check
expect "warren plug" plugin-call
expect "warren st" status stop
expect "warren status --j" --json
expect "warren plugin-call --pr" --pretty
expect "warren -o pool.wo" pool.workers=
expect "warren -o route.rpc.que" route.rpc.queue= route.rpc.queue_type=
expect "warren -c /etc/warren/warren.conf -o log." log.format= log.level=

# Every long option of --help is offered after "--".
offered=$(complete_line "warren-call --")
for opt in $("$warren_call" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
    grep -qx -- "$opt" <<<"$offered" || fail "warren-call: $opt (in --help) is not completed"
done
offered=$(complete_line "warren --")
for opt in $("$warren" --help | grep -oE -- '(^|[ ,])--[a-z][a-z-]+' | grep -oE -- '--[a-z-]+' | sort -u); do
    grep -qx -- "$opt" <<<"$offered" || fail "warren: $opt (in --help) is not completed"
done
offered=$(complete_line "warren plugin-call --")
for opt in $("$warren" plugin-call --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
    grep -qx -- "$opt" <<<"$offered" || fail "warren plugin-call: $opt (in --help) is not completed"
done

offered=$(complete_line "warren status --")
for opt in $("$warren" status --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
    grep -qx -- "$opt" <<<"$offered" || fail "warren status: $opt (in --help) is not completed"
done

# Every key of the config table, as -o SECTION.KEY= (route keys after route.NAME.).
offered=$(complete_line "warren -o "; complete_line "warren -o route.x.")
table=$(sed -n 's/^ *\[K_[A-Z_]*\] = {"\([a-z]*\)", "\([a-z_]*\)".*/\1.\2=/p' "$src/config/config.c" |
    sed 's/^route\./route.x./')
[ "$(wc -l <<<"$table")" -ge 20 ] || fail "could not read the key table of config/config.c"
for key in $table; do
    grep -qx -- "$key" <<<"$offered" || fail "warren -o: $key (config/config.c) is not completed"
done
echo "bash completion: OK"
