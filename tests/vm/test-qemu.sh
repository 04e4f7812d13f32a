#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-qemu.sh: the Debian package under a real systemd, in a true VM (qemu, TCG).
#
# Builds the .debs (packaging/build-deb, or takes them from $MRKV_VM_DEBS), installs
# them into a copy of a minimal Debian (mkrootfs.sh) before its first boot (dpkg -i in
# a non-booted systemd-nspawn, i.e. a chroot with /proc and /dev), makes an ext4 image
# of it (mke2fs -d) and boots it with the host's Debian kernel. A unit inside runs
# guest-checks.sh (installed, kv, mapreduce, stop, reinstall, remove, purge, journal)
# and prints TAP on the serial console; the exit status comes back through
# isa-debug-exit.
#
# Output: TAP on stdout (the guest's steps renumbered after ours); the build, the
# serial console and everything else in $MRKV_VM_LOGDIR/vm-qemu.log (default: the
# current directory). Exit status: 0 when every step passed, 1 otherwise, 77 (skip)
# when not root or a tool or the kernel is missing.
#
# Kernel: $MRKV_VM_KERNEL and $MRKV_VM_INITRD, else the newest /boot/vmlinuz-* and its
# initrd (package linux-image-amd64; the Debian initrd has virtio_blk and ext4).
set -euo pipefail

NAME=vm-qemu
. "$(dirname "$0")/lib-vm.sh"

vm_require_root qemu-system-x86_64 mke2fs systemd-nspawn unshare debootstrap dpkg-deb flock timeout
if [ -z "${MRKV_VM_DEBS:-}" ]; then
        command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null ||
                skip "dpkg-buildpackage or dh not found (dpkg-dev, debhelper)"
