#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# with-dbus-daemon.sh [--config-file FILE] CMD [ARG...]
#
# Runs CMD with a private dbus-daemon of its own: a session bus that lets everyone own
# and call anything and activates no services, or one configured by FILE (a
# system-bus-like policy, say; its <listen> is replaced). CMD gets the address in DBUS_SESSION_BUS_ADDRESS
# (so `busctl --user` and sd_bus_open_user() reach it) and in MRKV_TEST_BUS_ADDRESS, and
# the daemon's PID in MRKV_TEST_BUS_PID. The daemon is killed and its directory removed
# afterwards, whatever CMD does. Exit status: CMD's; 77 when dbus-daemon is missing.
set -eu

config=
if [ "${1:-}" = --config-file ]; then
        config=$2
        shift 2
fi
if [ $# -eq 0 ]; then
        echo "usage: $0 [--config-file FILE] CMD [ARG...]" >&2
        exit 2
fi
command -v dbus-daemon >/dev/null || { echo "SKIP: dbus-daemon not found" >&2; exit 77; }

# The forked daemon is not our child: once dead it may stay a zombie until whoever
# adopted it reaps it, and kill -0 would still succeed.
alive() {
        local state
        state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
        [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

T=
BUS_PID=
CPID=
rc=0
cleanup() {
        set +e
        trap - EXIT INT TERM
        [ -z "$CPID" ] || kill "$CPID" 2>/dev/null
        if [ -n "$BUS_PID" ]; then
                kill "$BUS_PID" 2>/dev/null
                for _ in $(seq 1 250); do
                        alive "$BUS_PID" || break
                        sleep 0.02
                done
                alive "$BUS_PID" && kill -9 "$BUS_PID" 2>/dev/null
        fi
        [ -z "$T" ] || rm -rf "$T"
        exit $rc
}
trap cleanup EXIT
trap 'rc=130; exit' INT
trap 'rc=143; exit' TERM

T=$(mktemp -d /tmp/mrkv-bus.XXXXXX)
# Other users may connect: the policy test calls as several.
chmod 755 "$T"
if [ -z "$config" ]; then
        config=$T/session.conf
        cat >"$config" <<'CONF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
        "https://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
        <type>session</type>
        <listen>unix:tmpdir=/tmp</listen>
        <auth>EXTERNAL</auth>
        <policy context="default">
                <allow send_destination="*" eavesdrop="true"/>
                <allow eavesdrop="true"/>
                <allow own="*"/>
        </policy>
</busconfig>
CONF
fi
# With --fork, dbus-daemon prints address and PID once it listens, then the parent exits.
if ! dbus-daemon --config-file="$config" --address="unix:path=$T/bus" --nopidfile --fork \
        --print-address=3 --print-pid=4 3>"$T/address" 4>"$T/pid" </dev/null; then
        echo "with-dbus-daemon: dbus-daemon failed to start" >&2
        rc=1
        exit
fi
BUS_PID=$(cat "$T/pid")
MRKV_TEST_BUS_ADDRESS=$(head -n 1 "$T/address")
[ -n "$BUS_PID" ] && [ -n "$MRKV_TEST_BUS_ADDRESS" ] || { echo "with-dbus-daemon: no address or PID" >&2; rc=1; exit; }
export MRKV_TEST_BUS_ADDRESS MRKV_TEST_BUS_PID=$BUS_PID DBUS_SESSION_BUS_ADDRESS=$MRKV_TEST_BUS_ADDRESS

"$@" <&0 &
CPID=$!
wait "$CPID" || rc=$?
CPID=
exit $rc
