#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The checks of the VM tests, run as root INSIDE the guest (an nspawn container or a
# qemu VM, booted with systemd as PID 1), doing what an administrator would:
#
#   guest-checks.sh step NAME   runs one step; exit status 0 when all its checks held
#   guest-checks.sh tap NAME... runs the steps in turn and prints TAP lines (qemu)
#   guest-checks.sh list        prints the steps as NAME<TAB>DESCRIPTION
#
# test-nspawn.sh calls `step` through nsenter, one step at a time, and prints TAP on
# the host; test-qemu.sh's guest unit calls `tap` and the host reads the serial console.
# Every step leaves a trace of what it ran (set -x) on stderr, and says why it failed
# in a line starting with "FAIL:". Steps share state through files in $STATE.
#
# The .debs are in $DEBS (/var/tmp/mrkv-debs). Every wait polls with a deadline; every
# command that could block has a time-out.
set -euo pipefail

DEBS=${MRKV_VM_DEBS_IN_GUEST:-/var/tmp/mrkv-debs}
STATE=/var/tmp/mrkv-vm-state
PACKAGES=(mrkv libmrkv0 libmrkv-dev)
KV=unix:/run/mrkv/kv.sock
COORD=unix:/run/mrkv/coordinator.sock
# Generous: waits poll, so a deadline costs nothing unless something is wrong, and
# under qemu's TCG everything is several times slower than in a container.
WAIT=${MRKV_VM_WAIT:-120}
JOB_WAIT=${MRKV_VM_JOB_WAIT:-600}

# NAME<TAB>DESCRIPTION, in the order the tests run them.
steps() {
        cat <<'EOF'
install	dpkg -i installs mrkv, libmrkv0 and libmrkv-dev (user mrkv, units, bus policy)
installed	the preinstalled packages are configured, their sockets listening after boot
kv	systemctl start mrkv-kvserver.socket; mrkvctl put/get; busctl shows the keys
mapreduce	mrkv-coordinator.socket + mrkv-worker@{1..3}: a wc job equals mrkv-sequential's output; busctl shows it done
stop	systemctl stop of every mrkv unit: nothing left running or listening
reinstall	dpkg -i over the installed packages restarts the running services, which keep working and keep the keys
upgrade-job	dpkg -i while a job runs: the restarted coordinator resumes it from its journal, submit --wait sees it done
remove	dpkg --remove stops everything and keeps /var/lib/mrkv/kv; installed again, the store has the keys
purge	dpkg --purge removes units, sockets, bus policy, state and every packaged file
journal	no mrkv unit failed, crashed or hit its watchdog during the run
EOF
}

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

t() { timeout "$WAIT" "$@"; }

# wait_for SECONDS WHAT CMD...: polls CMD every 0.1 s until it succeeds.
wait_for() {
        local secs=$1 what=$2 deadline
        shift 2
        deadline=$(($(date +%s) + secs))
        until "$@" >/dev/null 2>&1; do
                [ "$(date +%s)" -lt "$deadline" ] || fail "no $what within $secs s"
                sleep 0.1
        done
}

is_active() { [ "$(systemctl is-active "$1" 2>/dev/null)" = active ]; }
unit_prop() { systemctl show -p "$2" --value "$1"; }
prop() { # OBJECT INTERFACE PROPERTY [SERVICE]
        t busctl --system get-property "${4:-org.mrkv.MapReduce1}" "$1" "$2" "$3"
}
kv_prop() { t busctl --system get-property org.mrkv.KeyValue1 /org/mrkv/KeyValue1 org.mrkv.KeyValue1 "$1"; }
ctl() { t mrkvctl --timeout 30 "$@"; }

# kv_durable: the installed mrkv-kvserver keeps its keys on disk (it has --sync=); one
# that does not loses them on every restart, as it says.
kv_durable() { mrkv-kvserver --help 2>/dev/null | grep -q -- '--sync='; }

# kv_has KEY VALUE VERSION: the store has KEY at VALUE and VERSION (mrkvctl get --json).
kv_has() {
        local got
        got=$(ctl --connect "$KV" get --json "$1") || fail "get $1 exited with $? (expected $2 at version $3)"
        [ "$got" = "{\"value\":\"$2\",\"version\":$3}" ] || fail "$1 is $got, expected $2 at version $3"
        echo "$1: $got"
}

