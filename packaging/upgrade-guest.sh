#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# upgrade-guest.sh: runs inside a booted Debian container (test-upgrade.sh), as root,
# with the packages to install first in /debs/v1 and their upgrade in /debs/v2.
# Checks what the maintainer scripts do under a real systemd: the user, the sockets
# (enabled, started, kept over an upgrade), the services and worker instances that run
# (restarted by the upgrade), removal (everything stopped) and purge (state removed).
# Prints UPGRADE-TEST-OK at the end.
set -euxo pipefail

fail() { echo "FAIL: $*"; exit 1; }
poll() { # SECONDS COMMAND...
        local deadline=$((SECONDS + $1))
        shift
        until "$@"; do
                [ $SECONDS -lt $deadline ] || return 1
                sleep 0.1
        done
}
prop() { systemctl show -p "$2" --value "$1"; }
services=(mrkv-kvserver.service mrkv-coordinator.service mrkv-worker@1.service mrkv-worker@2.service)
sockets=(mrkv-kvserver.socket mrkv-coordinator.socket)

# --- install -----------------------------------------------------------------------
dpkg -i /debs/v1/libmrkv0_*.deb /debs/v1/mrkv_*.deb
id mrkv
for s in "${sockets[@]}"; do
        [ "$(systemctl is-enabled "$s")" = enabled ] || fail "$s is not enabled"
        systemctl is-active --quiet "$s" || fail "$s is not started"
done
[ "$(stat -c '%U:%G %a' /run/mrkv/kv.sock)" = "root:mrkv 660" ] || fail "kv.sock: $(stat -c '%U:%G %a' /run/mrkv/kv.sock)"
# Services are enabled only through their sockets (Also=), the template not at all,
# and no unit of a user manager is.
[ "$(systemctl is-enabled mrkv-kvserver.service)" = indirect ] || fail "mrkv-kvserver.service enabled"
[ "$(systemctl is-enabled mrkv-coordinator.service)" = indirect ] || fail "mrkv-coordinator.service enabled"
[ "$(systemctl is-enabled mrkv-worker@1.service)" = disabled ] || fail "mrkv-worker@ enabled"
[ -z "$(find /etc/systemd/user -name 'mrkv-*' 2>/dev/null)" ] || fail "user units enabled"
[ "$(systemctl is-active mrkv-kvserver.service)" = inactive ] || fail "kvserver started without a client"

# --- the services work -------------------------------------------------------------
export MRKV_KV_ADDRESS=unix:/run/mrkv/kv.sock MRKV_COORDINATOR_ADDRESS=unix:/run/mrkv/coordinator.sock
mrkvctl put greeting hello
[ "$(mrkvctl get greeting)" = hello ] || fail "mrkvctl get"
[ "$(busctl get-property org.mrkv.KeyValue1 /org/mrkv/KeyValue1 org.mrkv.KeyValue1 Keys)" = "t 1" ] ||
        fail "kvserver's D-Bus status"
systemctl start mrkv-worker@1 mrkv-worker@2
poll 10 systemctl is-active --quiet mrkv-coordinator.service || fail "no worker activated the coordinator"
# Not under /tmp or /var/tmp: the services have PrivateTmp=yes.
mkdir -p /srv/in
cp /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/LGPL-2.1 /srv/in/
mrkvctl submit wc /srv/in/GPL-3 /srv/in/LGPL-2.1 --wait

# --- upgrade -----------------------------------------------------------------------
declare -A pid
for u in "${services[@]}"; do
        pid[$u]=$(prop "$u" MainPID)
done
kv_socket=$(prop mrkv-kvserver.socket InvocationID)
co_socket=$(prop mrkv-coordinator.socket InvocationID)

dpkg -i /debs/v2/libmrkv0_*.deb /debs/v2/mrkv_*.deb
[ "$(dpkg-query -W -f '${Version}' mrkv)" = "$(dpkg-deb -f /debs/v2/mrkv_*.deb Version)" ] || fail "not upgraded"
for u in "${services[@]}" "${sockets[@]}"; do
        poll 10 systemctl is-active --quiet "$u" || fail "$u is not active after the upgrade"
done
for u in "${services[@]}"; do
        [ "$(prop "$u" MainPID)" != "${pid[$u]}" ] || fail "$u was not restarted by the upgrade"
done
[ "$(prop mrkv-kvserver.socket InvocationID)" = "$kv_socket" ] || fail "mrkv-kvserver.socket was restarted"
[ "$(prop mrkv-coordinator.socket InvocationID)" = "$co_socket" ] || fail "mrkv-coordinator.socket was restarted"
mrkvctl put after upgrade
mrkvctl submit wc /srv/in/GPL-3 --wait

# --- remove and purge --------------------------------------------------------------
dpkg -r mrkv
for u in "${services[@]}" "${sockets[@]}"; do
        state=$(systemctl is-active "$u" || true)
        [ "$state" = inactive ] || [ "$state" = unknown ] || fail "$u is $state after removal"
done
[ ! -e /run/mrkv/kv.sock ] || fail "kv.sock is left after removal"
[ -d /var/lib/mrkv/coordinator/journal ] || fail "removal (not purge) deleted /var/lib/mrkv"
dpkg -P mrkv
[ ! -e /var/lib/mrkv ] || fail "purge left /var/lib/mrkv"
[ ! -e /etc/systemd/system/sockets.target.wants/mrkv-kvserver.socket ] || fail "purge left the socket enabled"
id mrkv         # Debian keeps system users
echo UPGRADE-TEST-OK
