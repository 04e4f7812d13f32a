#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The key/value server's D-Bus status plane on a private dbus-daemon: its counters follow
# real Puts and Gets made with mrkvctl, and LogControl1 works.
# Environment (set by meson): MRKV_KVSERVER, MRKVCTL.
set -u
: "${MRKV_KVSERVER:?}" "${MRKVCTL:?}"
. "$(dirname "$0")/lib.sh"
prop() { busctl --address="$BUS" get-property org.mrkv.KeyValue1 /org/mrkv/KeyValue1 org.mrkv.KeyValue1 "$1"; }
KV=unix:$tmp/kv.sock

"$MRKV_KVSERVER" --listen "$KV" --state-directory "$tmp/state" --bus-address "$BUS" 2> "$tmp/kvserver.log" &
poll 10 busctl --address="$BUS" status org.mrkv.KeyValue1 >/dev/null 2>&1 || fail "no bus name"
[ "$(prop Keys)" = "t 0" ] || fail "Keys is not 0 at start: $(prop Keys)"

"$MRKVCTL" -c "$KV" put alpha one >/dev/null || fail "put alpha"
"$MRKVCTL" -c "$KV" put beta two >/dev/null || fail "put beta"
"$MRKVCTL" -c "$KV" put alpha uno --version 1 >/dev/null || fail "put alpha v1"
"$MRKVCTL" -c "$KV" get alpha >/dev/null || fail "get alpha"
"$MRKVCTL" -c "$KV" get missing >/dev/null 2>&1 && fail "get of a missing key succeeded"

[ "$(prop Keys)" = "t 2" ] || fail "Keys: $(prop Keys)"
[ "$(prop Bytes)" = "t 15" ] || fail "Bytes (alpha+uno+beta+two = 15): $(prop Bytes)"
[ "$(prop Puts)" = "t 3" ] || fail "Puts: $(prop Puts)"
[ "$(prop Gets)" = "t 2" ] || fail "Gets: $(prop Gets)"
[ "$(prop Errors)" = "t 1" ] || fail "Errors (the missing key): $(prop Errors)"
[ "$(prop Connections)" = "u 0" ] || fail "Connections: $(prop Connections)"

busctl --address="$BUS" set-property org.mrkv.KeyValue1 /org/freedesktop/LogControl1 org.freedesktop.LogControl1 \
    LogLevel s debug || fail "LogLevel"
[ "$(busctl --address="$BUS" get-property org.mrkv.KeyValue1 /org/freedesktop/LogControl1 \
     org.freedesktop.LogControl1 LogLevel)" = 's "debug"' ] || fail "LogLevel not debug"
echo PASS
