# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the bus tests: a private dbus-daemon in a fresh temporary directory, removed
# with every process the test started when it exits, also on failure. Sets $tmp and $BUS.

for tool in dbus-daemon busctl; do
    command -v $tool >/dev/null || { echo "$tool is missing: skipping"; exit 77; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrkv-bus.XXXXXX")
dbus_pid=
cleanup() {
    local pids
    pids=$(jobs -p)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    [ -n "$dbus_pid" ] && kill "$dbus_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.log; do
        [ -e "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
    done >&2
    exit 1
}

poll() { # SECONDS COMMAND...: until COMMAND succeeds
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.05
    done
}

dbus-daemon --session --address="unix:path=$tmp/bus.sock" --print-pid=1 --fork > "$tmp/dbus.pid" || fail "dbus-daemon"
dbus_pid=$(head -n1 "$tmp/dbus.pid")
BUS="unix:path=$tmp/bus.sock"
