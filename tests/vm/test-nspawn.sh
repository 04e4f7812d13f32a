#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-nspawn.sh: the Debian package under a real systemd, in a container.
#
# Builds the .debs (packaging/build-deb, or takes them from $MRKV_VM_DEBS), boots a
# copy of a minimal Debian (mkrootfs.sh) with `systemd-nspawn -b`, and as root inside
# it, through nsenter, installs the packages and uses them as an administrator would
# (guest-checks.sh: install, kv, mapreduce, stop, reinstall, upgrade-job, remove, purge, journal). Then
# powers the container off and checks that nothing is left behind.
#
# Output: TAP on stdout, one line per step with its duration; everything else (build,
# each step's trace, the container's console and journal) in $MRKV_VM_LOGDIR/vm-nspawn.log
# (default: the current directory), whose path is printed first. Exit status: 0 when
# every step passed, 1 otherwise, 77 (skip) when not root or a tool is missing.
#
# Per docs/testing.md (a real systemd when PID 1 is not systemd): the container runs in a cgroup subtree of its own
# (--keep-unit, --register=no: no machined here), and the whole test in a private mount
# namespace with a tmpfs on /run/systemd, so neither the container's systemd nor nspawn
# touches the host's processes or /run. The clean-up runs on every exit, TERM and INT
# included; a run killed with KILL is swept by the next one.
set -euo pipefail

NAME=vm-nspawn
. "$(dirname "$0")/lib-vm.sh"

vm_require_root systemd-nspawn nsenter unshare debootstrap dpkg-deb flock pgrep timeout
if [ -z "${MRKV_VM_DEBS:-}" ]; then
        command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null ||
                skip "dpkg-buildpackage or dh not found (dpkg-dev, debhelper)"
