#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# mkrootfs.sh [PACKAGE...]
#
# Prints the path of a minimal Debian root file system (debootstrap --variant=minbase)
# with systemd as init, D-Bus and PACKAGE..., building it first unless it is cached.
# The VM tests boot copies of it: the cached tree itself is never booted or changed.
#
#  - Cache: $MRKV_VM_CACHE (default /var/cache/mrkv-vm), outside the source tree.
#    Each tree is named after a hash of what went into it (suite, mirror, package
#    list, this script), so a different list makes another tree and an unchanged one
#    is reused. `rm -rf /var/cache/mrkv-vm` at any time no test runs frees it all.
#  - Atomic: built in rootfs-HASH.tmp-PID and renamed into place at the end, under a
#    lock, so an interrupted run never leaves a half tree under the final name, and two
#    runs at once build it once. Leftovers of killed runs are removed by the next one.
#  - debootstrap runs in a private mount namespace: the /proc and /sys it mounts in
#    the target vanish with it, even when it is killed.
#  - Mirror and suite: the host's (first deb.debian.org-style `deb` source in
#    /etc/apt/sources.list{,.d/*}, VERSION_CODENAME of /etc/os-release), or
#    $MRKV_VM_MIRROR and $MRKV_VM_SUITE.
#
# Needs root and debootstrap. Exit status 77 when either is missing, so that callers
# run from meson can skip.
set -euo pipefail

# What every VM test needs besides the packages under test: systemd as PID 1, the
# system bus, udev (qemu: /dev/vda, the serial port), NSS for the units' User=.
BASE_PACKAGES=(systemd systemd-sysv dbus udev libnss-systemd libsystemd0 libjson-c5 libisal2)

log() { echo "mkrootfs: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
        log "SKIP: needs root"
        exit 77
fi
for tool in debootstrap unshare flock sha256sum; do
        if ! command -v "$tool" >/dev/null; then
                log "SKIP: $tool not found (apt-get install debootstrap)"
                exit 77
        fi
done

# host_mirror: the URI of the first source that serves SUITE's main component.
host_mirror() {
        local f uri
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
                [ -r "$f" ] || continue
                uri=$(awk -v s="$SUITE" '$1 == "deb" && $0 !~ /\[/ && $3 == s { print $2; exit }
                                         $1 == "deb" && $2 ~ /^\[/ { for (i = 3; i <= NF; i++) if ($i !~ /\]$/ && $(i+1) == s) { print $(i); exit } }' "$f")
                [ -z "$uri" ] || { echo "$uri"; return; }
        done
        for f in /etc/apt/sources.list.d/*.sources; do
                [ -r "$f" ] || continue
                # deb822: a stanza with Types: deb and SUITE in Suites:.
                uri=$(awk -v s="$SUITE" '
                        function flush() { if (deb && suite && uri != "") { print uri; found = 1; exit } }
                        /^[ \t]*$/ { flush(); deb = suite = 0; uri = ""; next }
                        tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
                        tolower($1) == "uris:" { uri = $2 }
                        tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) suite = 1 }
                        END { if (!found) flush() }' "$f")
                [ -z "$uri" ] || { echo "$uri"; return; }
        done
        echo http://deb.debian.org/debian
}

SUITE=${MRKV_VM_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}
MIRROR=${MRKV_VM_MIRROR:-$(host_mirror)}
CACHE=${MRKV_VM_CACHE:-/var/cache/mrkv-vm}

mapfile -t PACKAGES < <(printf '%s\n' "${BASE_PACKAGES[@]}" "$@" | sort -u)
HASH=$( { echo "$SUITE $MIRROR ${PACKAGES[*]}"; cat "$0"; } | sha256sum | cut -c1-16)
FINAL=$CACHE/rootfs-$HASH

mkdir -p "$CACHE"
exec 9>"$FINAL.lock"
flock 9

# A killed run's half tree (and the log of a failed one): its PID is gone, or a zombie.
# No mounts can be left in it (private namespace), and --one-file-system keeps rm
# inside it regardless.
for d in "$CACHE"/rootfs-*.tmp-*; do
        [ -e "$d" ] || continue
        pid=${d##*.tmp-}
        pid=${pid%.log}
        case $(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) in
        "" | Z) ;;
        *) continue ;;
        esac
        log "removing $d, left by an interrupted run"
        rm -rf --one-file-system "$d"
done

if [ ! -d "$FINAL" ]; then
        TMP=$FINAL.tmp-$$
        trap 'rm -rf --one-file-system "$TMP"' EXIT
        log "building $FINAL: debootstrap $SUITE from $MIRROR with ${PACKAGES[*]}"
        start=$(date +%s)
        mkdir -p "$CACHE/debs"
        include=$(IFS=,; echo "${PACKAGES[*]}")
        if ! unshare --mount --propagation private \
                debootstrap --variant=minbase --components=main --include="$include" \
                --cache-dir="$CACHE/debs" "$SUITE" "$TMP" "$MIRROR" >"$TMP.log" 2>&1; then
                tail -n 30 "$TMP.log" >&2
                log "debootstrap failed; whole log: $TMP.log"
                exit 1
        fi
        rm -f "$TMP.log"
        echo mrkv-vm >"$TMP/etc/hostname"
        # A persistent journal: the host reads it with journalctl -D after a run.
        mkdir -p "$TMP/var/log/journal"
        rm -f "$TMP"/var/cache/apt/archives/*.deb "$TMP"/var/cache/apt/*.bin
        printf '%s\n' "suite=$SUITE" "mirror=$MIRROR" "packages=${PACKAGES[*]}" >"$FINAL.info"
        mv -T "$TMP" "$FINAL"
        trap - EXIT
        log "built in $(($(date +%s) - start)) s, $(du -sh --one-file-system "$FINAL" | cut -f1)"
fi
# Marks the tree as used: trees no run used for a week (another package list, an
# older version of this script) are removed, unless being built.
touch "$FINAL.info"
for info in "$CACHE"/rootfs-*.info; do
        [ -e "$info" ] && [ -n "$(find "$info" -mtime +7)" ] || continue
        old=${info%.info}
        (
                flock -n 9 || exit 0
                log "removing $old, unused for a week"
                rm -rf --one-file-system "$old" "$info"
        ) 9>"$old.lock"
done
echo "$FINAL"