# start_time UNIT: how long its last start took, from leaving inactive to active.
start_time() {
        local a b
        wait_for "$WAIT" "active $1" is_active "$1"
        a=$(unit_prop "$1" InactiveExitTimestampMonotonic)
        b=$(unit_prop "$1" ActiveEnterTimestampMonotonic)
        echo "$1 took $(((b - a) / 1000)) ms to start"
}

# mrkv_pids: the processes that run an mrkv daemon (as any user), one PID a line. One
# find for all of /proc: a readlink per process takes seconds under qemu's TCG.
# find fails on the processes that exit meanwhile and on kernel threads (no exe).
mrkv_pids() {
        { find /proc/[0-9]*/exe -maxdepth 0 \( -lname '/usr/bin/mrkv-coordinator*' -o \
                -lname '/usr/bin/mrkv-kvserver*' -o -lname '/usr/bin/mrkv-worker*' \) 2>/dev/null || true; } | cut -d/ -f3
}

no_mrkv_processes() { [ -z "$(mrkv_pids)" ]; }

# dpkg_install: dpkg -i of the three packages' .debs (not the -dbgsym ones).
dpkg_install() {
        local p f debs=()
        for p in "${PACKAGES[@]}"; do
                for f in "$DEBS/${p}"_*.deb; do
                        [ -f "$f" ] || fail "no ${p}_*.deb in $DEBS"
                        debs+=("$f")
                done
        done
        # Minutes, not seconds, under qemu's TCG.
        timeout "$JOB_WAIT" dpkg -i "${debs[@]}"
}

check_installed() {
        local p st
        for p in "${PACKAGES[@]}"; do
                st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) || fail "$p is not known to dpkg"
                [ "${st% }" = ii ] || fail "$p is in state '$st', not installed"
        done
        getent passwd mrkv >/dev/null || fail "no system user mrkv"
        getent group mrkv >/dev/null || fail "no group mrkv"
        for u in mrkv-coordinator.socket mrkv-coordinator.service mrkv-kvserver.socket \
                mrkv-kvserver.service mrkv-worker@.service; do
                [ -f "/lib/systemd/system/$u" ] || fail "$u is not installed"
        done
        [ "$(unit_prop mrkv-kvserver.socket LoadState)" = loaded ] || fail "systemd has not loaded mrkv-kvserver.socket"
        for f in org.mrkv.MapReduce1.conf org.mrkv.KeyValue1.conf; do
                [ -f "/usr/share/dbus-1/system.d/$f" ] || fail "no bus policy $f"
        done
        command -v mrkvctl >/dev/null || fail "no mrkvctl"
        command -v mrkv-sequential >/dev/null || fail "no mrkv-sequential"
        compgen -G '/usr/lib/*/pkgconfig/libmrkv.pc' >/dev/null || fail "libmrkv-dev: no libmrkv.pc"
        compgen -G '/usr/lib/*/libmrkv.so.0' >/dev/null || fail "libmrkv0: no libmrkv.so.0"
}

step_install() {
        dpkg_install || fail "dpkg -i exited with $?"
        check_installed
        systemctl is-enabled mrkv-kvserver.socket mrkv-coordinator.socket || true
}

step_installed() {
        check_installed
        # Installed before the first boot: only the enablement links can have done it.
        wait_for "$WAIT" "listening mrkv-kvserver.socket after boot" is_active mrkv-kvserver.socket
        wait_for "$WAIT" "listening mrkv-coordinator.socket after boot" is_active mrkv-coordinator.socket
}

