#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# mrkv-kvserver on a full disk: its state directory on a small tmpfs in a mount namespace
# of the test's own. Puts get StorageError (mrkvctl exit 6), Gets keep working, the
# server says Degraded on D-Bus; nothing acknowledged is lost, nothing refused comes back
# (also when the server is killed before any snapshot repaired its log); once space is
# freed, Puts work again by themselves (the server retries its snapshot, no Snapshot()
# call), and a restart finds every acknowledged key.
# Needs root (unshare -m, mount): skipped otherwise.
# Environment (set by meson): MRKV_KVSERVER, MRKVCTL.
set -u
: "${MRKV_KVSERVER:?}" "${MRKVCTL:?}"
. "$(dirname "$0")/lib.sh"
prop() { busctl --address="$BUS" get-property org.mrkv.KeyValue1 /org/mrkv/KeyValue1 org.mrkv.KeyValue1 "$1"; }
KV=unix:$tmp/kv.sock
kv() { "$MRKVCTL" --timeout 10 -c "$KV" "$@"; }

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root for a mount namespace"; exit 77; }
unshare -m true 2>/dev/null || { echo "SKIP: unshare -m is not permitted here"; exit 77; }

mkdir "$tmp/disk"
# A mount namespace where $tmp/disk is a 2 MiB tmpfs, held by a sleeping process (killed
# with the test's jobs); the servers, the filler file and the checks run inside it.
unshare -m --propagation private sh -c 'mount -t tmpfs -o size=2m tmpfs "$0/disk" && touch "$0/disk/mounted" &&
                                        exec sleep infinity' "$tmp" &
HOLDER=$!
in_ns() { nsenter -t "$HOLDER" -m -- "$@"; }
poll 10 in_ns test -e "$tmp/disk/mounted" || fail "no tmpfs"
start_server() {
        # nsenter execs the server (a mount namespace needs no fork): $! is the server.
        nsenter -t "$HOLDER" -m -- "$MRKV_KVSERVER" --listen "$KV" --state-directory "$tmp/disk/state" --bus-address "$BUS" \
                2>> "$tmp/kvserver.log" &
        SERVER=$!
        poll 10 busctl --address="$BUS" status org.mrkv.KeyValue1 >/dev/null 2>&1 || fail "no bus name"
}

start_server
[ "$(prop Degraded)" = "b false" ] || fail "degraded at start"
[ "$(prop SyncMode)" = 's "always"' ] || fail "SyncMode: $(prop SyncMode)"

value=$(head -c 2000 /dev/zero | tr '\0' v)
fill_up() { # FILLER PREFIX: fills the disk but for a little room, then Puts until 5 are refused
        in_ns sh -c "dd if=/dev/zero of='$tmp/disk/$1' bs=64k count=100 status=none 2>/dev/null; true"
        in_ns truncate -s -64K "$tmp/disk/$1"
        acked=0 refused=0 other=0
        for i in $(seq 1 400); do
                rc=0
                kv put "$2-$i" "$value" >/dev/null 2>"$tmp/put.err" || rc=$?
                case $rc in
                0) acked=$((acked + 1)); last_ok=$i ;;
                6) refused=$((refused + 1)); grep -q "not applied" "$tmp/put.err" || fail "exit 6 without its message" ;;
                *) other=$((other + 1)); cat "$tmp/put.err" >&2 ;;
                esac
                [ $refused -ge 5 ] && break
        done
        echo "full disk: $acked puts acknowledged, $refused refused with StorageError, $other other"
        [ $other -eq 0 ] || fail "puts ended otherwise than OK or StorageError"
        [ $refused -ge 1 ] || fail "the disk never filled up"
        [ "$(prop Degraded)" = "b true" ] || fail "not degraded after StorageError: $(prop Degraded)"
}
kill_server() {
        kill -KILL "$SERVER"
        wait "$SERVER" 2>/dev/null
        poll 10 sh -c '! busctl --address="$0" status org.mrkv.KeyValue1 >/dev/null 2>&1' "$BUS" || fail "bus name stayed"
}

# Fill the disk but for a little room: a few dozen Puts.
fill_up filler key
keys_ok=$last_ok
grep -q "Puts get StorageError" "$tmp/kvserver.log" || fail "no error logged"

