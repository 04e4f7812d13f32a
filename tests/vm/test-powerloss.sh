#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-powerloss.sh: every put mrkv-kvserver acknowledged survives a power loss.
#
# The server runs in a qemu VM (TCG) with its state on the VM's virtual disk, and
# threads of a client in the VM (powerloss-client.c, on libmrkv) do conditional puts, reporting each acknowledged one
# to the host on a serial port. The host kills qemu with SIGKILL at a random moment
# (everything the guest had not written to its disk, its page cache among it, is
# lost), boots the same disk image again and checks that every put reported before the
# kill is there, at its version or a later one, with the value put at that version.
# MRKV_POWERLOSS_KILLS times (default 5) with --sync=always; then once with --sync=none
# as a control, where some acknowledged puts must be lost (else the kill did not lose
# the page cache, and the test would prove nothing); a last boot reads the state back
# and powers off.
#
# The disk is a raw image with cache=writeback: qemu writes it through the host's page
# cache, and the guest sees a volatile write cache (/sys/block/vda/queue/write_cache is
# "write back", which the guest reports and we check), so the kernel follows the writes
# of an fdatasync with a flush, and qemu turns that flush into an fdatasync of the image.
# qemu's death loses the guest's memory but not what qemu had written to the image: the
# power loss of a machine whose disk keeps what it had acknowledged.
#
# The VM boots the .debs of packaging/build-deb (or $MRKV_VM_DEBS) installed into the
# cached root file system of mkrootfs.sh, with init=powerloss-guest.sh (no systemd)
# and a small initramfs (mini-init.c and the modules for virtio-blk and ext4; Debian's
# initrd when it cannot be made), about 6 s a boot under TCG.
#
# Output: TAP, the counts as "#" lines; the serial consoles and the rest in
# $MRKV_VM_LOGDIR/vm-powerloss.log. Exit status: 0 when every step passed, 1 otherwise,
# 77 (skip) when not root, a tool or the kernel is missing, or the server has no --sync=
# (it keeps no state). Environment: MRKV_POWERLOSS_KILLS, MRKV_POWERLOSS_SEED (of the
# kill moments, printed), MRKV_POWERLOSS_KILL_MAX_MS (4000: a kill comes up to this long
# after the boot's first acknowledged put), and those of test-qemu.sh.
set -euo pipefail

NAME=vm-powerloss
. "$(dirname "$0")/lib-vm.sh"

vm_require_root qemu-system-x86_64 mke2fs systemd-nspawn unshare debootstrap dpkg-deb flock
if [ -z "${MRKV_VM_DEBS:-}" ]; then
        command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null ||
                skip "dpkg-buildpackage or dh not found (dpkg-dev, debhelper)"
