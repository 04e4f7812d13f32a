#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs the Debian packages mrkv needs to build and test, skipping those already there.
set -euo pipefail

PACKAGES=(
    # build
    gcc meson ninja-build pkg-config libsystemd-dev libjson-c-dev
    # tests: Check, real D-Bus and systemd tools, man page checks, and the reference
    # implementation's Varlink certification suite (varlink-go-certification)
    check python3 procps dbus dbus-user-session systemd util-linux groff-base varlink-go
    # the package and its tests under a real systemd (suites vm, vm-qemu)
    debhelper dpkg-dev fakeroot lintian pkgconf debootstrap systemd-container
    qemu-system-x86 linux-image-amd64 e2fsprogs dbus-daemon
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing: ${missing[*]}"
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
