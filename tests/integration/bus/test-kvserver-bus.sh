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

# Deletes, Leases and Watchers, over raw Varlink: a Delete, a Grant and a Watch that
# stays open while the properties are read.
python3 - "$tmp/kv.sock" "$BUS" <<'PY' || fail "Deletes, Leases or Watchers"
import json, socket, subprocess, sys
def connect():
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    return s
def call(s, method, params, more=False):
    m = {"method": "org.mrkv.KV." + method, "parameters": params}
    if more:
        m["more"] = True
    s.sendall(json.dumps(m).encode() + b"\0")
    buf = b""
    while not buf.endswith(b"\0"):
        buf += s.recv(65536)
    return json.loads(buf[:-1])
def prop(name):
    return subprocess.run(["busctl", "--address=" + sys.argv[2], "get-property", "org.mrkv.KeyValue1",
                           "/org/mrkv/KeyValue1", "org.mrkv.KeyValue1", name],
                          capture_output=True, text=True, check=True).stdout.strip()
c = connect()
assert "error" not in call(c, "Delete", {"key": "beta", "version": 1})
assert "error" not in call(c, "Grant", {"ttl": 60})
w = connect()
assert call(w, "Watch", {"key": "alpha", "version": 0}, more=True)["parameters"]["version"] == 2
for name, want in (("Deletes", "t 1"), ("Leases", "t 1"), ("Watchers", "t 1"), ("Keys", "t 1")):
    assert prop(name) == want, "%s: %s" % (name, prop(name))
w.close()
PY

busctl --address="$BUS" set-property org.mrkv.KeyValue1 /org/freedesktop/LogControl1 org.freedesktop.LogControl1 \
    LogLevel s debug || fail "LogLevel"
[ "$(busctl --address="$BUS" get-property org.mrkv.KeyValue1 /org/freedesktop/LogControl1 \
     org.freedesktop.LogControl1 LogLevel)" = 's "debug"' ] || fail "LogLevel not debug"
echo PASS