fi
[ ${#CG_HIER[@]} -gt 0 ] || skip "no cgroup file system"
vm_qemu_kernel
# meson passes the server of the build tree: no need to build packages to find out.
if [ -n "${MRKV_KVSERVER:-}" ] && ! "$MRKV_KVSERVER" --help 2>/dev/null | grep -q -- '--sync='; then
        skip "mrkv-kvserver has no --sync= option: it keeps no state to lose"
fi
vm_enter_namespace "$@"

KILLS=${MRKV_POWERLOSS_KILLS:-5}
KILL_MAX_MS=${MRKV_POWERLOSS_KILL_MAX_MS:-4000}
SEED=${MRKV_POWERLOSS_SEED:-$((($(date +%s%N) / 1000) % 32768))}
KEYS=8
CLIENTS=4
# A snapshot every 30 puts or so: power losses hit snapshots too.
SNAPSHOT_LOG_SIZE=4096
# Puts acknowledged under --sync=none before the control's kill.
CONTROL_ACKS=100
# Seconds until a boot reports its state (about 10 under TCG). Generous: waits poll,
# and TCG on a loaded machine is slow.
BOOT_WAIT=${MRKV_VM_BOOT_WAIT:-300}
GUEST_INIT=/usr/local/lib/mrkv-vm/powerloss-guest.sh

TMP=
CG=
QEMU=
QEMU_PIDS=()
BOOT_INITRD=
APPEND=
signalled=

exec 3>&1 4>&2

cleanup() {
        local st=$?
        set +e
        trap - EXIT INT TERM
        exec 1>&3 2>&4
        stop_vm
        vm_finish "$st" "${QEMU_PIDS[@]}"
}
trap cleanup EXIT
trap 'signalled=130; exit' INT
trap 'signalled=143; exit' TERM

vm_remove_stale
vm_log_start
TMP=$(mktemp -d "$TMPROOT/mrkv-vm-$$.XXXXXX")
vm_cgroup_create CG "mrkv-vm-$$"
log "cgroup: $CG (${CG_HIER[*]}), temporary directory: $TMP, kernel: $KERNEL, seed: $SEED"

# --- the image ------------------------------------------------------------------------

check_durable() {
        local help
        help=$(chroot "$TMP/root" mrkv-kvserver --help) || { echo "FAIL: mrkv-kvserver --help exited with $?"; return 1; }
        echo "$help"
        grep -q -- '--sync=' <<<"$help" || VM_SKIPPED="mrkv-kvserver has no --sync= option: it keeps no state to lose"
}

make_initramfs() {
        if vm_mini_initramfs "$TMP/initramfs.cpio"; then
                BOOT_INITRD=$TMP/initramfs.cpio
                APPEND="root=/dev/vda"
        else
                echo "booting with Debian's initrd instead, about 10 s slower"
                BOOT_INITRD=$INITRD
                APPEND="root=/dev/vda rw"
        fi
        APPEND="console=ttyS0 quiet panic=-1 $APPEND init=$GUEST_INIT mrkv.powerloss.keys=$KEYS mrkv.powerloss.clients=$CLIENTS mrkv.powerloss.snapshot=$SNAPSHOT_LOG_SIZE"
}

# The client, built here against the packaged libmrkv (there is no compiler in the VM).
build_client() {
        local sdk=$TMP/sdk lib p
        for p in libmrkv0 libmrkv-dev; do
                dpkg-deb -x "$(ls "$TMP/debs/${p}"_*.deb | head -n 1)" "$sdk" || return 1
        done
        lib=$(find "$sdk" -name libmrkv.so -printf '%h\n' | head -n 1)
        [ -n "$lib" ] || { echo "FAIL: libmrkv-dev has no libmrkv.so"; return 1; }
        "${CC:-cc}" -O2 -Wall -Wextra -Werror -I"$sdk/usr/include" -o "$TMP/powerloss-client" \
                "$VM_DIR/powerloss-client.c" -L"$lib" -lmrkv -pthread || { echo "FAIL: cc exited with $?"; return 1; }
        install -m 0755 "$TMP/powerloss-client" "$TMP/root/usr/local/lib/mrkv-vm/powerloss-client"
        ldd "$TMP/powerloss-client" || true
}

make_image() {
        install -m 0755 "$VM_DIR/powerloss-guest.sh" "$TMP/root$GUEST_INIT"
        truncate -s 1G "$TMP/root.img"
        mke2fs -q -t ext4 -L mrkv-vm -d "$TMP/root" "$TMP/root.img" || { echo "FAIL: mke2fs -d exited with $?"; return 1; }
        echo "image: $(du -h "$TMP/root.img" | cut -f1) used of 1G"
}

# --- boots ----------------------------------------------------------------------------

BOOT=0
ACKS=       # the current boot's serial port 2
declare -A ACKED=()     # key: its highest version acknowledged under --sync=always
declare -A SEEN=()      # key: its version the last boot started with
CHECKED=0       # acknowledged puts found after a power loss
TOTAL_ACKS=0
CONTROL_LOST=0
CONTROL_TOTAL=0
CONTROL_STATS="? ?"
STATS=
ERRORS=0
PREV_ACKS=
PREV_MODE=
declare -a BOOT_SUMMARY=()

# stop_vm: kills the VM, if it runs.
stop_vm() {
        [ -n "$QEMU" ] || return 0
        kill -KILL "$QEMU" 2>/dev/null
        wait "$QEMU" 2>/dev/null
        QEMU=
}

# start_vm MODE: boots the image with mrkv.powerloss=MODE, serial ports in
# console-N.log and acks-N.log.
start_vm() {
        stop_vm
        BOOT=$((BOOT + 1))
        ACKS=$TMP/acks-$BOOT.log
        (
                vm_cgroup_enter "$CG"
                exec qemu-system-x86_64 \
                        -machine q35,accel=tcg -cpu max -smp 2 -m 512 \
                        -nodefaults -no-reboot -display none \
                        -serial "file:$TMP/console-$BOOT.log" -serial "file:$ACKS" \
                        -kernel "$KERNEL" -initrd "$BOOT_INITRD" \
                        -append "$APPEND mrkv.powerloss=$1" \
                        -drive "file=$TMP/root.img,format=raw,if=virtio,cache=writeback,aio=threads" \
                        -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
                        -monitor "unix:$TMP/monitor-$BOOT.sock,server=on,wait=off"
        ) </dev/null >>"$TMP/qemu.out" 2>&1 &
        QEMU=$!
        QEMU_PIDS+=("$QEMU")
        BOOT_START=$(now_ms)
        echo "boot $BOOT (mrkv.powerloss=$1): qemu $QEMU"
}

# lines TYPE: the complete lines of the current boot's report starting with TYPE.
lines() { tr -d '\r' 2>/dev/null <"$ACKS" | grep -E "^$1 .* \.\$|^$1 \.\$" || true; }

# wait_acks N: polls until the boot reported LOADED and N puts, or fails.
wait_acks() {
        local deadline=$(($(now_ms) + BOOT_WAIT * 1000))
        until [ "$(lines LOADED | wc -l)" -gt 0 ] && [ "$(lines ACK | wc -l)" -ge "$1" ]; do
                alive "$QEMU" || { echo "FAIL: qemu exited early"; return 1; }
                [ "$(lines ERROR | wc -l)" -eq 0 ] || { lines ERROR; echo "FAIL: the guest reported an error"; return 1; }
                [ "$(now_ms)" -lt $deadline ] || { echo "FAIL: no LOADED and $1 puts within $BOOT_WAIT s"; return 1; }
                sleep 0.05
        done
}

# power_loss DELAY_MS: SIGKILL to qemu, DELAY_MS from now; sets STATS to the disk's
# "WRITES FLUSHES" just before.
power_loss() {
        local until=$(($(now_ms) + $1))
        while [ "$(now_ms)" -lt $until ]; do
                alive "$QEMU" || { echo "FAIL: qemu exited before its kill"; return 1; }
                sleep 0.01
        done
        STATS=$(vm_qemu_disk_stats "$TMP/monitor-$BOOT.sock")
        stop_vm
        echo "qemu killed $(($(now_ms) - BOOT_START)) ms after its start"
}

# check_state: the current boot's STATE lines against what was acknowledged: every key
# at the version acknowledged last or later, at least the version it had at the last
# boot, with the value put at that version.
check_state() {
        local key v ok bad=0 n=0 cache
        cache=$(lines CACHE)
        [ "$cache" = "CACHE write back ." ] || { echo "FAIL: the guest's disk cache: '$cache', not write back"; bad=1; }
        while read -r _ key v ok _; do
                n=$((n + 1))
                if [ "$v" -lt "${ACKED[$key]:-0}" ]; then
                        echo "FAIL: $key is at version $v, but version ${ACKED[$key]} was acknowledged"
                        bad=1
                fi
                if [ "$v" -lt "${SEEN[$key]:-0}" ]; then
                        echo "FAIL: $key is at version $v, but the boot before started with version ${SEEN[$key]}"
                        bad=1
                fi
                [ "$ok" = ok ] || { echo "FAIL: $key at version $v has another value than the one put at it"; bad=1; }
                SEEN[$key]=$v
        done < <(lines STATE)
        [ $n -eq $KEYS ] || { echo "FAIL: $n keys reported, expected $KEYS"; bad=1; }
        echo "state: $(lines STATE | awk '{ printf "%s=%s ", $2, $3 }')"
        return $bad
}

# count_acks FILE: the ACK lines of an earlier boot still hold in SEEN (the state the
# current boot started with): prints "HELD TOTAL".
count_acks() {
        local held=0 total=0 key v
        while read -r _ key v _; do
                total=$((total + 1))
                [ "${SEEN[$key]:-0}" -lt "$v" ] || held=$((held + 1))
        done < <(tr -d '\r' <"$1" | grep -E '^ACK .* \.$' || true)
        echo "$held $total"
}

# check_previous: the puts the boot before acknowledged are all in the state this one
# started with. Counts them in CHECKED, or the lost ones of the control in CONTROL_LOST.
check_previous() {
        local held total
        [ -n "$PREV_ACKS" ] || return 0
        read -r held total < <(count_acks "$PREV_ACKS")
        if [ "$PREV_MODE" = none ]; then
                CONTROL_LOST=$((total - held))
                echo "the control's $total puts acknowledged under --sync=none: $CONTROL_LOST lost"
                return 0
        fi
        echo "boot $((BOOT - 1))'s $total acknowledged puts: $held there"
        CHECKED=$((CHECKED + held))
        [ "$held" -eq "$total" ] || { echo "FAIL: $((total - held)) acknowledged puts lost"; return 1; }
}

# boot MODE: boots with mrkv.powerloss=MODE, checks the state it starts with, then:
#   always  puts, and a power loss at a random moment after the first acknowledged one
#   none    the control: puts under --sync=none, a power loss once CONTROL_ACKS were
#           acknowledged
#   check   the VM powers off; some of the control's puts must have been lost
boot() {
        local mode=$1 bad=0 delay key v n deadline rc=0
        start_vm "$mode"
        wait_acks 0 || return 1
        # --sync=none may lose any put of its boot: after it, only the values count.
        [ "$PREV_MODE" != none ] || SEEN=()
        check_state || bad=1
        check_previous || bad=1
        PREV_ACKS=$ACKS
        PREV_MODE=$mode
        case $mode in
        always)
                wait_acks 1 || return 1
                # Drawn from the seed and the boot's number, the same in every run
                # with that seed (bash's RANDOM gave nearly equal delays in a row).
                delay=$((0x$(echo "$SEED $BOOT" | sha256sum | cut -c1-8) % (KILL_MAX_MS + 1)))
                echo "power loss $delay ms after the first acknowledged put"
                power_loss "$delay" || return 1
                while read -r _ key v _; do
                        [ "${ACKED[$key]:-0}" -ge "$v" ] || ACKED[$key]=$v
                done < <(lines ACK)
                n=$(lines ACK | wc -l)
                TOTAL_ACKS=$((TOTAL_ACKS + n))
                BOOT_SUMMARY+=("boot $BOOT: $n puts acknowledged; the disk wrote ${STATS% *} times and flushed ${STATS#* } times; power loss $delay ms after the first put")
                echo "$n puts acknowledged before the power loss; disk writes and flushes: $STATS"
                ;;
        none)
                wait_acks $CONTROL_ACKS || return 1
                power_loss 0 || return 1
                CONTROL_TOTAL=$(lines ACK | wc -l)
                CONTROL_STATS=$STATS
                echo "$CONTROL_TOTAL puts acknowledged under --sync=none before the power loss; disk writes and flushes: $STATS"
                ;;
        check)
                deadline=$(($(now_ms) + BOOT_WAIT * 1000))
                while alive "$QEMU"; do
                        [ "$(now_ms)" -lt $deadline ] || { echo "FAIL: the VM did not power off"; return 1; }
                        sleep 0.1
                done
                wait "$QEMU" || rc=$?
                QEMU=
                [ $rc -eq 1 ] || { echo "FAIL: qemu exited with $rc, not 1 (status 0 through isa-debug-exit)"; bad=1; }
                if [ "$CONTROL_LOST" -eq 0 ]; then
                        echo "FAIL: no put acknowledged under --sync=none was lost: the kill kept the guest's page cache"
                        bad=1
                fi
                ;;
        esac
        ERRORS=$((ERRORS + $(lines ERROR | wc -l)))
        return $bad
}

