#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# with-dbus-daemon.sh, which the D-Bus tests build on: the command reaches the private
# bus through DBUS_SESSION_BUS_ADDRESS, gets the command's exit status back, and the
# daemon and its socket are gone afterwards, also when the command fails.
set -eu
. "$(dirname "$0")/lib.sh"
command -v dbus-daemon >/dev/null || skip "dbus-daemon not found"
command -v busctl >/dev/null || skip "busctl not found"
W="$(dirname "$0")/with-dbus-daemon.sh"
make_tmpdir T

for want in 0 3; do
        rc=0
        "$W" sh -c '
                set -e
                echo "$MRKV_TEST_BUS_PID" >"$0/pid"
                echo "$DBUS_SESSION_BUS_ADDRESS" >"$0/address"
                busctl --user call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId >"$0/id"
                busctl --user list --no-pager >"$0/names"
                exit "$1"' "$T" "$want" || rc=$?
        [ $rc -eq "$want" ] || fail "exit status $rc, expected $want"
        pid=$(cat "$T/pid")
        grep -q '^s "[0-9a-f]\{32\}"$' "$T/id" || fail "GetId: $(cat "$T/id")"
        # No service activation: only the caller itself is on the bus.
        ! grep -q activatable "$T/names" || fail "activatable names on the private bus: $(cat "$T/names")"
        path=$(sed -n 's/^unix:path=\([^,]*\).*/\1/p' "$T/address")
        [ -n "$path" ] || fail "address: $(cat "$T/address")"
        # Gone, or a zombie waiting for its adoptive parent.
        wait_for 5 "exit of dbus-daemon $pid" sh -c "! grep -q '^State:[[:space:]]*[A-WY]' /proc/$pid/status 2>/dev/null"
        [ ! -e "$path" ] || fail "$path left behind"
        [ ! -e "$(dirname "$path")" ] || fail "$(dirname "$path") left behind"
done
echo "OK: private bus reached, exit status passed on, daemon and socket gone"
