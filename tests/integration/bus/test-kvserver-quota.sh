#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The per-uid quota of mrkv-kvserver, with two real users: one user's flood of keys is
# refused with QuotaExceeded (mrkvctl exit 7) exactly at --quota-keys while the other
# user goes on writing; bytes are bounded by --quota-bytes; a key is charged to the uid
# that wrote it last; the accounts survive a restart; D-Bus shows the bounds and totals.
# Needs root (useradd, setpriv): skipped otherwise. The users are removed at exit.
# Environment (set by meson): MRKV_KVSERVER, MRKVCTL.
set -u
: "${MRKV_KVSERVER:?}" "${MRKVCTL:?}"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to create users"; exit 77; }
command -v useradd >/dev/null && command -v setpriv >/dev/null || { echo "SKIP: no useradd or setpriv"; exit 77; }
. "$(dirname "$0")/lib.sh"

A=mrkvt-kvquota-a-$$ B=mrkvt-kvquota-b-$$
remove_users() { userdel "$A" 2>/dev/null; userdel "$B" 2>/dev/null; cleanup; }
trap remove_users EXIT
useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$A" || fail "useradd $A"
useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$B" || fail "useradd $B"

prop() { busctl --address="$BUS" get-property org.mrkv.KeyValue1 /org/mrkv/KeyValue1 org.mrkv.KeyValue1 "$1"; }
KV=unix:$tmp/kv.sock
as() { # USER mrkvctl ARGS...: prints the exit status
        local u=$1 rc=0
        shift
        setpriv --reuid="$u" --regid="$u" --clear-groups -- "$MRKVCTL" --timeout 10 -c "$KV" "$@" >/dev/null 2>"$tmp/err" || rc=$?
        echo $rc
}
start_server() {
        "$MRKV_KVSERVER" --listen "$KV" --state-directory "$tmp/state" --bus-address "$BUS" \
                --quota-keys 10 --quota-bytes 2K 2>> "$tmp/kvserver.log" &
        SERVER=$!
        poll 10 busctl --address="$BUS" status org.mrkv.KeyValue1 >/dev/null 2>&1 || fail "no bus name"
        chmod 0666 "$tmp/kv.sock"
}
chmod 0711 "$tmp"
# A state directory of format version 1 (records without their writer): read, and its
# key charged to root.
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
python3 - "$tmp/state" <<'PY' || fail "writing a version 1 log"
import os, struct, sys, zlib
os.makedirs(sys.argv[1], mode=0o700)
def crc(b, off, payload=b''):
    return zlib.crc32(b[:off] + b'\0' * 4 + b[off + 4:] + payload)
header = struct.pack('<8sIIQ', b'MRKVWAL\n', 1, 0, 1)
header = header[:12] + struct.pack('<I', crc(header, 12)) + header[16:]
payload = struct.pack('<QI', 1, 3) + b'old' + b'from version 1'
record = struct.pack('<IIIIQ', len(payload), 0, 1, 0, 1)
record = record[:4] + struct.pack('<I', crc(record, 4, payload)) + record[8:]
with open(os.path.join(sys.argv[1], 'log-0000000000000001.wal'), 'wb') as f:
    f.write(header + record + payload)
PY
start_server
[ "$("$MRKVCTL" -c "$KV" get old)" = "from version 1" ] || fail "the key of the version 1 log"
[ "$(prop QuotaUsers)" = "u 1" ] || fail "QuotaUsers with the old key: $(prop QuotaUsers)"
[ "$(prop QuotaKeys)" = "t 10" ] || fail "QuotaKeys: $(prop QuotaKeys)"
[ "$(prop QuotaBytes)" = "t 2048" ] || fail "QuotaBytes: $(prop QuotaBytes)"

# A floods: ten keys, then QuotaExceeded; B writes in between and after.
for i in $(seq 1 10); do
        [ "$(as "$A" put "a-$i" x)" = 0 ] || fail "A's put $i: $(cat "$tmp/err")"
        [ "$(as "$B" put "b-$i" y)" = 0 ] || fail "B's put $i: $(cat "$tmp/err")"
done
for i in 11 12 13; do
        rc=$(as "$A" put "a-$i" x)
        [ "$rc" = 7 ] || fail "A's put $i past the bound: exit $rc, expected 7: $(cat "$tmp/err")"
        grep -q "not applied" "$tmp/err" || fail "exit 7 without its message"
done
[ "$("$MRKVCTL" -c "$KV" get a-11 >/dev/null 2>&1; echo $?)" = 3 ] || fail "a refused key is there"
rc=$(as "$B" put b-11 y)
[ "$rc" = 7 ] || fail "B's eleventh key: exit $rc"
# Overwriting one's own key adds no key: allowed at the bound.
[ "$(as "$A" put a-1 xx --version 1)" = 0 ] || fail "A's overwrite at the bound: $(cat "$tmp/err")"
# Root is not bounded.
for i in $(seq 1 12); do
        "$MRKVCTL" -c "$KV" put "root-$i" z >/dev/null || fail "root's put $i"
done

# Bytes: a value that would take B past 2 KiB is refused. A key B writes over is charged
# to B: at its bound, B cannot take over one of A's.
big=$(head -c 2100 /dev/zero | tr '\0' v)
[ "$(as "$B" put b-1 "$big" --version 1)" = 7 ] || fail "B past the byte bound"
[ "$(as "$B" put b-1 yy --version 1)" = 0 ] || fail "B's small overwrite: $(cat "$tmp/err")"
[ "$(as "$B" put a-2 taken --version 1)" = 7 ] || fail "B at its key bound took A's key"
[ "$(as "$A" put a-3 gone --version 1)" = 0 ] || fail "A's overwrite"

[ "$(prop QuotaUsers)" = "u 3" ] || fail "QuotaUsers: $(prop QuotaUsers)"
refused=$(prop QuotaRefused)
[ "${refused#t }" -ge 6 ] || fail "QuotaRefused: $refused"
echo "quota: A refused at key 11, B at key 11 and past 2 KiB, ${refused#t } refused in all"

# Across a restart (the owners are in the log and the snapshot, of format version 2): A is still at its bound.
busctl --address="$BUS" call org.mrkv.KeyValue1 /org/mrkv/KeyValue1 org.mrkv.KeyValue1 Snapshot >/dev/null ||
        fail "Snapshot()"
poll 10 sh -c 'ls "$0" | grep -q "^snap-"' "$tmp/state" || fail "no snapshot"
[ "$(as "$A" put a-4 after-snapshot --version 1)" = 0 ] || fail "A's overwrite after the snapshot"
kill -TERM "$SERVER"
wait "$SERVER" || fail "the server did not exit cleanly"
poll 10 sh -c '! busctl --address="$0" status org.mrkv.KeyValue1 >/dev/null 2>&1' "$BUS" || fail "bus name stayed"
start_server
[ "$(as "$A" put a-14 x)" = 7 ] || fail "A's key past the bound after a restart: $(cat "$tmp/err")"
[ "$(as "$B" put b-12 y)" = 7 ] || fail "B's key past the bound after a restart"
[ "$(as "$A" put a-5 again --version 1)" = 0 ] || fail "A's overwrite after a restart: $(cat "$tmp/err")"
[ "$("$MRKVCTL" -c "$KV" get a-4)" = after-snapshot ] || fail "a-4 after the restart"
[ "$(prop QuotaUsers)" = "u 3" ] || fail "QuotaUsers after the restart: $(prop QuotaUsers)"
kill -TERM "$SERVER"
wait "$SERVER" || fail "the server did not exit cleanly"
echo PASS