# Each boot's serial console and report go to the log after its step.
log_boot() {
        log "=== boot $BOOT: console"
        tr -d '\r' 2>/dev/null <"$TMP/console-$BOOT.log" >>"$LOG"
        log "=== boot $BOOT: report"
        tr -d '\r' 2>/dev/null <"$ACKS" | grep -v '^ACK ' >>"$LOG"
        if [ -s "$TMP/qemu.out" ]; then
                log "=== qemu's output"
                cat "$TMP/qemu.out" >>"$LOG"
                : >"$TMP/qemu.out"
        fi
}

step "build the .debs (packaging/build-deb, nocheck)" vm_build_debs "$TMP/debs" || exit 1
step "root file system with the packages' dependencies (mkrootfs.sh), a copy for the image" \
        vm_rootfs "$TMP/debs" "$TMP/root" || exit 1
step "dpkg -i into the root file system (nspawn, not booted)" vm_preinstall "$CG" || exit 1
step "mrkv-kvserver has --sync= (keeps its state on disk)" check_durable || exit 1
[ -z "${VM_SKIPPED:-}" ] || exit 0
step "powerloss-client, built against the packaged libmrkv" build_client || exit 1
step "a small initramfs (mini-init.c, the modules for virtio-blk and ext4)" make_initramfs || exit 1
step "ext4 image of it (mke2fs -d), init=powerloss-guest.sh" make_image || exit 1

