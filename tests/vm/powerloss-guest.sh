#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# powerloss-guest.sh: PID 1 of test-powerloss.sh's VM (init= on the kernel command line).
# No systemd: mrkv-kvserver, with its state in /var/lib/mrkv/kv on the VM's disk, and
# powerloss-client, whose threads do conditional puts through libmrkv, are all that
# runs, until the host kills qemu. Kernel command line:
#
#   mrkv.powerloss=always|none|check  the server's --sync= for this boot's puts; check:
#                                     report the state and power off, no puts
#   mrkv.powerloss.keys=N             keys key1..keyN (default 8)
#   mrkv.powerloss.clients=N          concurrent clients, each with keys of its own (4)
#   mrkv.powerloss.snapshot=BYTES     --snapshot-log-size= under always, so that
#                                     snapshots are taken (and killed) too; default:
#                                     the server's
#
# What the host needs goes to the second serial port (/dev/ttyS1), one line each, the
# final " ." marking a line the kill did not cut short:
#
#   CACHE <write back|write through> .  the virtual disk's cache as the kernel sees it
#   STATE <key> <version> ok|bad .      each key as the server restarted with it; ok: the
#                                       value is the one put at that version
#   LOADED .                            every STATE line written
#   ACK <key> <version> .               a put the server acknowledged, written after
#                                       its reply and before the next put of the key
#   ERROR <text> .                      anything unexpected
#
# (STATE, LOADED, ACK and the clients' ERROR lines from powerloss-client.) Everything
# else (the server's log, dmesg) goes to the console, /dev/ttyS0.

PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
ADDR=unix:/run/mrkv/kv.sock
STATE_DIR=/var/lib/mrkv/kv
CLIENT=/usr/local/lib/mrkv-vm/powerloss-client

exec </dev/null >/dev/ttyS0 2>&1
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys
mountpoint -q /run || mount -t tmpfs -o mode=0755 tmpfs /run
mountpoint -q /tmp || mount -t tmpfs tmpfs /tmp
stty -F /dev/ttyS1 raw -echo
exec 3>/dev/ttyS1

say() { echo "powerloss-guest: $*"; }
report() { echo "$* ." >&3; }

# The exit status to the host through isa-debug-exit (port 0xf4): qemu exits with
# (status << 1) | 1. Then power off all the same, should the port not be there.
power_off() {
        sync
        printf "\\$(printf %o "$1")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
        echo o >/proc/sysrq-trigger
        sleep 60
}

cmdline_get() { # NAME DEFAULT
        v=$(tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -n 1)
        echo "${v:-$2}"
}

MODE=$(cmdline_get mrkv.powerloss always)
KEYS=$(cmdline_get mrkv.powerloss.keys 8)
CLIENTS=$(cmdline_get mrkv.powerloss.clients 4)
SNAPSHOT=$(cmdline_get mrkv.powerloss.snapshot "")
SYNC=$MODE
[ "$MODE" != check ] || SYNC=always
# A snapshot is synced whatever --sync= says: the control (none) takes none, so that
# what it loses does not depend on when its last snapshot was.
[ "$MODE" = always ] || SNAPSHOT=

say "mode $MODE, $KEYS keys, $CLIENTS clients, $(cut -d' ' -f1 /proc/uptime) s after boot"
# The root file system's journal replayed at mount, after a kill.
dmesg | grep -E 'EXT4-fs|recovery' || true
# "write back": virtio-blk offers a volatile cache, so the kernel follows the writes of
# an fdatasync with a flush, which qemu (cache=writeback) turns into an fdatasync of the
# image on the host.
report "CACHE $(cat /sys/block/vda/queue/write_cache)"

mkdir -p /run/mrkv "$STATE_DIR"
say "$STATE_DIR as the power loss left it:"
ls -l --full-time "$STATE_DIR"
# No D-Bus here. The subshell says when the server ends (it should not).
(
        MRKV_BUS=none mrkv-kvserver --listen "$ADDR" --state-directory="$STATE_DIR" --sync="$SYNC" \
                ${SNAPSHOT:+--snapshot-log-size="$SNAPSHOT"}
        report "ERROR mrkv-kvserver exited with $?"
) &

# Waits for the server (the clerk retries until it answers), reports the state, then
# puts until the power goes.
if [ "$MODE" = check ]; then
        "$CLIENT" "$ADDR" "$KEYS" "$CLIENTS" state >&3
        rc=$?
        say "powerloss-client state exited with $rc; $STATE_DIR:"
        ls -l "$STATE_DIR"
        power_off $rc
fi
"$CLIENT" "$ADDR" "$KEYS" "$CLIENTS" run >&3 &
say "clients started $(cut -d' ' -f1 /proc/uptime) s after boot"
ls -l "$STATE_DIR"
# PID 1 reaps what ends, until the host kills the VM.
while :; do
        wait
        sleep 1
done
