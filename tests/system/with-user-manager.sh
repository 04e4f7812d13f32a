#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# with-user-manager.sh [--user NAME] CMD [ARG...]
#
# Runs CMD next to a private, real `systemd --user` manager, also on hosts where PID 1 is
# not systemd, and removes every trace of it afterwards, whatever CMD does.
#
#  - The manager runs in a cgroup subtree of its own: a systemd that is not PID 1 takes
#    over the cgroup it finds itself in, and in the root cgroup that is every process on
#    the machine (docs/testing.md: never start a systemd in the cgroup you are in).
#  - It runs in a private mount namespace with /run a mount point and a tmpfs on
#    /run/systemd holding system/ (so sd_booted() holds) and the inaccessible/ nodes that
#    ProtectHome=, ProtectKernelTunables= and friends bind-mount. Nothing of it reaches
#    the host.
#  - XDG_RUNTIME_DIR and HOME are throwaway directories under /run (not /tmp: a unit's
#    PrivateTmp=yes would hide the user bus and runtime directory from its service).
#
# CMD runs as NAME (default root) with XDG_RUNTIME_DIR set, so `systemctl --user` and
# `busctl --user` reach the manager; units go into $XDG_RUNTIME_DIR/systemd/user/.
# It also gets SDU_HOME and SDU_LOGDIR (a directory for StandardError=file: logs, shown
# when CMD fails, and failing the run when they hold a sanitizer report). Exit status:
# CMD's; 77 (skip) when not root or a tool is missing.
set -eu

RUNAS=root
if [ "${1:-}" = --user ]; then
        RUNAS=$2
        shift 2
