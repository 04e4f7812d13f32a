#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Run by with-user-manager.sh: the user units of mrkv-coordinator under a real systemd
# user manager. A Varlink GetInfo call on the socket unit's socket activates the
# service, which answers it, becomes active on READY=1 and shows its STATUS=. It owns
# org.mrkv.MapReduce1 on the user bus (MRKV_BUS=user), and BusName= lets
# `systemctl --user service-log-level` reach its LogControl1. Stopped, it is
# re-activated by the next call while the socket unit stays up.
set -eu
. "$(dirname "$0")/lib.sh"
: "${XDG_RUNTIME_DIR:?}"
S=unix:$XDG_RUNTIME_DIR/mrkv/coordinator.sock
get_info() {
        local out
        out=$(python3 "$(dirname "$0")/varlink-call.py" "$S" org.varlink.service.GetInfo) || return 1
        python3 -c '
import json, sys
r = json.loads(sys.argv[1])["parameters"]
assert "org.mrkv.MapReduce" in r["interfaces"], r
' "$out" || fail "GetInfo reply lacks org.mrkv.MapReduce: $out"
}

require_user_bus
install_user_units
systemctl --user start mrkv-coordinator.socket
unit_is mrkv-coordinator.socket active || fail "socket unit is $(systemctl --user is-active mrkv-coordinator.socket)"
unit_is mrkv-coordinator.service inactive || fail "service started before any connection"

get_info || fail "GetInfo through the socket unit"
wait_for 10 "active mrkv-coordinator.service" unit_is mrkv-coordinator.service active
status=$(unit_property mrkv-coordinator.service StatusText)
[ -n "$status" ] || fail "no status text"
echo "status: $status"
pid1=$(unit_property mrkv-coordinator.service MainPID)
# The name on the user bus belongs to the service's main process.
wait_for 10 "org.mrkv.MapReduce1 on the user bus" busctl --user status org.mrkv.MapReduce1
owner=$(busctl --user call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
        GetConnectionUnixProcessID s org.mrkv.MapReduce1)
[ "$owner" = "u $pid1" ] || fail "org.mrkv.MapReduce1 is owned by '$owner', the main PID is $pid1"
workers=$(busctl --user get-property org.mrkv.MapReduce1 /org/mrkv/MapReduce1 org.mrkv.MapReduce1 Workers)
[ "$workers" = "u 0" ] || fail "Workers is '$workers', expected 'u 0'"
systemctl --user service-log-level mrkv-coordinator.service debug
level=$(busctl --user get-property org.mrkv.MapReduce1 /org/freedesktop/LogControl1 org.freedesktop.LogControl1 LogLevel)
[ "$level" = 's "debug"' ] || fail "LogLevel is $level after service-log-level debug"
[ "$(systemctl --user service-log-level mrkv-coordinator.service)" = debug ] || fail "service-log-level does not read debug"
systemctl --user service-log-level mrkv-coordinator.service info

# StateDirectory=mrkv/coordinator, where the journal and the jobs live: ~/.config/mrkv in
# systemd 252, ~/.local/state/mrkv later.
[ -d "$SDU_HOME/.config/mrkv/coordinator/journal" ] || [ -d "$SDU_HOME/.local/state/mrkv/coordinator/journal" ] ||
        fail "no journal in the state directory"

systemctl --user stop mrkv-coordinator.service
wait_for 10 "inactive mrkv-coordinator.service" unit_is mrkv-coordinator.service inactive
unit_is mrkv-coordinator.socket active || fail "socket unit went down with the service"
get_info || fail "GetInfo after a stop"
wait_for 10 "re-activated mrkv-coordinator.service" unit_is mrkv-coordinator.service active
pid2=$(unit_property mrkv-coordinator.service MainPID)
[ "$pid2" -gt 0 ] && [ "$pid2" != "$pid1" ] || fail "main PID $pid1 -> $pid2 across the re-activation"

systemctl --user stop mrkv-coordinator.service mrkv-coordinator.socket
echo "OK: activated by GetInfo as PID $pid1, re-activated as PID $pid2"
