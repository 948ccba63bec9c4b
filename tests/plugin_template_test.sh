#!/usr/bin/env bash
# The plugin authors' kit, end to end, as an author outside the tree has it:
#   tests/plugin_template_test.sh SOURCE_DIR BUILD_DIR
# installs the build into a temp prefix, copies examples/plugin-template
# out of the tree, builds it against the installed SDK only
# (PKG_CONFIG_PATH), runs its Criterion tests (which call its methods
# through the installed `warren plugin-call`), installs it into the
# prefix's plugin dir and has the installed warren --check list its
# methods.
set -euo pipefail
src=$1 build=$2
tmp=$(mktemp -d /tmp/warren-template-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
cp -r "$src/examples/plugin-template" "$tmp/hello"
rm -rf "$tmp/hello/build"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
[ "$(pkg-config --variable=warren warren-plugin)" -ef "$prefix/bin/warren" ] ||
    fail "warren-plugin.pc does not name the installed warren"

cmake -S "$tmp/hello" -B "$tmp/hello/build" -DCMAKE_C_FLAGS=-Werror >"$tmp/configure.log" 2>&1 ||
    { cat "$tmp/configure.log"; fail "configuring the template"; }
grep -q "Criterion not found" "$tmp/configure.log" && fail "Criterion not found: the template's tests were not built"
cmake --build "$tmp/hello/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "building the template"; }
ctest --test-dir "$tmp/hello/build" --output-on-failure || fail "the template's tests"
cmake --install "$tmp/hello/build" >/dev/null || fail "installing the template's plugin"
[ -e "$prefix/lib/warren/plugins/hello.so" ] || fail "hello.so not installed into the SDK's plugin dir"

sed 's/^load = .*/load = echo time hello/' "$prefix/etc/warren/warren.conf" > "$tmp/hello.conf"
printf '\n[plugin hello]\ngreeting = Hi\n' >> "$tmp/hello.conf"
"$prefix/bin/warren" -c "$tmp/hello.conf" --check | grep -q " hello.add hello.greet" ||
    fail "--check does not list the template's methods"
# The same section through -c, and a bare plugin name found in the plugin dir.
out=$("$prefix/bin/warren" plugin-call -c "$tmp/hello.conf" hello hello.greet '["Ada"]')
[ "$out" = '{"result":"Hi, Ada!"}' ] || fail "plugin-call -c answered $out"
echo "plugin template from the installed SDK: OK"