fi
[ ${#CG_HIER[@]} -gt 0 ] || skip "no cgroup file system"
vm_qemu_kernel
vm_enter_namespace "$@"

QEMU_TIMEOUT=${MRKV_VM_QEMU_TIMEOUT:-900}
GUEST_STEPS=(installed kv mapreduce stop reinstall remove purge journal)

TMP=
CG=
QEMU=
QEMU_PID=
signalled=

exec 3>&1 4>&2

cleanup() {
        local st=$?
        set +e
        trap - EXIT INT TERM
        exec 1>&3 2>&4
        if [ -n "$QEMU" ] && kill -0 "$QEMU" 2>/dev/null; then
                log "cleanup: stopping qemu ($QEMU)"
                kill -TERM "$QEMU" 2>/dev/null
                for _ in $(seq 1 20); do
                        kill -0 "$QEMU" 2>/dev/null || break
                        sleep 0.1
                done
                kill -KILL "$QEMU" 2>/dev/null
                wait "$QEMU" 2>/dev/null
        fi
        vm_finish "$st" "$QEMU_PID"
}
trap cleanup EXIT
trap 'signalled=130; exit' INT
trap 'signalled=143; exit' TERM

vm_remove_stale
vm_log_start
TMP=$(mktemp -d "$TMPROOT/mrkv-vm-$$.XXXXXX")
vm_cgroup_create CG "mrkv-vm-$$"
log "cgroup: $CG (${CG_HIER[*]}), temporary directory: $TMP, kernel: $KERNEL, initrd: $INITRD"

do_image() {
        local r=$TMP/root
        echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$r/etc/fstab"
        cat >"$r/usr/local/lib/mrkv-vm/run-in-vm.sh" <<'EOF'
#!/bin/sh
# The test, its TAP on the serial console, its exit status to qemu through
# isa-debug-exit (port 0xf4): qemu exits with (status << 1) | 1.
exec >/dev/ttyS0 2>&1
echo "MRKV-VM: start $(uname -r), $(systemctl --version | head -n 1), $(cut -d' ' -f1 /proc/uptime) s after boot"
/usr/local/lib/mrkv-vm/guest-checks.sh tap "$@"
rc=$?
if [ $rc -ne 0 ]; then
        echo "MRKV-VM: --- journal of the mrkv units"
        journalctl -b --no-pager -o short-monotonic -u 'mrkv-*' | tail -n 100
fi
echo "MRKV-VM: rc=$rc, $(cut -d' ' -f1 /proc/uptime) s after boot"
sync
printf "\\$(printf %o $rc)" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
exit $rc
EOF
        chmod 0755 "$r/usr/local/lib/mrkv-vm/run-in-vm.sh"
        cat >"$r/etc/systemd/system/vmtest.service" <<EOF
[Unit]
Description=mrkv VM test
Requires=dbus.socket basic.target
After=dbus.socket basic.target sockets.target
# Should the write to isa-debug-exit not end qemu, power off all the same.
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/usr/local/lib/mrkv-vm/run-in-vm.sh ${GUEST_STEPS[*]}
TimeoutStartSec=infinity
EOF
        # Room for the packages' files, job outputs and the journal.
        truncate -s 2G "$TMP/root.img"
        mke2fs -q -t ext4 -L mrkv-vm -d "$r" "$TMP/root.img" || { echo "FAIL: mke2fs -d exited with $?"; return 1; }
        echo "image: $(du -h "$TMP/root.img" | cut -f1) used of 2G"
}

do_qemu() {
        local rc=0
        # In our cgroup: should this script be killed, the next run finds qemu there.
        (
                vm_cgroup_enter "$CG"
                exec timeout -k 10 "$QEMU_TIMEOUT" qemu-system-x86_64 \
                        -machine q35,accel=tcg -cpu max -smp 2 -m 1024 \
                        -nodefaults -no-reboot -display none \
                        -serial "file:$TMP/serial.log" \
                        -kernel "$KERNEL" -initrd "$INITRD" \
                        -append "console=ttyS0 root=/dev/vda rw quiet panic=-1 systemd.unit=vmtest.service systemd.show_status=0" \
                        -drive "file=$TMP/root.img,format=raw,if=virtio" \
                        -device isa-debug-exit,iobase=0xf4,iosize=0x04
        ) </dev/null &
        QEMU=$!
        QEMU_PID=$QEMU
        wait "$QEMU" || rc=$?
        QEMU=
        tr -d '\r' <"$TMP/serial.log" >"$TMP/console.log"
        echo "qemu exited with $rc"
        echo "=== serial console"
        cat "$TMP/console.log"
        QEMU_RC=$rc
        [ $rc -ne 124 ] || { echo "FAIL: the VM did not finish within $QEMU_TIMEOUT s"; return 1; }
        grep -q '^MRKV-VM: rc=' "$TMP/console.log" || { echo "FAIL: the test in the VM did not finish"; return 1; }
}

# Reports the guest's TAP lines as ours, and a "not ok" for each step that gave none.
report_guest() {
        local line n=0 diag=$TMP/diag result=
        : >"$diag"
        flush() {
                [ -n "$result" ] || return 0
                case $result in
                "ok "*) tap ok "in the VM: ${result#ok * - }" ;;
                *) tap not-ok "in the VM: ${result#not ok * - }" "$diag" ;;
                esac
                result=
                : >"$diag"
        }
        while IFS= read -r line; do
                case $line in
                "ok "* | "not ok "*)
                        flush
                        n=$((n + 1))
                        result=$line
                        ;;
                "# "*) echo "${line#\# }" >>"$diag" ;;
                esac
        done < <(sed -n 's/^MRKV-VM: //p' "$TMP/console.log" 2>/dev/null)
        flush
        while [ $n -lt ${#GUEST_STEPS[@]} ]; do
                n=$((n + 1))
                echo "FAIL: no result: the VM stopped before this step" >"$diag"
                tap not-ok "in the VM: $(vm_guest_step_desc "${GUEST_STEPS[$((n - 1))]}")" "$diag"
        done
}

check_exit() {
        local guest_rc
        grep '^MRKV-VM: rc=' "$TMP/console.log" || true
        if [ $((QEMU_RC % 2)) -eq 1 ]; then
                guest_rc=$(((QEMU_RC - 1) / 2))
                echo "qemu exited with $QEMU_RC: the guest wrote $guest_rc to isa-debug-exit"
                [ $guest_rc -eq 0 ] || { echo "FAIL: the guest's test exited with $guest_rc"; return 1; }
        else
                echo "FAIL: qemu exited with $QEMU_RC: no status through isa-debug-exit"
                return 1
        fi
}

QEMU_RC=
step "build the .debs (packaging/build-deb, nocheck)" vm_build_debs "$TMP/debs" || exit 1
step "root file system with the packages' dependencies (mkrootfs.sh), a copy for the image" \
        vm_rootfs "$TMP/debs" "$TMP/root" || exit 1
step "dpkg -i into the root file system before its first boot (nspawn, not booted)" vm_preinstall "$CG" || exit 1
step "ext4 image of it (mke2fs -d), with a unit that runs the checks at boot" do_image || exit 1
step "qemu (TCG, $(basename "$KERNEL")) boots it, the checks run, the VM powers off" do_qemu || true
report_guest
step "the guest's exit status through isa-debug-exit is 0" check_exit || true