step_kv() {
        local v
        t systemctl start mrkv-kvserver.socket
        is_active mrkv-kvserver.socket || fail "mrkv-kvserver.socket is $(systemctl is-active mrkv-kvserver.socket)"
        [ -S /run/mrkv/kv.sock ] || fail "no socket /run/mrkv/kv.sock"
        ctl --connect "$KV" put greeting hello || fail "mrkvctl put exited with $? ($(start_time mrkv-kvserver.service))"
        v=$(ctl --connect "$KV" get greeting) || fail "mrkvctl get exited with $?"
        [ "$v" = hello ] || fail "get greeting gave '$v'"
        # The first connection activated the service, as user mrkv.
        wait_for "$WAIT" "active mrkv-kvserver.service" is_active mrkv-kvserver.service
        pid=$(unit_prop mrkv-kvserver.service MainPID)
        [ "$(stat -c %U "/proc/$pid")" = mrkv ] || fail "mrkv-kvserver runs as $(stat -c %U "/proc/$pid")"
        # A versioned put: version 1 is current, 0 (create) is not.
        ctl --connect "$KV" put greeting hi --version 1 || fail "put at version 1 exited with $?"
        ! ctl --connect "$KV" put greeting again 2>/dev/null || fail "a put at a stale version succeeded"
        # Without --connect: /run/mrkv/kv.sock is the default.
        v=$(ctl get greeting) || fail "mrkvctl get without --connect exited with $?"
        [ "$v" = hi ] || fail "get greeting gave '$v', expected hi"
        ctl --connect "$KV" put colour blue || fail "put colour"
        v=$(kv_prop Keys) || fail "busctl get-property Keys exited with $?"
        [ "$v" = "t 2" ] || fail "Keys is '$v', expected 't 2'"
        # The socket is 0660 root:mrkv: a member of group mrkv may use the store, others not.
        getent passwd mrkvtest-member >/dev/null || useradd -M -N -G mrkv mrkvtest-member
        getent passwd mrkvtest-other >/dev/null || useradd -M -N mrkvtest-other
        v=$(t setpriv --reuid=mrkvtest-member --regid=users --init-groups mrkvctl --timeout 10 get colour) ||
                fail "a member of group mrkv could not get: exit $?"
        [ "$v" = blue ] || fail "the member read '$v'"
        ! t setpriv --reuid=mrkvtest-other --regid=users --init-groups mrkvctl --timeout 10 get colour 2>/dev/null ||
                fail "a user outside group mrkv reached the store"
        # Everyone may read the counters on the bus, as the policy says.
        v=$(t setpriv --reuid=mrkvtest-other --regid=users --init-groups \
                busctl --system get-property org.mrkv.KeyValue1 /org/mrkv/KeyValue1 org.mrkv.KeyValue1 Keys) ||
                fail "an unprivileged user could not read Keys"
        [ "$v" = "t 2" ] || fail "Keys as an unprivileged user: '$v'"
}

workers_are() { [ "$(prop /org/mrkv/MapReduce1 org.mrkv.MapReduce1 Workers)" = "u $1" ]; }
job_state_is() { [ "$(prop "/org/mrkv/MapReduce1/job/$1" org.mrkv.MapReduce1.Job State)" = "s \"$2\"" ]; }

# run_wc ID_FILE FILE...: submits a wc job with --wait, checks its output against
# mrkv-sequential's and its state on the bus; writes the job id to ID_FILE.
run_wc() {
        local idf=$1 work id outputs v
        shift
        work=$(mktemp -d)
        (cd "$work" && t mrkv-sequential --plain wc "$@" && sort mr-out-0 >expected) || fail "mrkv-sequential failed"
        (cd "$work" && timeout "$JOB_WAIT" mrkvctl --connect "$COORD" submit wc "$@" --wait >submit.out) ||
                fail "mrkvctl submit --wait exited with $?: $(cat "$work/submit.out")"
        cat "$work/submit.out"
        id=$(head -n 1 "$work/submit.out")
        [ -n "$id" ] || fail "submit printed no job id"
        echo "$id" >"$idf"
        job_state_is "$id" "done" || fail "job $id: State is $(prop "/org/mrkv/MapReduce1/job/$id" org.mrkv.MapReduce1.Job State)"
        v=$(prop "/org/mrkv/MapReduce1/job/$id" org.mrkv.MapReduce1.Job MapDone)
        [ "$v" = "u $#" ] || fail "job $id: MapDone is '$v', expected 'u $#'"
        # `as N "path" "path"...`: job output paths have no spaces or quotes.
        outputs=$(prop "/org/mrkv/MapReduce1/job/$id" org.mrkv.MapReduce1.Job Outputs | tr ' ' '\n' | sed -n 's/^"\(.*\)"$/\1/p')
        [ -n "$outputs" ] || fail "job $id: no Outputs on the bus"
        # shellcheck disable=SC2086 # one path a word
        sort $outputs >"$work/got" || fail "job $id: outputs unreadable: $outputs"
        cmp -s "$work/got" "$work/expected" ||
                fail "job $id: output differs from mrkv-sequential's ($(diff "$work/got" "$work/expected" | head -n 5))"
        echo "job $id: $(wc -l <"$work/got") words, the same as mrkv-sequential's; outputs ${outputs//$'\n'/ }"
        rm -rf "$work"
}