fi
if [ $# -eq 0 ]; then
        echo "usage: $0 [--user NAME] CMD [ARG...]" >&2
        exit 2
fi

SYSTEMD=${SYSTEMD:-/lib/systemd/systemd}
if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: needs root (own cgroup subtree, mount namespace)" >&2
        exit 77
fi
for tool in "$SYSTEMD" systemctl setpriv unshare; do
        if ! command -v "$tool" >/dev/null; then
                echo "SKIP: $tool not found" >&2
                exit 77
        fi
done
if ! id -u "$RUNAS" >/dev/null 2>&1; then
        echo "SKIP: no user $RUNAS" >&2
        exit 77
fi

TOP=
CG=
HIER=()
MPID=
CPID=
rc=0

# Kills every process in cgroup subtree DIR (only a manager of ours and its services
# can be there) and removes the subtree depth-first.
remove_cgroup() {
        local d=$1 pid
        [ -d "$d" ] || return 0
        for _ in $(seq 1 50); do
                find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null |
                        while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done
                find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
                [ -d "$d" ] || return 0
                sleep 0.01
        done
        echo "with-user-manager: could not remove cgroup $d" >&2
}

remove_cgroups() {
        local h
        [ -n "$CG" ] || return 0
        for h in "${HIER[@]}"; do
                remove_cgroup "/sys/fs/cgroup/$h$CG"
        done
        return 0
}

# What a run killed with SIGKILL left (meson kills a test that outlives its time-out):
# the cgroups and directories named after a wrapper PID that is gone.
remove_stale() {
        local h d pid
        for h in systemd unified pids cpu memory ""; do
                for d in "/sys/fs/cgroup/$h${base%/}"/mrkv-sdu-*; do
                        [ -d "$d" ] || continue
                        pid=${d##*/mrkv-sdu-}
                        kill -0 "$pid" 2>/dev/null || remove_cgroup "$d"
                done
        done
        for d in /run/mrkv-sdu-*; do
                [ -d "$d" ] || continue
                pid=${d##*/mrkv-sdu-}
                pid=${pid%%.*}
                kill -0 "$pid" 2>/dev/null || rm -rf "$d"
        done
        return 0
}

asuser() {
        if [ "$RUNAS" = root ]; then
                env XDG_RUNTIME_DIR="$RT" HOME="$H" SDU_HOME="$H" SDU_LOGDIR="$LOGDIR" "$@"
        else
                setpriv --reuid="$RUNAS" --regid="$(id -g "$RUNAS")" --init-groups \
                        env XDG_RUNTIME_DIR="$RT" HOME="$H" USER="$RUNAS" SDU_HOME="$H" SDU_LOGDIR="$LOGDIR" "$@"
        fi
}

show_logs() {
        local f
        echo "--- user manager log ($TOP/manager*.log) ---" >&2
        tail -n 100 "$TOP/manager.log" "$TOP/manager-kmsg.log" >&2 2>/dev/null || true
        for f in "$LOGDIR"/*; do
                [ -f "$f" ] || continue
                echo "--- $f ---" >&2
                tail -n 100 "$f" >&2 || true
        done
}

# After CMD, the manager stops every unit as a logout does. On a signal (a meson
# time-out sends TERM to the process group and KILL 0.5 s later) there is no time for
# that: every process in the subtree is killed at once.
cleanup() {
        local st=$?
        set +e
        trap - EXIT INT TERM
        [ $rc -ne 0 ] || rc=$st
        [ -z "$CPID" ] || kill "$CPID" 2>/dev/null
        if [ -n "$MPID" ] && [ -z "$signalled" ] && kill -0 "$MPID" 2>/dev/null; then
                asuser timeout 5 systemctl --user exit >/dev/null 2>&1 || kill "$MPID" 2>/dev/null
                for _ in $(seq 1 100); do
                        kill -0 "$MPID" 2>/dev/null || break
                        sleep 0.05
                done
        fi
        remove_cgroups
        [ -z "$MPID" ] || wait "$MPID" 2>/dev/null
        # A service of a sanitizer build that reported an error fails the test, though
        # its exit status went only to the manager.
        if [ $rc -eq 0 ] && [ -n "$TOP" ] &&
                grep -lE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$LOGDIR"/* 2>/dev/null; then
                echo "with-user-manager: sanitizer reports in the logs above" >&2
                rc=1
        fi
        [ $rc -eq 0 ] || [ $rc -eq 77 ] || [ -z "$TOP" ] || show_logs
        [ -z "$TOP" ] || rm -rf "$TOP"
        exit $rc
}
signalled=
trap cleanup EXIT
trap 'signalled=1; rc=130; exit' INT
trap 'signalled=1; rc=143; exit' TERM

# The subtree is nested under our memory cgroup, so memory accounting stays where it is.
base=$(awk -F: '$2=="memory" {print $3}' /proc/self/cgroup)
[ -n "$base" ] || base=$(awk -F: '$1=="0" {print $3}' /proc/self/cgroup)
remove_stale

TOP=$(mktemp -d "/run/mrkv-sdu-$$.XXXXXX")
chmod 755 "$TOP"
touch "$TOP/manager-kmsg.log"
chown "$RUNAS": "$TOP/manager-kmsg.log"
RT=$TOP/run
H=$TOP/home
LOGDIR=$TOP/log
mkdir -m 700 "$RT"
mkdir -p "$H" "$LOGDIR" "$RT/systemd/user"
chown -R "$RUNAS": "$RT" "$H" "$LOGDIR"

CG="${base%/}/mrkv-sdu-$$"
for h in systemd unified pids cpu memory; do
        if [ -e "/sys/fs/cgroup/$h/cgroup.procs" ]; then
                mkdir -p "/sys/fs/cgroup/$h$CG"
                HIER+=("$h")
        fi
done
# A pure cgroup2 host: one hierarchy at /sys/fs/cgroup.
if [ ${#HIER[@]} -eq 0 ] && [ -e /sys/fs/cgroup/cgroup.procs ]; then
        mkdir -p "/sys/fs/cgroup$CG"
        HIER+=("")
fi
if [ ${#HIER[@]} -eq 0 ]; then
        echo "SKIP: no cgroup file system" >&2
        rc=77
        exit
fi
# An unprivileged manager gets the subtree delegated, as user@.service has Delegate=yes.
if [ "$RUNAS" != root ]; then
        for h in "${HIER[@]}"; do
                case $h in systemd|unified|"") chown -R "$RUNAS": "/sys/fs/cgroup/$h$CG" ;; esac
        done
fi

(
        for h in "${HIER[@]}"; do
                echo "$BASHPID" >"/sys/fs/cgroup/$h$CG/cgroup.procs"
        done
        exec unshare --mount --propagation private sh -c '
                set -e
                # MountAPIVFS= (implied by ProtectKernelTunables=, ProtectProc=, ...) puts an
                # empty tmpfs on /run unless it is a mount point, as it is on a booted host:
                # hiding $XDG_RUNTIME_DIR, the notify socket and the user bus from services.
                mountpoint -q /run || mount --bind /run /run
                mount -t tmpfs -o mode=755 tmpfs /run/systemd
                mkdir /run/systemd/system /run/systemd/inaccessible
                cd /run/systemd/inaccessible
                touch reg; mkdir dir; mkfifo fifo; mknod chr c 0 0; mknod blk b 0 0
                chmod 0000 reg dir fifo chr blk
                cd /
                # With no journal the manager logs to the kernel log: here, to a file
                # of ours instead of the host'"'"'s.
                if [ -c /dev/kmsg ]; then mount --bind "$4" /dev/kmsg; fi
                exec setpriv --reuid="$0" --regid="$(id -g "$0")" --init-groups \
                        env HOME="$1" XDG_RUNTIME_DIR="$2" USER="$0" \
                        "$3" --user --log-target=kmsg --log-level=info' \
                "$RUNAS" "$H" "$RT" "$SYSTEMD" "$TOP/manager-kmsg.log"
) >"$TOP/manager.log" 2>&1 </dev/null &
MPID=$!

state=
for _ in $(seq 1 200); do
        state=$(asuser systemctl --user show -p SystemState --value 2>/dev/null || true)
        case $state in running|degraded) break ;; esac
        if ! kill -0 "$MPID" 2>/dev/null; then
                break
        fi
        sleep 0.05
done
case $state in
running|degraded) ;;
*)
        echo "with-user-manager: the user manager did not start (state '$state')" >&2
        rc=1
        exit
        ;;
esac

# In the background, so that a TERM (a meson time-out) runs the clean-up at once.
asuser "$@" <&0 &
CPID=$!
wait "$CPID" || rc=$?
CPID=
exit $rc
