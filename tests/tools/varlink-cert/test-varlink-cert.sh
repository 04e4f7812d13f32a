#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Varlink certification suite (org.varlink.certification) over Unix sockets in a
# temporary directory.
#
#   test-varlink-cert.sh          the reference client (varlink-go-certification --client)
#                                 against mrkv-varlink-cert's service, and
#                                 mrkv-varlink-cert --client against the reference service;
#                                 skipped (77) without varlink-go-certification
#   test-varlink-cert.sh --self   mrkv-varlink-cert --client against its own service, and
#                                 the service's answers to wrong calls
#
# $MRKV_VARLINK_CERT is mrkv-varlink-cert; $VARLINK_GO_CERTIFICATION may name the
# reference program (default: varlink-go-certification on $PATH).
set -euo pipefail

cert=${MRKV_VARLINK_CERT:?MRKV_VARLINK_CERT is not set}
reference=${VARLINK_GO_CERTIFICATION:-varlink-go-certification}
self=0
[ "${1:-}" = "--self" ] && self=1

command -v python3 >/dev/null || { echo "python3 is missing: skipping"; exit 77; }
if [ $self = 0 ] && ! command -v "$reference" >/dev/null; then
    echo "$reference is not installed (Debian package varlink-go): skipping"
    exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrkv-varlink-cert.XXXXXX")
cleanup() {
    local pids
    pids=$(jobs -p)
    [ -n "$pids" ] && kill $pids 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.log; do
        [ -e "$f" ] && { echo "--- $f"; cat "$f"; }
    done >&2
    exit 1
}

# Polls until a connection to the Unix socket PATH is accepted, for at most 30 s.
wait_for_socket() {
    python3 - "$1" <<'PY' || fail "nothing accepts connections on $1"
import socket, sys, time
deadline = time.monotonic() + 30
while True:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(sys.argv[1])
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.05)
    finally:
        s.close()
PY
}

service_pid=
start_service() { # NAME: mrkv-varlink-cert's service on $tmp/NAME.sock, its log in $tmp/NAME.log
    "$cert" --varlink "unix:$tmp/$1.sock" --log-level debug 2>"$tmp/$1.log" &
    service_pid=$!
    wait_for_socket "$tmp/$1.sock"
}

# Stops the service with SIGTERM: it must exit cleanly (and, under sanitizers, without
# a finding), and remove its socket.
stop_service() { # NAME
    local rc=0
    kill -TERM "$service_pid"
    wait "$service_pid" || rc=$?
    [ $rc = 0 ] || fail "the service exited with $rc"
    [ ! -e "$tmp/$1.sock" ] || fail "the service left its socket behind"
}

# Our client against SOCKET; its output in $tmp/LOG.log.
run_our_client() { # SOCKET LOG
    local rc=0
    timeout 60 "$cert" --client --varlink "unix:$1" >"$tmp/$2.log" 2>&1 || rc=$?
    cat "$tmp/$2.log"
    [ $rc = 0 ] || fail "mrkv-varlink-cert --client exited with $rc against $1"
    grep -q '^PASS: ' "$tmp/$2.log" || fail "mrkv-varlink-cert --client did not pass against $1"
}

if [ $self = 1 ]; then
    start_service mrkv-service
    run_our_client "$tmp/mrkv-service.sock" mrkv-client
    grep -q 'passed the certification' "$tmp/mrkv-service.log" ||
        fail "the service did not log the client's pass"

    # Wrong calls: each is answered with CertificationError, and End then says all_ok false.
    python3 - "$tmp/mrkv-service.sock" <<'PY' >"$tmp/wrong-calls.log" 2>&1 || fail "wrong calls were not refused"
import json, socket, sys

s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
buf = b''

def call(method, parameters, **flags):
    global buf
    s.sendall(json.dumps(dict(method='org.varlink.certification.' + method,
                              parameters=parameters, **flags)).encode() + b'\0')
    if flags.get('oneway'):
        return None
    while b'\0' not in buf:
        data = s.recv(65536)
        assert data, 'connection closed'
        buf += data
    msg, buf = buf.split(b'\0', 1)
    print(method, msg.decode())
    return json.loads(msg)

def refused(reply, error='org.varlink.certification.CertificationError'):
    assert reply.get('error') == error, reply

def certify(wrong):
    cid = call('Start', {})['parameters']['client_id']
    assert call('Test01', {'client_id': cid}) == {'parameters': {'bool': True}}
    wrong(cid)
    assert call('End', {'client_id': cid})['parameters'] == {'all_ok': False}

# A wrong value, a float for an int, an extra field, a missing one.
certify(lambda cid: refused(call('Test02', {'client_id': cid, 'bool': False})))
certify(lambda cid: refused(call('Test02', {'client_id': cid, 'bool': True, 'extra': 1})))
certify(lambda cid: refused(call('Test02', {'client_id': cid})))
def int_as_float(cid):
    assert call('Test02', {'client_id': cid, 'bool': True}) == {'parameters': {'int': 1}}
    refused(call('Test03', {'client_id': cid, 'int': 1.0}))
certify(int_as_float)
# Out of order, and "more" where it does not belong.
certify(lambda cid: refused(call('Test03', {'client_id': cid, 'int': 1})))
certify(lambda cid: refused(call('Test02', {'client_id': cid, 'bool': True}, more=True)))
# A oneway call that is wrong gets no answer, but End knows.
certify(lambda cid: call('Test02', {'client_id': cid, 'bool': True}, oneway=True))
# An unknown client.
refused(call('Test01', {'client_id': 'nobody'}), 'org.varlink.certification.ClientIdError')
print('all wrong calls refused')
PY
    cat "$tmp/wrong-calls.log"
    stop_service mrkv-service
    exit 0
fi

echo "== the reference client against mrkv-varlink-cert's service"
start_service mrkv-service
rc=0
timeout 60 "$reference" --client --varlink "unix:$tmp/mrkv-service.sock" >"$tmp/reference-client.log" 2>&1 || rc=$?
cat "$tmp/reference-client.log"
# The reference client exits with 0 whatever happened: its output tells.
[ $rc = 0 ] || fail "the reference client exited with $rc"
grep -q 'failed' "$tmp/reference-client.log" && fail "the reference client reports a failure"
grep -qx "End: 'true'" "$tmp/reference-client.log" || fail "the reference client did not end with all_ok true"
grep -q 'passed the certification' "$tmp/mrkv-service.log" || fail "the service did not log the client's pass"
stop_service mrkv-service

echo "== mrkv-varlink-cert's client against the reference service"
"$reference" --varlink "unix:$tmp/reference.sock" >"$tmp/reference-service.log" 2>&1 &
wait_for_socket "$tmp/reference.sock"
run_our_client "$tmp/reference.sock" mrkv-client