step_mapreduce() {
        local i
        mkdir -p "$STATE"
        t systemctl start mrkv-coordinator.socket mrkv-worker@{1..3}.service
        for i in 1 2 3; do
                is_active "mrkv-worker@$i.service" || fail "mrkv-worker@$i is $(systemctl is-active "mrkv-worker@$i.service")"
        done
        # The workers' connections activated the coordinator.
        wait_for "$WAIT" "active mrkv-coordinator.service" is_active mrkv-coordinator.service
        wait_for "$WAIT" "three workers on the bus" workers_are 3
        run_wc "$STATE/job1" /usr/share/common-licenses/*
        v=$(ctl --connect "$COORD" jobs) || fail "mrkvctl jobs exited with $?"
        echo "$v"
        grep -q "$(cat "$STATE/job1")" <<<"$v" || fail "mrkvctl jobs does not list the job"
}

stop_all() {
        t systemctl stop 'mrkv-worker@*.service' mrkv-coordinator.service mrkv-coordinator.socket \
                mrkv-kvserver.service mrkv-kvserver.socket
}

# Every loaded mrkv unit is inactive (not failed), no daemon runs, nothing listens.
check_all_stopped() {
        local u st
        for u in $(systemctl list-units --all --plain --no-legend 'mrkv-*' | awk '{print $1}'); do
                st=$(systemctl is-active "$u" || true)
                [ "$st" = inactive ] || fail "$u is $st after stop"
        done
        wait_for "$WAIT" "exit of every mrkv daemon" no_mrkv_processes
        if [ -d /run/mrkv ]; then
                [ -z "$(find /run/mrkv -type s)" ] || fail "sockets left: $(find /run/mrkv -type s)"
        fi
        ! t busctl --system status org.mrkv.KeyValue1 >/dev/null 2>&1 || fail "org.mrkv.KeyValue1 is still on the bus"
        ! t busctl --system status org.mrkv.MapReduce1 >/dev/null 2>&1 || fail "org.mrkv.MapReduce1 is still on the bus"
}

step_stop() {
        stop_all
        check_all_stopped
}

# running_replaced: the mrkv daemons whose program file dpkg has replaced since they
# started (the kernel marks their executable deleted), as PID:unit.
running_replaced() {
        local p
        for p in $({ find /proc/[0-9]*/exe -maxdepth 0 -lname '/usr/bin/mrkv-* (deleted)' 2>/dev/null || true; } | cut -d/ -f3); do
                echo "$p:$(ps_unit "$p")"
        done
}

# ps_unit PID: the unit a process belongs to.
ps_unit() { sed -n 's|^0::.*/\([^/]*\)$|\1|p; s|^1:name=systemd:.*/\([^/]*\)$|\1|p' "/proc/$1/cgroup" | head -n 1; }

