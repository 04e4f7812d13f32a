#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# mrkv-coordinator socket-activated without a service manager: the first Varlink call
# (org.varlink.service.GetInfo) starts it through systemd-socket-activate and is
# answered on the passed socket; READY=1 and STATUS= follow the start, STOPPING=1 a
# SIGTERM, and it exits 0.
set -eu
. "$(dirname "$0")/lib.sh"
require_tools systemd-socket-activate python3
: "${MRKV_COORDINATOR:?}"
D=$(dirname "$0")

make_tmpdir T
N=$T/notify.sock
S=$T/coordinator.sock

python3 "$D/notify-recv.py" "$N" >"$T/notify.log" &
track_pid $!
wait_for 5 "notify socket" test -S "$N"

# Without FILE arguments the coordinator serves jobs; its working directories go
# under $STATE_DIRECTORY, as in the unit.
mkdir "$T/state"
systemd-socket-activate -l "$S" --fdname=varlink -E NOTIFY_SOCKET="$N" -E STATE_DIRECTORY="$T/state" \
        "$MRKV_COORDINATOR" 2>"$T/coordinator.log" &
PID=$!
track_pid $PID
on_cleanup '[ $st -eq 0 ] || { echo "--- coordinator log"; cat "$T/coordinator.log"; echo "--- notify"; cat "$T/notify.log"; } >&2'
wait_for 5 "listening socket" test -S "$S"
[ ! -s "$T/notify.log" ] || fail "notification before activation: $(cat "$T/notify.log")"

out=$(python3 "$D/varlink-call.py" "unix:$S" org.varlink.service.GetInfo)
echo "GetInfo: $out"
python3 -c '
import json, sys
r = json.loads(sys.argv[1])["parameters"]
assert "org.mrkv.MapReduce" in r["interfaces"], r
assert r["product"], r
' "$out" || fail "GetInfo reply lacks org.mrkv.MapReduce: $out"
# An unknown method is an error reply, not a dropped connection.
rc=0
out=$(python3 "$D/varlink-call.py" "unix:$S" org.mrkv.MapReduce.NoSuchMethod) || rc=$?
[ $rc -eq 1 ] && [[ $out == *org.varlink.service.MethodNotFound* ]] || fail "unknown method: rc $rc, $out"

[ "$(readlink "/proc/$PID/exe")" = "$(readlink -f "$MRKV_COORDINATOR")" ] ||
        fail "PID $PID is $(readlink "/proc/$PID/exe"), not the coordinator"
wait_for 5 "READY=1" notify_has "$T/notify.log" READY=1
wait_for 5 "STATUS=" notify_has "$T/notify.log" STATUS=
grep '^STATUS=' "$T/notify.log" | head -n 3

kill -TERM $PID
rc=0
wait $PID || rc=$?
[ $rc -eq 0 ] || fail "coordinator exited with $rc after SIGTERM"
wait_for 5 "STOPPING=1" notify_has "$T/notify.log" STOPPING=1
echo "OK: activated by GetInfo, READY=1, STATUS=, STOPPING=1, exit 0"
