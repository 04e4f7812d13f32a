#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# check-symbols.sh LIB [VERSION-SCRIPT DEBIAN-SYMBOLS HEADER...]
#
# libmrkv.so exports only mrkv_* (plus its version nodes, which nm lists as absolute
# symbols), and carries the soname libmrkv.so.0. With the other arguments, the exports
# (name@node) are exactly those the version script lists by name, those the Debian
# symbols file lists, and the functions the public headers declare: a function added to
# a header but not to the version script would silently stay local.
set -eu

lib=$1
shift

syms=$(nm -D --defined-only "$lib")
echo "$syms"

bad=$(echo "$syms" | awk '!($2 == "A" && $3 ~ /^LIBMRKV_[0-9.]+$/) { sub(/@.*/, "", $3); if ($3 !~ /^mrkv_/) print $3 }')
if [ -n "$bad" ]; then
    echo "exported but not mrkv_*: $bad" >&2
    exit 1
fi

for s in mrkv_clerk_new mrkv_clerk_free mrkv_clerk_get mrkv_clerk_put \
         mrkv_lock_new mrkv_lock_free mrkv_lock_acquire mrkv_lock_release; do
    echo "$syms" | grep -q " T $s@@LIBMRKV_0\$" || { echo "$s is not exported" >&2; exit 1; }
done

readelf -d "$lib" | grep -q 'SONAME.*\[libmrkv\.so\.0\]' || { echo "soname is not libmrkv.so.0" >&2; exit 1; }

[ $# -ge 3 ] || exit 0
script=$1
debian=$2
shift 2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name@node of what the library exports...
echo "$syms" | awk '$2 != "A" { sub(/@@/, "@", $3); print $3 }' | sort > "$tmp/exported"
# ...of what the version script lists in the global: part of each node (no wildcards)...
sed 's,/\*.*\*/,,; s,/\*.*,,; s,.*\*/,,' "$script" | tr -s ' \t' ' ' | awk '
    /^ ?[A-Za-z0-9_.]+ ?\{/ { node = $1; sub(/\{.*/, "", node); global = 0; next }
    /^ ?global: ?$/ { global = 1; next }
    /^ ?local: ?$/ { global = 0; next }
    /^ ?\}/ { node = ""; next }
    global && node != "" && /;/ { gsub(/[ ;]/, ""); if ($0 != "") print $0 "@" node }' | sort > "$tmp/script"
# ...of the Debian symbols file (its lines for the nodes themselves left out)...
awk '/^ / && $1 !~ /^LIBMRKV_[0-9.]+@/ { print $1 }' "$debian" | sort > "$tmp/debian"
# ...and the names of the functions the public headers declare.
grep -ho '\bmrkv_[a-z0-9_]*(' "$@" | tr -d '(' | sort -u > "$tmp/headers"
sed 's/@.*//' "$tmp/exported" | sort -u > "$tmp/exported-names"

fail=0
if grep -q '\*' "$tmp/script"; then
    echo "$script: a wildcard in a global: list; name each symbol" >&2
    fail=1
fi
compare() { # WHAT FILE-A FILE-B
    if ! diff -u "$2" "$3" >"$tmp/diff"; then
        echo "$1 differ (-: $2, +: $3):" >&2
        cat "$tmp/diff" >&2
        fail=1
    fi
}
compare "the exports and the version script" "$tmp/exported" "$tmp/script"
compare "the exports and $debian" "$tmp/exported" "$tmp/debian"
compare "the exported names and the functions of the public headers" "$tmp/exported-names" "$tmp/headers"
exit $fail