step_reinstall() {
        local v before after replaced u
        mkdir -p "$STATE"
        # Whatever fails, the next step starts with nothing running.
        trap 'stop_all >/dev/null 2>&1 || true' EXIT
        # Something running to restart: the store (with a key), the coordinator, a worker.
        t systemctl start mrkv-kvserver.socket mrkv-coordinator.socket mrkv-worker@1.service
        ctl --connect "$KV" put before-upgrade 1 || fail "put before the upgrade"
        ctl --connect "$KV" put before-upgrade 2 --version 1 || fail "put before the upgrade at version 1"
        wait_for "$WAIT" "active mrkv-coordinator.service" is_active mrkv-coordinator.service
        wait_for "$WAIT" "a worker on the bus" workers_are 1
        before=$(mrkv_pids | sort | tr '\n' ' ')
        echo "daemons before: $before"

        dpkg_install || fail "dpkg -i over the installed packages exited with $?"
        check_installed

        for u in $(systemctl list-units --all --plain --no-legend 'mrkv-*' | awk '{print $1}'); do
                [ "$(systemctl is-active "$u" || true)" != failed ] || fail "$u failed after the reinstall"
        done
        is_active mrkv-kvserver.socket || fail "mrkv-kvserver.socket is $(systemctl is-active mrkv-kvserver.socket) after the reinstall"
        is_active mrkv-coordinator.socket || fail "mrkv-coordinator.socket is $(systemctl is-active mrkv-coordinator.socket) after the reinstall"
        # A daemon still running the replaced binary was not restarted.
        replaced=$(running_replaced)
        [ -z "$replaced" ] || fail "not restarted, still running the replaced program (PID:unit): ${replaced//$'\n'/ }"
        after=$(mrkv_pids | sort | tr '\n' ' ')
        echo "daemons after: $after"

        ctl --connect "$KV" put after-upgrade 1 || fail "put after the upgrade exited with $?"
        v=$(ctl --connect "$KV" get after-upgrade) || fail "get after the upgrade exited with $?"
        [ "$v" = 1 ] || fail "get after-upgrade gave '$v'"
        # The upgrade restarted the server (no daemon runs a replaced program): the keys
        # written before it are read back from /var/lib/mrkv/kv.
        if kv_durable; then
                kv_has before-upgrade 2 2
                [ -n "$(ls -A /var/lib/mrkv/kv)" ] || fail "nothing in /var/lib/mrkv/kv"
                ls -l /var/lib/mrkv/kv
        else
                echo "mrkv-kvserver keeps no state (no --sync=): the keys written before are gone"
        fi
        wait_for "$WAIT" "active mrkv-worker@1 after the reinstall" is_active mrkv-worker@1.service
        wait_for "$WAIT" "the worker back on the coordinator" workers_are 1
        run_wc "$STATE/job2" /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/Apache-2.0
        stop_all
        check_all_stopped
}

# A package upgrade in the middle of a job: the coordinator restarted by postinst takes
# the job back from its journal and finishes it; submit --wait follows it throughout.
step_upgrade-job() {
        local work id waiter c1 c2 lic=/usr/share/common-licenses
        trap 'stop_all >/dev/null 2>&1 || true' EXIT
        t systemctl start mrkv-coordinator.socket mrkv-worker@1.service
        wait_for "$WAIT" "a worker on the bus" workers_are 1
        work=$(mktemp -d)
        # jobcount's maps sleep 2-5 s each; one worker runs five of them in turn.
        timeout "$JOB_WAIT" mrkvctl --connect "$COORD" --timeout 120 submit jobcount \
                "$lic/GPL-2" "$lic/GPL-3" "$lic/LGPL-2.1" "$lic/Apache-2.0" "$lic/BSD" --nreduce 1 --wait \
                >"$work/submit.out" 2>"$work/submit.err" &
        waiter=$!
        wait_for "$WAIT" "the job's id" test -s "$work/submit.out"
        id=$(head -n 1 "$work/submit.out")
        wait_for "$WAIT" "job $id mapping" job_state_is "$id" mapping
        c1=$(systemctl show -P MainPID mrkv-coordinator.service)

        dpkg_install || fail "dpkg -i during job $id exited with $?"
        check_installed
        c2=$(systemctl show -P MainPID mrkv-coordinator.service)
        [ "$c2" != "$c1" ] || fail "the upgrade did not restart the coordinator (PID $c1)"
        wait "$waiter" || fail "submit --wait exited with $? across the upgrade: $(cat "$work/submit.out" "$work/submit.err")"
        cat "$work/submit.out"
        grep -q "^Job $id done in " "$work/submit.out" || fail "no 'done' summary: $(cat "$work/submit.out")"
        job_state_is "$id" "done" || fail "job $id: State is $(prop "/org/mrkv/MapReduce1/job/$id" org.mrkv.MapReduce1.Job State)"
        # The new coordinator found the job unfinished in its journal.
        journalctl -b --no-pager _PID="$c2" | grep -q "Job journal .*: 1 job(s) running or queued" ||
                fail "the restarted coordinator did not resume job $id: $(journalctl -b --no-pager _PID="$c2" | tail -n 20)"
        [ -d /var/lib/mrkv/coordinator/journal ] || fail "no journal in /var/lib/mrkv/coordinator"
        stop_all
        check_all_stopped
}

