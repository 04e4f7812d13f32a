#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# mrkv-kvserver socket-activated without a service manager: systemd-socket-activate
# holds the socket and execs the server on the first connection, as a .socket unit
# does. Checks the Varlink service on the passed socket and the sd_notify protocol:
# READY=1 and STATUS= after start, STOPPING=1 on SIGTERM, exit status 0.
set -eu
. "$(dirname "$0")/lib.sh"
require_tools systemd-socket-activate python3
: "${MRKV_KVSERVER:?}" "${MRKVCTL:?}"

make_tmpdir T
N=$T/notify.sock
S=$T/kv.sock

python3 "$(dirname "$0")/notify-recv.py" "$N" >"$T/notify.log" &
track_pid $!
wait_for 5 "notify socket" test -S "$N"

systemd-socket-activate -l "$S" --fdname=varlink -E NOTIFY_SOCKET="$N" "$MRKV_KVSERVER" --state-directory "$T/state" \
        2>"$T/kvserver.log" &
PID=$!
track_pid $PID
on_cleanup '[ $st -eq 0 ] || { echo "--- kvserver log"; cat "$T/kvserver.log"; echo "--- notify"; cat "$T/notify.log"; } >&2'
wait_for 5 "listening socket" test -S "$S"
# Until the first connection nothing but the activator runs, and it sent nothing.
[ ! -s "$T/notify.log" ] || fail "notification before activation: $(cat "$T/notify.log")"

"$MRKVCTL" --timeout 10 -c "unix:$S" put greeting hello
out=$("$MRKVCTL" --timeout 10 -c "unix:$S" get greeting)
[ "$out" = hello ] || fail "get returned '$out', expected 'hello'"

# systemd-socket-activate execs in place: the activated server has the activator's PID.
[ "$(readlink "/proc/$PID/exe")" = "$(readlink -f "$MRKV_KVSERVER")" ] ||
        fail "PID $PID is $(readlink "/proc/$PID/exe"), not the server"
wait_for 5 "READY=1" notify_has "$T/notify.log" READY=1
wait_for 5 "STATUS=" notify_has "$T/notify.log" STATUS=
grep '^STATUS=' "$T/notify.log" | head -n 3

kill -TERM $PID
rc=0
wait $PID || rc=$?
[ $rc -eq 0 ] || fail "server exited with $rc after SIGTERM"
wait_for 5 "STOPPING=1" notify_has "$T/notify.log" STOPPING=1
echo "OK: activated on first connection, READY=1, STATUS=, STOPPING=1, exit 0"
