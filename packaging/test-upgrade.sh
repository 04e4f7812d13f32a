#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# packaging/test-upgrade.sh DEBDIR
#
# The maintainer scripts under a real systemd: boots a minimal Debian (the cached root
# file system of tests/vm/mkrootfs.sh, under a throwaway overlay) with systemd-nspawn
# and runs upgrade-guest.sh in it, which installs the packages of DEBDIR (made by
# build-deb), upgrades them to a build of the same tree with a higher version
# (build-deb --revision-suffix +upgrade1), removes and purges them. About 25 s plus a
# --nocheck build; a first run also builds the root file system (about 70 s).
#
# As docs/testing.md explains (a real systemd when PID 1 is not systemd), the container
# runs in a cgroup subtree of its own and in a private mount namespace with a tmpfs on /run/systemd: neither its
# systemd nor nspawn touch the host's processes or /run. Needs root, systemd-nspawn,
# unshare and debootstrap; exits 77 (skip) without them.
set -euo pipefail

debdir=${1:?Usage: $0 DEBDIR}
here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: needs root"
        exit 77
fi
for tool in systemd-nspawn unshare debootstrap timeout dpkg-deb; do
        command -v $tool >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
mkrootfs=$here/../tests/vm/mkrootfs.sh
[ -x "$mkrootfs" ] || { echo "SKIP: $mkrootfs is missing"; exit 77; }
debdir=$(cd "$debdir" && pwd)
for p in mrkv libmrkv0; do
        ls "$debdir/${p}"_*.deb >/dev/null 2>&1 || { echo "no ${p}_*.deb in $debdir"; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrkv-upgrade.XXXXXX")
hier=()
cg=
cleanup() {
        local h procs
        # Whatever the container left (a time-out): killed, then the cgroups removed.
        for h in "${hier[@]}"; do
                procs=$(cat "/sys/fs/cgroup/$h$cg/cgroup.procs" 2>/dev/null || true)
                [ -z "$procs" ] || kill -9 $procs 2>/dev/null || true
        done
        for h in "${hier[@]}"; do
                for _ in $(seq 50); do
                        find "/sys/fs/cgroup/$h$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
                        [ -d "/sys/fs/cgroup/$h$cg" ] || break
                        sleep 0.1
                done
        done
        rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

echo "== the upgrade: build-deb --nocheck --revision-suffix +upgrade1"
"$here/build-deb" --nocheck --revision-suffix +upgrade1 "$tmp/v2" > "$tmp/build-v2.log" 2>&1 ||
        { tail -n 30 "$tmp/build-v2.log"; echo "FAIL: building the upgrade"; exit 1; }

# The root file system holds what the packages depend on: there is no network inside.
mapfile -t deps < <(for f in "$debdir"/mrkv_*.deb "$debdir"/libmrkv0_*.deb; do
                dpkg-deb -f "$f" Pre-Depends Depends
        done | sed 's/^[A-Za-z-]*: //' | tr ',' '\n' |
        sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/[[:space:]]//g' |
        grep -vxE 'mrkv|libmrkv0|' | sort -u)
echo "== root file system with ${deps[*]}"
rootfs=$("$mkrootfs" "${deps[@]}")
echo "$rootfs"

mkdir -p "$tmp"/{upper,work,root,out}
base=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
[ -n "$base" ] || base=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
cg=${base%/}/mrkv-upgrade-$$
for h in systemd unified pids cpu memory; do
        if [ -e "/sys/fs/cgroup/$h/cgroup.procs" ]; then
                mkdir -p "/sys/fs/cgroup/$h$cg"
                hier+=("$h")
        fi
done

echo "== systemd-nspawn -b, upgrade-guest.sh"
rc=0
(
        for h in "${hier[@]}"; do
                echo $BASHPID > "/sys/fs/cgroup/$h$cg/cgroup.procs"
        done
        exec unshare --mount --propagation private bash -euc '
                tmp=$1 rootfs=$2 debdir=$3 here=$4
                mount -t tmpfs -o mode=755 mrkv-upgrade /run/systemd
                mkdir /run/systemd/inaccessible
                cd /run/systemd/inaccessible
                touch reg && mkdir dir && mkfifo fifo && mknod chr c 0 0 && mknod blk b 0 0
                chmod 0000 reg dir fifo chr blk
                cd /
                root=$tmp/root
                mount -t overlay mrkv-upgrade -o "lowerdir=$rootfs,upperdir=$tmp/upper,workdir=$tmp/work" "$root"
                mkdir -p "$root/debs/v1" "$root/debs/v2" "$root/out"
                cp "$debdir"/*.deb "$root/debs/v1/"
                cp "$tmp"/v2/*.deb "$root/debs/v2/"
                install -m 0755 "$here/upgrade-guest.sh" "$root/usr/local/bin/upgrade-guest.sh"
                printf "%s\n" "[Unit]" "Requires=dbus.socket basic.target" "After=dbus.socket basic.target" \
                        "SuccessAction=exit" "FailureAction=exit" "[Service]" "Type=oneshot" \
                        "ExecStart=/bin/sh -c \"/usr/local/bin/upgrade-guest.sh > /out/guest.log 2>&1\"" \
                        > "$root/etc/systemd/system/upgrade-test.service"
                exec timeout 300 systemd-nspawn -q -D "$root" --register=no --keep-unit --console=pipe \
                        --bind="$tmp/out:/out" -b -- systemd.unit=upgrade-test.service </dev/null
        ' upgrade "$tmp" "$rootfs" "$debdir" "$here"
) > "$tmp/nspawn.log" 2>&1 || rc=$?

cat "$tmp/out/guest.log" 2>/dev/null || true
if [ $rc -ne 0 ] || ! grep -qx UPGRADE-TEST-OK "$tmp/out/guest.log" 2>/dev/null; then
        cat "$tmp/nspawn.log"
        echo "FAIL: the upgrade test (systemd-nspawn exited with $rc)"
        exit 1
fi
echo "OK: install, upgrade, remove and purge"
