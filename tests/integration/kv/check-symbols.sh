#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# libmrkv.so exports only mrkv_* (plus the version node LIBMRKV_0 itself, which nm
# lists as an absolute symbol), and carries the soname libmrkv.so.0.
set -eu

lib=$1

syms=$(nm -D --defined-only "$lib")
echo "$syms"

bad=$(echo "$syms" | awk '!($2 == "A" && $3 == "LIBMRKV_0") { sub(/@.*/, "", $3); if ($3 !~ /^mrkv_/) print $3 }')
if [ -n "$bad" ]; then
    echo "exported but not mrkv_*: $bad" >&2
    exit 1
fi

for s in mrkv_clerk_new mrkv_clerk_free mrkv_clerk_get mrkv_clerk_put \
         mrkv_lock_new mrkv_lock_free mrkv_lock_acquire mrkv_lock_release; do
    echo "$syms" | grep -q " T $s@@LIBMRKV_0\$" || { echo "$s is not exported" >&2; exit 1; }
done

readelf -d "$lib" | grep -q 'SONAME.*\[libmrkv\.so\.0\]' || { echo "soname is not libmrkv.so.0" >&2; exit 1; }
