#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Run by with-user-manager.sh: the user units of mrkv-kvserver under a real systemd
# user manager. The first connection to the socket unit's socket activates the
# service (Type=notify: active only after READY=1, STATUS= shown by systemctl); after
# `systemctl --user restart` the socket stays, clients are served by a new process, and
# every key is still there: the state is in StateDirectory= ($XDG_STATE_HOME/mrkv/kv).
set -eu
. "$(dirname "$0")/lib.sh"
: "${MRKVCTL:?}" "${XDG_RUNTIME_DIR:?}"
S=unix:$XDG_RUNTIME_DIR/mrkv/kv.sock
kv() { "$MRKVCTL" --timeout 10 -c "$S" "$@"; }

# The unit asks for the user bus (MRKV_BUS=user), as the coordinator's does.
require_user_bus
install_user_units
systemctl --user start mrkv-kvserver.socket
unit_is mrkv-kvserver.socket active || fail "socket unit is $(systemctl --user is-active mrkv-kvserver.socket)"
unit_is mrkv-kvserver.service inactive || fail "service started before any connection"
[ -S "$XDG_RUNTIME_DIR/mrkv/kv.sock" ] || fail "no socket at $XDG_RUNTIME_DIR/mrkv/kv.sock"

kv put greeting hello
wait_for 10 "active mrkv-kvserver.service" unit_is mrkv-kvserver.service active
[ "$(kv get greeting)" = hello ] || fail "get after activation"
for i in $(seq 1 50); do
        kv put "key-$i" "value-$i" >/dev/null
done
kv put key-1 "value-1b" --version 1 >/dev/null
# READY=1 made it active; STATUS= reaches the manager as the status text.
wait_for 10 "a status text" sh -c '[ -n "$(systemctl --user show -p StatusText --value mrkv-kvserver.service)" ]'
echo "status: $(unit_property mrkv-kvserver.service StatusText)"
pid1=$(unit_property mrkv-kvserver.service MainPID)
[ "$pid1" -gt 0 ] || fail "no main PID"

systemctl --user restart mrkv-kvserver.service
wait_for 10 "active mrkv-kvserver.service after restart" unit_is mrkv-kvserver.service active
pid2=$(unit_property mrkv-kvserver.service MainPID)
[ "$pid2" -gt 0 ] && [ "$pid2" != "$pid1" ] || fail "main PID $pid1 -> $pid2 across the restart"
unit_is mrkv-kvserver.socket active || fail "socket unit went down with the restart"

# Every key from before the restart, at its version...
[ "$(kv get greeting)" = hello ] || fail "greeting after the restart: $(kv get greeting 2>&1)"
for i in $(seq 2 50); do
        [ "$(kv get "key-$i")" = "value-$i" ] || fail "key-$i after the restart"
done
[ "$(kv --json get key-1)" = '{"value":"value-1b","version":2}' ] || fail "key-1 after the restart: $(kv --json get key-1)"
# StateDirectory= of a user unit is under ~/.config (systemd < 254) or ~/.local/state.
find "$HOME" -path '*/mrkv/kv/log-*.wal' | grep -q . || fail "no log under $HOME"
# ...and it serves on the same socket.
kv put greeting again --version 1
[ "$(kv get greeting)" = again ] || fail "get after restart"
[ "$(unit_property mrkv-kvserver.service MainPID)" = "$pid2" ] || fail "main PID changed again"

systemctl --user stop mrkv-kvserver.service mrkv-kvserver.socket
wait_for 10 "inactive mrkv-kvserver.service" unit_is mrkv-kvserver.service inactive
echo "OK: activated as PID $pid1, restarted as PID $pid2 with all 51 keys, served before and after"
