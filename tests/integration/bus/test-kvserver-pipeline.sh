#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Pipelined durable Puts on one connection share their syncs: against --sync=always, one
# client sends 2,000 Puts (with a Put that must fail and a Get of a missing key among
# them) without waiting, and checks that every answer comes in call order, that the
# server's Syncs counter (org.mrkv.KeyValue1) grew by at most half the Puts (one each
# before the connection's calls were held), and that after SIGKILL and a restart every
# acknowledged Put is there: once all are answered, and once killed while they are.
# Environment (set by meson): MRKV_KVSERVER.
set -u
: "${MRKV_KVSERVER:?}"
. "$(dirname "$0")/lib.sh"
prop() { busctl --address="$BUS" get-property org.mrkv.KeyValue1 /org/mrkv/KeyValue1 org.mrkv.KeyValue1 "$1"; }
KV=unix:$tmp/kv.sock

# What the three clients below share: a connection to the server once it answers, and
# reading n answers of pipelined calls.
cat > "$tmp/pipe.py" <<'PY'
import json, socket, time

def connect(path):
    deadline = time.monotonic() + 10
    while True:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            return s
        except OSError:
            assert time.monotonic() < deadline, "server not answering"
            time.sleep(0.05)

def calls(method, params):
    return b"".join(json.dumps({"method": "org.mrkv.KV." + method, "parameters": p}).encode() + b"\0"
                    for p in params)

def answers(s, n):
    buf, got = b"", []
    while len(got) < n:
        chunk = s.recv(1 << 16)
        assert chunk, "connection closed after %d answers" % len(got)
        buf += chunk
        *msgs, buf = buf.split(b"\0")
        got += [json.loads(m) for m in msgs]
    return got

def check_values(path, key, value, n):
    """Every key<i> of the first n has the value value<i>."""
    s = connect(path)
    s.sendall(calls("Get", ({"key": "%s%d" % (key, i)} for i in range(n))))
    for i, m in enumerate(answers(s, n)):
        assert m.get("parameters", {}).get("value") == "%s%d" % (value, i), "%s%d: %r" % (key, i, m)
PY
export PYTHONPATH=$tmp

"$MRKV_KVSERVER" --listen "$KV" --state-directory "$tmp/state" --sync=always --bus-address "$BUS" \
    2> "$tmp/kvserver.log" &
server=$!
poll 10 busctl --address="$BUS" status org.mrkv.KeyValue1 >/dev/null 2>&1 || fail "no bus name"
[ "$(prop SyncMode)" = 's "always"' ] || fail "SyncMode: $(prop SyncMode)"
syncs_before=$(prop Syncs | cut -d' ' -f2)

python3 - "$tmp/kv.sock" 2000 <<'PY' > "$tmp/puts" || fail "pipelined answers"
import sys, threading
from pipe import answers, calls, connect
path, n = sys.argv[1], int(sys.argv[2])
s = connect(path)
params, expect = [], []
for i in range(n):
    params.append(("Put", {"key": "p%d" % i, "value": "v%d" % i, "version": 0}))
    expect.append(None)
    if i % 100 == 99:
        # A Put whose version is wrong (the key exists, created above) and a Get of a key
        # that does not exist: their errors must come exactly here.
        params.append(("Put", {"key": "p%d" % i, "value": "x", "version": 7}))
        expect.append("org.mrkv.KV.VersionMismatch")
        params.append(("Get", {"key": "missing%d" % i}))
        expect.append("org.mrkv.KV.NoKey")
data = b"".join(calls(m, [p]) for m, p in params)
# All calls at once, from a thread, while the answers are read.
threading.Thread(target=s.sendall, args=(data,), daemon=True).start()
for i, (m, e) in enumerate(zip(answers(s, len(params)), expect)):
    assert m.get("error") == e, "answer %d: %r, expected %r" % (i, m, e)
print(sum(1 for e in expect if e is None))
PY
puts=$(cat "$tmp/puts")
syncs=$(( $(prop Syncs | cut -d' ' -f2) - syncs_before ))
echo "$puts pipelined Puts acknowledged in order with $syncs syncs"
[ "$puts" = 2000 ] || fail "acknowledged Puts: $puts"
[ $((syncs * 2)) -le "$puts" ] || fail "$syncs syncs for $puts pipelined Puts"

# Acknowledged means durable: killed at once, and started again, the server has them all.
kill -9 $server
wait $server 2>/dev/null
"$MRKV_KVSERVER" --listen "$KV" --state-directory "$tmp/state" --sync=always 2> "$tmp/kvserver2.log" &
server=$!
python3 -c 'import sys, pipe; pipe.check_values(sys.argv[1], "p", "v", 2000)' "$tmp/kv.sock" ||
    fail "acknowledged Puts missing after SIGKILL"

# Killed while answers are on their way: every Put answered before the SIGKILL (all read
# from the socket after it) is there after a restart.
kill $server
wait $server 2>/dev/null
"$MRKV_KVSERVER" --listen "$KV" --state-directory "$tmp/state" --sync=always 2> "$tmp/kvserver3.log" &
server=$!
python3 - "$tmp/kv.sock" "$server" 5000 <<'PY' > "$tmp/acked" || fail "pipelined Puts killed midway"
import json, os, signal, sys, threading
from pipe import calls, connect
path, pid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = connect(path)
data = calls("Put", ({"key": "q%d" % i, "value": "w%d" % i, "version": 0} for i in range(n)))
def send():
    try:
        s.sendall(data)
    except OSError:
        pass
threading.Thread(target=send, daemon=True).start()
buf, acked, killed = b"", 0, False
while True:
    try:
        chunk = s.recv(1 << 16)
    except ConnectionResetError:
        break
    if not chunk:
        break
    buf += chunk
    *msgs, buf = buf.split(b"\0")
    for m in msgs:
        assert "error" not in json.loads(m), m
    acked += len(msgs)
    if not killed and acked >= n // 4:
        os.kill(pid, signal.SIGKILL)
        killed = True
assert killed, "acked %d of %d" % (acked, n)
print(acked)
PY
wait $server 2>/dev/null
acked=$(cat "$tmp/acked")
echo "$acked of 5000 pipelined Puts acknowledged before the SIGKILL"
"$MRKV_KVSERVER" --listen "$KV" --state-directory "$tmp/state" --sync=always 2> "$tmp/kvserver4.log" &
python3 -c 'import sys, pipe; pipe.check_values(sys.argv[1], "q", "w", int(sys.argv[2]))' "$tmp/kv.sock" "$acked" ||
    fail "Puts acknowledged before the SIGKILL are missing"
echo PASS