# Gets keep working, and every acknowledged Put is there; refused ones are not.
for i in $(seq 1 "$keys_ok"); do
        [ "$(kv get "key-$i")" = "$value" ] || fail "acknowledged key-$i lost"
done
first_refused=$((keys_ok + 1))
rc=0
kv get "key-$first_refused" >/dev/null 2>&1 || rc=$?
[ $rc -eq 3 ] || fail "key-$first_refused, refused, is visible (exit $rc)"
# A Put that would fail its version check is answered as such, degraded or not.
rc=0
kv put key-1 x --version 7 >/dev/null 2>&1 || rc=$?
[ $rc -eq 4 ] || fail "a mismatched Put while degraded: exit $rc, expected 4"

# A snapshot on a full disk fails, and Puts stay refused.
busctl --address="$BUS" call org.mrkv.KeyValue1 /org/mrkv/KeyValue1 org.mrkv.KeyValue1 Snapshot >/dev/null ||
        fail "Snapshot() call"
poll 10 in_ns sh -c '! ls -a "$0" | grep -q "^\.snap-"' "$tmp/disk/state" || fail "the snapshot writer did not end"
rc=0
kv put after-fail x >/dev/null 2>&1 || rc=$?
[ $rc -eq 6 ] || fail "put after a failed snapshot on a full disk: exit $rc, expected 6"
[ "$(prop Degraded)" = "b true" ] || fail "not degraded after a failed snapshot"

# Killed while degraded, before any snapshot repaired the log: what was refused stays
# refused after the restart (room enough for the new server's log segment).
in_ns sh -c '! ls "$0" | grep -q "^snap-"' "$tmp/disk/state" || fail "a snapshot was written on a full disk"
kill_server
in_ns truncate -s -256K "$tmp/disk/filler"
start_server
for i in $(seq 1 "$keys_ok"); do
        [ "$(kv get "key-$i")" = "$value" ] || fail "acknowledged key-$i lost across a restart while degraded"
done
for i in $(seq "$first_refused" $((first_refused + 4))); do
        rc=0
        kv get "key-$i" >/dev/null 2>&1 || rc=$?
        [ $rc -eq 3 ] || fail "key-$i, refused, appeared after a restart while degraded (exit $rc)"
done

# Full again; then the space is freed, and with no Snapshot() call the server's own
# retries bring the log back.
fill_up filler2 key2
keys2_ok=$last_ok
in_ns rm -f "$tmp/disk/filler" "$tmp/disk/filler2"
poll 90 sh -c '[ "$(busctl --address="$0" get-property org.mrkv.KeyValue1 /org/mrkv/KeyValue1 org.mrkv.KeyValue1 Degraded)" = "b false" ]' "$BUS" ||
        fail "still degraded 90 s after space was freed"
[ "$(prop LastSnapshotTime)" != "t 0" ] || fail "LastSnapshotTime not set"
kv put again yes >/dev/null || fail "put after recovery"
grep -q "Trying again to write the snapshot" "$tmp/kvserver.log" || fail "no retry logged"

in_ns ls "$tmp/disk/state" > "$tmp/files.txt"
grep -q '^snap-' "$tmp/files.txt" || fail "no snapshot file: $(cat "$tmp/files.txt")"

# Killed and restarted on the same directory: every acknowledged Put is there.
kill_server
start_server
for i in $(seq 1 "$keys_ok"); do
        [ "$(kv get "key-$i")" = "$value" ] || fail "acknowledged key-$i lost across the restart"
done
for i in $(seq 1 "$keys2_ok"); do
        [ "$(kv get "key2-$i")" = "$value" ] || fail "acknowledged key2-$i lost across the restart"
done
[ "$(kv get again)" = yes ] || fail "the put after recovery was lost across the restart"
rc=0
kv get "key-$first_refused" >/dev/null 2>&1 || rc=$?
[ $rc -eq 3 ] || fail "key-$first_refused, refused, appeared after the restart (exit $rc)"
kill -TERM "$SERVER"
wait "$SERVER" || fail "the server did not exit cleanly"
echo PASS