step_remove() {
        local p st u
        mkdir -p "$STATE"
        trap 'stop_all >/dev/null 2>&1 || true' EXIT
        t systemctl start mrkv-kvserver.socket
        ctl --connect "$KV" put before-remove kept || fail "put before the removal exited with $?"

        timeout "$JOB_WAIT" dpkg --remove "${PACKAGES[@]}" || fail "dpkg --remove exited with $?"
        for p in mrkv libmrkv0; do
                st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
                # mrkv has conffiles (the bus policy): its state is "config-files".
                [ "${st% }" = rc ] || [ "${st% }" = un ] || [ -z "$st" ] || fail "$p is in state '$st' after the removal"
        done
        for u in $(systemctl list-units --all --plain --no-legend 'mrkv-*' | awk '{print $1}'); do
                st=$(systemctl is-active "$u" || true)
                [ "$st" = inactive ] || fail "$u is $st after the removal"
        done
        wait_for "$WAIT" "exit of every mrkv daemon" no_mrkv_processes
        [ ! -e /usr/bin/mrkv-kvserver ] || fail "/usr/bin/mrkv-kvserver is left after the removal"
        # Only a purge deletes the data (postrm).
        [ -d /var/lib/mrkv ] || fail "the removal deleted /var/lib/mrkv"
        if [ -e /var/lib/mrkv/kv ] || [ -e /var/lib/mrkv/coordinator ]; then
                ls -la /var/lib/mrkv /var/lib/mrkv/*
        fi

        dpkg_install || fail "dpkg -i after the removal exited with $?"
        check_installed
        # Installed again, the socket listens as after the first installation.
        wait_for "$WAIT" "listening mrkv-kvserver.socket after the installation" is_active mrkv-kvserver.socket
        if kv_durable; then
                [ -n "$(ls -A /var/lib/mrkv/kv 2>/dev/null)" ] || fail "the removal emptied /var/lib/mrkv/kv"
                kv_has before-remove kept 1
                kv_has before-upgrade 2 2
        else
                echo "mrkv-kvserver keeps no state (no --sync=): the keys written before are gone"
        fi
        ctl --connect "$KV" put after-remove 1 || fail "put after the installation exited with $?"
        stop_all
        check_all_stopped
}

step_purge() {
        local p f left
        mkdir -p "$STATE"
        # Something to delete: the keys of the steps before.
        if kv_durable; then
                [ -n "$(ls -A /var/lib/mrkv/kv 2>/dev/null)" ] || fail "no keys in /var/lib/mrkv/kv before the purge"
                ls -l /var/lib/mrkv/kv
        fi
        for p in "${PACKAGES[@]}"; do
                dpkg-query -L "$p"
        done | sort -u >"$STATE/files"
        timeout "$JOB_WAIT" dpkg --purge "${PACKAGES[@]}" || fail "dpkg --purge exited with $?"
        for p in "${PACKAGES[@]}"; do
                f=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
                [ -z "$f" ] || [ "${f% }" = un ] || [ "${f% }" = pn ] || fail "$p is in state '$f' after the purge"
        done
        # Every packaged file is gone (directories may stay when other packages share them).
        left=$(while read -r f; do [ -e "$f" ] && [ ! -d "$f" ] && echo "$f"; done <"$STATE/files" || true)
        [ -z "$left" ] || fail "left after the purge: $left"
        left=$(find /lib/systemd /usr/lib/systemd /etc/systemd /run/systemd/system /run/systemd/generator* \
                -name 'mrkv*' 2>/dev/null || true)
        [ -z "$left" ] || fail "unit files or links left: $left"
        left=$(systemctl list-unit-files --plain --no-legend 'mrkv*' || true)
        [ -z "$left" ] || fail "systemd still knows: $left"
        left=$(systemctl list-units --all --plain --no-legend 'mrkv*' | grep -v ' not-found ' || true)
        [ -z "$left" ] || fail "units still loaded: $left"
        left=$(find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
                -name '*mrkv*' 2>/dev/null || true)
        [ -z "$left" ] || fail "deb-systemd-helper state left: $left"
        left=$(find /usr/share/dbus-1 /etc/dbus-1 -name 'org.mrkv*' 2>/dev/null || true)
        [ -z "$left" ] || fail "bus policy left: $left"
        ! t busctl --system list --no-legend | grep -q org.mrkv || fail "an org.mrkv name is still on the bus"
        no_mrkv_processes || fail "mrkv daemons still running: $(mrkv_pids | tr '\n' ' ')"
        if [ -d /run/mrkv ]; then
                [ -z "$(find /run/mrkv -type s)" ] || fail "sockets left in /run/mrkv: $(find /run/mrkv -type s)"
        fi
        # Debian policy: a purge removes the data a package made (as with log files,
        # 10.8); /var/lib/mrkv holds job outputs and the keys (kv/) and is the package's
        # own.
        [ ! -e /var/lib/mrkv ] || fail "/var/lib/mrkv left after the purge: $(ls -la /var/lib/mrkv)"
        [ ! -e /var/lib/private/mrkv ] || fail "/var/lib/private/mrkv left after the purge"
        # Debian keeps system users on purge (files may still be owned by them).
        if getent passwd mrkv >/dev/null; then
                echo "user mrkv kept, as Debian does"
        fi
        echo "/run/mrkv: $(ls -ld /run/mrkv 2>&1)"
}

step_journal() {
        local bad
        # Stops by SIGTERM are clean exits; anything else that ends a service is logged
        # by systemd with one of these.
        bad=$(journalctl -b --no-pager -o cat _PID=1 2>/dev/null |
                grep -E '^mrkv-.*: (Failed with result|Main process exited, code=(killed|dumped)|Watchdog timeout)' || true)
        [ -z "$bad" ] || fail "$bad"
        bad=$(journalctl -b --no-pager -o cat -t mrkv-coordinator -t mrkv-kvserver -t mrkv-worker 2>/dev/null |
                grep -E 'ERROR: [A-Za-z]+Sanitizer|runtime error:|Assertion .* failed' || true)
        [ -z "$bad" ] || fail "$bad"
        journalctl -b --no-pager -o short-monotonic -u 'mrkv-*' | tail -n 40
}

run_step() {
        local name=$1
        steps | cut -f1 | grep -qx "$name" || {
                echo "unknown step $name" >&2
                exit 2
        }
        PS4='+ [$SECONDS s] '
        set -x
        "step_$name"
}

case ${1:-} in
list)
        steps
        ;;
step)
        [ $# -eq 2 ] || { echo "usage: $0 step NAME" >&2; exit 2; }
        run_step "$2"
        ;;
tap)
        # For qemu: TAP lines on stdout marked "MRKV-VM: ", each step's trace before its line.
        shift
        n=0
        failed=0
        for s in "$@"; do
                n=$((n + 1))
                desc=$(steps | awk -F'\t' -v s="$s" '$1 == s { print $2 }')
                start=$(date +%s)
                rc=0
                "$0" step "$s" >"/var/tmp/mrkv-vm-step.log" 2>&1 || rc=$?
                sed 's/^/  | /' /var/tmp/mrkv-vm-step.log
                secs=$(($(date +%s) - start))
                if [ $rc -eq 0 ]; then
                        echo "MRKV-VM: ok $n - $desc (${secs} s)"
                else
                        failed=$((failed + 1))
                        echo "MRKV-VM: not ok $n - $desc (${secs} s)"
                        grep '^FAIL:' /var/tmp/mrkv-vm-step.log | sed 's/^/MRKV-VM: # /'
                fi
        done
        echo "MRKV-VM: 1..$n"
        [ $failed -eq 0 ]
        ;;
*)
        echo "usage: $0 list | step NAME | tap NAME..." >&2
        exit 2
        ;;
esac
