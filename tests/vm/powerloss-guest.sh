#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# powerloss-guest.sh: PID 1 of test-powerloss.sh's VM (init= on the kernel command line).
# No systemd: mrkv-kvserver, with its state in /var/lib/mrkv/kv on the VM's disk, and
# clients doing conditional puts with mrkvctl are all that runs, until the host kills
# qemu. Kernel command line:
#
#   mrkv.powerloss=always|none|check  the server's --sync= for this boot's puts; check:
#                                     report the state and power off, no puts
#   mrkv.powerloss.keys=N             keys key1..keyN (default 8)
#   mrkv.powerloss.clients=N          concurrent clients, each with keys of its own (4)
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
# The value put at version V of key K is "K.vV." and a padding, so that a value read back
# tells the version it was written at. Everything else (the server's log, dmesg) goes
# to the console, /dev/ttyS0.

PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
ADDR=unix:/run/mrkv/kv.sock
STATE_DIR=/var/lib/mrkv/kv
PAD=0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789

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
SYNC=$MODE
[ "$MODE" != check ] || SYNC=always

say "mode $MODE, $KEYS keys, $CLIENTS clients, $(cut -d' ' -f1 /proc/uptime) s after boot"
# The root file system's journal replayed at mount, after a kill.
dmesg | grep -E 'EXT4-fs|recovery' || true
# "write back": virtio-blk offers a volatile cache, so the kernel follows the writes of
# an fdatasync with a flush, which qemu (cache=writeback) turns into an fdatasync of the
# image on the host.
report "CACHE $(cat /sys/block/vda/queue/write_cache)"

mkdir -p /run/mrkv "$STATE_DIR"
# No D-Bus here. The subshell says when the server ends (it should not).
(
        MRKV_BUS=none mrkv-kvserver --listen "$ADDR" --state-directory="$STATE_DIR" --sync="$SYNC"
        rc=$?
        touch /run/mrkv/server-exited
        report "ERROR mrkv-kvserver exited with $rc"
) &

ctl() { mrkvctl --connect "$ADDR" --timeout 60 "$@"; }
# mrkvctl get: 0 found, 3 no such key; anything else: not serving (yet).
deadline=$(($(cut -d. -f1 /proc/uptime) + 600))
until mrkvctl --connect "$ADDR" --timeout 1 get mrkv-powerloss-probe >/dev/null 2>&1 || [ $? -eq 3 ]; do
        if [ -e /run/mrkv/server-exited ] || [ "$(cut -d. -f1 /proc/uptime)" -ge $deadline ]; then
                report "ERROR mrkv-kvserver does not serve"
                power_off 1
        fi
        sleep 0.1
done
say "serving $(cut -d' ' -f1 /proc/uptime) s after boot; $STATE_DIR:"
ls -l "$STATE_DIR"

# key_state KEY: prints "VERSION VALUE", "0 -" for a missing key; fails when the
# server does not answer.
key_state() {
        out=$(ctl get --json "$1" 2>/dev/null)
        case $? in
        0) ;;
        3)
                echo "0 -"
                return 0
                ;;
        *) return 1 ;;
        esac
        echo "$(echo "$out" | sed -n 's/.*"version" *: *\([0-9][0-9]*\).*/\1/p')" \
                "$(echo "$out" | sed -n 's/.*"value" *: *"\([^"]*\)".*/\1/p')"
}

k=1
while [ $k -le "$KEYS" ]; do
        st=$(key_state "key$k") || {
                report "ERROR get key$k failed"
                power_off 1
        }
        v=${st%% *}
        if [ "$v" -eq 0 ] || [ "${st#* }" = "key$k.v$v.$PAD" ]; then
                report "STATE key$k $v ok"
        else
                report "STATE key$k $v bad"
                say "key$k at version $v holds '${st#* }'"
        fi
        eval "version$k=$v"
        k=$((k + 1))
done
report LOADED

if [ "$MODE" = check ]; then
        ls -l "$STATE_DIR"
        power_off 0
fi

# client N: puts to the keys N, N + CLIENTS, ... in turn, each at the version it holds.
client() {
        keys=
        k=$1
        while [ $k -le "$KEYS" ]; do
                keys="$keys $k"
                k=$((k + CLIENTS))
        done
        while :; do
                for k in $keys; do
                        eval "cur=\$version$k"
                        next=$((cur + 1))
                        if ctl put "key$k" "key$k.v$next.$PAD" --version "$cur"; then
                                report "ACK key$k $next"
                                eval "version$k=$next"
                        else
                                rc=$?
                                report "ERROR put key$k at version $cur exited with $rc"
                                st=$(key_state "key$k") && eval "version$k=${st%% *}"
                        fi
                done
        done
}

c=1
while [ $c -le "$CLIENTS" ]; do
        client $c &
        c=$((c + 1))
done
say "$CLIENTS clients started $(cut -d' ' -f1 /proc/uptime) s after boot"
# PID 1 reaps what ends, until the host kills the VM.
while :; do
        wait
        sleep 1
done