fi
[ ${#CG_HIER[@]} -gt 0 ] || skip "no cgroup file system"
vm_enter_namespace "$@"

BOOT_WAIT=${MRKV_VM_BOOT_WAIT:-120}
STEP_TIMEOUT=${MRKV_VM_STEP_TIMEOUT:-600}

TMP=
CG=
CG_GUEST=
NSPAWN=
NSPAWN_PID=
LEADER=
signalled=

# A signal may come while a step's output goes to its file: TAP goes to the saved fds.
exec 3>&1 4>&2

cleanup() {
        local st=$? secs=60
        set +e
        trap - EXIT INT TERM
        exec 1>&3 2>&4
        # Commands in the container first: one stopped by the container's shutdown
        # (nsenter follows its child into a SIGSTOP) would hold the shutdown up.
        vm_cgroup_remove "$CG_GUEST" >>"$LOG" 2>&1
        # After TERM or INT, be quick: meson sends KILL half a second after its TERM.
        [ -z "$signalled" ] || secs=0
        if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null && [ $secs -gt 0 ]; then
                # nspawn passes TERM on as a shutdown request to the container's systemd.
                log "cleanup: stopping the container (nspawn $NSPAWN)"
                kill -TERM "$NSPAWN" 2>/dev/null
                for _ in $(seq 1 $((secs * 10))); do
                        kill -0 "$NSPAWN" 2>/dev/null || break
                        sleep 0.1
                done
        fi
        vm_cgroup_remove "$CG" >>"$LOG" 2>&1
        [ -z "$NSPAWN" ] || wait "$NSPAWN" 2>/dev/null
        [ ! -s "$TMP/console.log" ] || { log "=== container console"; cat "$TMP/console.log" >>"$LOG"; }
        vm_finish "$st" "$NSPAWN_PID" "$LEADER"
}
trap cleanup EXIT
trap 'signalled=130; exit' INT
trap 'signalled=143; exit' TERM

vm_remove_stale
vm_log_start
TMP=$(mktemp -d "$TMPROOT/mrkv-vm-$$.XXXXXX")
# The container in one cgroup, the commands we run in it (through nsenter, which
# leaves them in our cgroup) in another, so that the clean-up finds every process.
vm_cgroup_create CG "mrkv-vm-$$"
vm_cgroup_create CG_GUEST "mrkv-vm-$$-guest"
log "cgroups: $CG, $CG_GUEST (${CG_HIER[*]}), temporary directory: $TMP"

# guest SECONDS CMD...: CMD as root inside the container, with a clean environment.
# In the background, so that a TERM runs the clean-up at once rather than after CMD.
guest() {
        local secs=$1 rc=0
        shift
        (
                vm_cgroup_enter "$CG_GUEST"
                exec timeout -k 5 "$secs" nsenter -t "$LEADER" -a \
                        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
                        HOME=/root LANG=C.UTF-8 TERM=dumb "$@"
        ) &
        wait $! || rc=$?
        # nsenter passes no signal on: after a time-out, what it ran still runs.
        vm_cgroup_kill "$CG_GUEST"
        return $rc
}

booted() {
        local s
        s=$(guest 10 systemctl is-system-running 2>/dev/null) || true
        [ "$s" = running ] || [ "$s" = degraded ]
}

# The container's PID 1: the child of nspawn that runs systemd.
find_leader() {
        local p
        for p in $(pgrep -P "$NSPAWN"); do
                if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ]; then
                        LEADER=$p
                        return 0
                fi
        done
        return 1
}

do_boot() {
        local deadline
        vm_private_run_systemd || return 1
        (
                vm_cgroup_enter "$CG"
                exec systemd-nspawn -q -D "$TMP/root" -M mrkv-vm --register=no --keep-unit \
                        --private-network --console=pipe -b
        ) </dev/null >"$TMP/console.log" 2>&1 &
        NSPAWN=$!
        NSPAWN_PID=$NSPAWN
        echo "nspawn: PID $NSPAWN"
        deadline=$(($(date +%s) + BOOT_WAIT))
        until find_leader && booted; do
                if ! kill -0 "$NSPAWN" 2>/dev/null; then
                        echo "FAIL: systemd-nspawn exited: $(cat "$TMP/console.log")"
                        return 1
                fi
                if [ "$(date +%s)" -ge "$deadline" ]; then
                        echo "FAIL: the container did not reach running within $BOOT_WAIT s (state: $(guest 10 systemctl is-system-running 2>&1))"
                        [ -z "$LEADER" ] || guest 10 systemctl list-jobs --no-pager
                        return 1
                fi
                sleep 0.1
        done
        echo "container PID 1: $LEADER, $(guest 10 systemctl is-system-running)"
        guest 10 systemctl --failed --no-pager --no-legend
        guest 10 systemctl --version | head -n 1
}

do_guest_step() {
        local rc=0
        guest "$STEP_TIMEOUT" /usr/local/lib/mrkv-vm/guest-checks.sh step "$1" || rc=$?
        case $rc in
        124 | 137) echo "FAIL: the step did not finish within $STEP_TIMEOUT s" ;;
        esac
        return $rc
}

do_poweroff() {
        local rc=0
        guest 10 systemctl poweroff --no-block || return 1
        for _ in $(seq 1 $((BOOT_WAIT * 10))); do
                kill -0 "$NSPAWN" 2>/dev/null || break
                sleep 0.1
        done
        if kill -0 "$NSPAWN" 2>/dev/null; then
                echo "FAIL: the container did not power off within $BOOT_WAIT s"
                return 1
        fi
        wait "$NSPAWN" || rc=$?
        NSPAWN=
        journalctl -D "$TMP/root/var/log/journal" --no-pager -o short-monotonic >"$TMP/journal.log" 2>&1
        echo "container journal: $(wc -l <"$TMP/journal.log") lines"
        cat "$TMP/journal.log"
        [ $rc -eq 0 ] || { echo "FAIL: systemd-nspawn exited with $rc"; return 1; }
}

step "build the .debs (packaging/build-deb, nocheck)" vm_build_debs "$TMP/debs" || exit 1
step "root file system with the packages' dependencies (mkrootfs.sh), a copy to boot" \
        vm_rootfs "$TMP/debs" "$TMP/root" || exit 1
step "systemd-nspawn -b: the container's systemd is running" do_boot || exit 1
for s in install kv mapreduce stop reinstall upgrade-job remove purge journal; do
        step "$(vm_guest_step_desc "$s")" do_guest_step "$s" || true
done
step "systemctl poweroff: the container shuts down, nspawn exits 0" do_poweroff || true