echo "# seed $SEED: MRKV_POWERLOSS_SEED=$SEED repeats the kill moments"
step "boot 1, --sync=always: puts until qemu is killed (SIGKILL) at a random moment" boot always || true
log_boot
for i in $(seq 2 "$KILLS"); do
        step "boot $i, --sync=always: every put acknowledged before the power loss is there; puts until the next" \
                boot always || true
        log_boot
done
step "boot $((KILLS + 1)), --sync=none: every put acknowledged before the power loss is there; $CONTROL_ACKS puts until the next" \
        boot none || true
log_boot
step "boot $((KILLS + 2)): some puts acknowledged under --sync=none were lost (the kill loses the page cache); power off" \
        boot check || true
log_boot
for s in "${BOOT_SUMMARY[@]}"; do
        echo "# $s"
done
echo "# $KILLS kills under --sync=always: $TOTAL_ACKS puts acknowledged, $CHECKED of them found after a power loss"
echo "# control, --sync=none: $CONTROL_LOST of $CONTROL_TOTAL acknowledged puts lost, as expected (the disk wrote ${CONTROL_STATS% *} times and flushed ${CONTROL_STATS#* } times)"
if [ "$ERRORS" -ne 0 ]; then
        tap not-ok "the clients' puts: $ERRORS failed (ERROR lines in the log)"
else
        tap ok "the clients' puts: none failed"
fi
