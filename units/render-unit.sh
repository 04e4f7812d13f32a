#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# render-unit.sh SRC DEST: writes unit SRC (a .in template or a plain unit) to DEST with
# each @bindir@/PROGRAM replaced by this build's copy of PROGRAM, taken from
# $MRKV_COORDINATOR, $MRKV_KVSERVER and $MRKV_WORKER. The tests run the units this way,
# as they are, without installing anything.
set -eu
src=$1
dest=$2
: "${MRKV_COORDINATOR:?}" "${MRKV_KVSERVER:?}" "${MRKV_WORKER:?}"
sed -e "s|@bindir@/mrkv-coordinator\\b|$MRKV_COORDINATOR|g" \
    -e "s|@bindir@/mrkv-kvserver\\b|$MRKV_KVSERVER|g" \
    -e "s|@bindir@/mrkv-worker\\b|$MRKV_WORKER|g" "$src" >"$dest.tmp"
if grep -n '@[a-z_]*@' "$dest.tmp" >&2; then
        rm -f "$dest.tmp"
        echo "render-unit.sh: $src: substitution left over (above)" >&2
        exit 1
fi
mv "$dest.tmp" "$dest"
