#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs the Debian packages mrkv needs, skipping those already there.
#
#   tools/deps.sh [GROUP...]      GROUP: build test package qemu all bench (default: all)
#
#   build    compile the default configuration and run the programs (tools/demo.sh);
#            Check is part of it: the default build has the tests and the corpus generator
#   test     build + what `meson test` needs short of the package suites: D-Bus, systemd's
#            tools, a user bus for the user-manager tests, groff for the man pages, the
#            reference Varlink certification suite (varlink-go)
#   package  test + packaging/build-deb (whose package build runs the tests) and the suite
#            vm: debhelper, lintian, debootstrap, systemd-nspawn
#   qemu     package + the suite vm-qemu: qemu, a Debian kernel, cpio (the slow part: about
#            three minutes on a fresh machine, most of it generating the initramfs)
#   all      everything above (tools/test.sh)
#   bench    build + what bench/ compares mrkv with and measures it by: Redis, etcd (its
#            server and etcdctl), GNU time; not in all: nothing in meson test needs them
set -euo pipefail

BUILD=(gcc meson ninja-build pkg-config libsystemd-dev libjson-c-dev zlib1g-dev libisal-dev check)
TEST=(python3 procps dbus dbus-daemon dbus-user-session systemd util-linux groff-base varlink-go)
PACKAGE=(debhelper dpkg-dev fakeroot lintian pkgconf debootstrap systemd-container e2fsprogs)
QEMU=(qemu-system-x86 linux-image-amd64 cpio)
BENCH=(python3 redis-server redis-tools etcd-server etcd-client time)

usage() { # EXIT-STATUS
    sed -n '3,19s/^# \{0,1\}//p' "$0" >&2
    exit "$1"
}

[ $# -gt 0 ] || set -- all
PACKAGES=()
for group in "$@"; do
    case $group in
    build) PACKAGES+=("${BUILD[@]}") ;;
    test) PACKAGES+=("${BUILD[@]}" "${TEST[@]}") ;;
    package) PACKAGES+=("${BUILD[@]}" "${TEST[@]}" "${PACKAGE[@]}") ;;
    qemu | all) PACKAGES+=("${BUILD[@]}" "${TEST[@]}" "${PACKAGE[@]}" "${QEMU[@]}") ;;
    bench) PACKAGES+=("${BUILD[@]}" "${BENCH[@]}") ;;
    -h | --help) usage 0 ;;
    *) echo "tools/deps.sh: unknown group '$group'" >&2; usage 2 ;;
    esac
done

missing=()
for p in "${PACKAGES[@]}"; do
    case " ${missing[*]} " in *" $p "*) continue ;; esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing: ${missing[*]}"
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
