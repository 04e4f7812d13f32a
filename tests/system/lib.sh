# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the system tests: skipping, polling with a deadline, clean-up of the
# processes and files a test made.

SKIP=77

skip() {
        echo "SKIP: $*" >&2
        exit $SKIP
}

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

# require_tools TOOL...: skip unless every TOOL is on $PATH.
require_tools() {
        local t
        for t in "$@"; do
                command -v "$t" >/dev/null || skip "$t not found"
        done
}

# require_root TOOL...: skip unless root and every TOOL is on $PATH.
require_root() {
        [ "$(id -u)" -eq 0 ] || skip "needs root"
        require_tools "$@"
}

# wait_for SECONDS DESCRIPTION CMD [ARG...]: polls CMD every 50 ms until it succeeds;
# fails the test when SECONDS pass first.
wait_for() {
        local secs=$1 what=$2 deadline
        shift 2
        deadline=$(($(date +%s%N) + secs * 1000000000))
        until "$@" >/dev/null 2>&1; do
                [ "$(date +%s%N)" -lt "$deadline" ] || fail "no $what within ${secs} s"
                sleep 0.05
        done
}

# Processes to kill and paths to remove at exit, whatever the exit path.
_pids=()
_paths=()
_cleanup_hooks=()

track_pid() { _pids+=("$1"); }
track_path() { _paths+=("$1"); }
on_cleanup() { _cleanup_hooks+=("$1"); }

_cleanup() {
        local st=$? p h
        set +e
        trap - EXIT INT TERM
        for h in "${_cleanup_hooks[@]}"; do
                eval "$h"
        done
        for p in "${_pids[@]}"; do
                kill "$p" 2>/dev/null
        done
        for p in "${_pids[@]}"; do
                for _ in $(seq 1 100); do
                        kill -0 "$p" 2>/dev/null || break
                        sleep 0.05
                done
                kill -9 "$p" 2>/dev/null
                wait "$p" 2>/dev/null
        done
        for p in "${_paths[@]}"; do
                rm -rf "$p"
        done
        exit $st
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# make_tmpdir VAR: a directory removed at exit, short enough for socket paths.
make_tmpdir() {
        local d
        d=$(mktemp -d /tmp/mrkv-systest.XXXXXX)
        track_path "$d"
        printf -v "$1" %s "$d"
}

# notify_has FILE FIELD: FILE (written by notify-recv.py) holds a line FIELD, or one
# starting with FIELD when FIELD ends in '='.
notify_has() {
        case $2 in
        *=) grep -q "^$2" "$1" ;;
        *) grep -qx "$2" "$1" ;;
        esac
}

# install_user_units: renders every user unit of units/user/ into the manager's unit
# directory with ExecStart= at this build's programs, adds a drop-in per service that
# appends its stderr to $SDU_LOGDIR/NAME.log (there is no journal here) and bounds
# start and stop to 10 s, and reloads.
# Needs $MRKV_UNITS_SRC and the program paths of units/render-unit.sh.
install_user_units() {
        local dir=$XDG_RUNTIME_DIR/systemd/user f name
        : "${MRKV_UNITS_SRC:?}" "${SDU_LOGDIR:?}"
        for f in "$MRKV_UNITS_SRC"/user/*.service.in "$MRKV_UNITS_SRC"/user/*.socket; do
                name=${f##*/}
                name=${name%.in}
                sh "$MRKV_UNITS_SRC/render-unit.sh" "$f" "$dir/$name"
                case $name in
                *.service)
                        mkdir -p "$dir/$name.d"
                        # A start or stop that hangs fails the test rather than outlast it.
                        printf '[Service]\nStandardError=append:%s/%s.log\nTimeoutSec=10s\n' \
                                "$SDU_LOGDIR" "${name%.service}" >"$dir/$name.d/50-test.conf"
                        # LeakSanitizer stops the process with ptrace() at exit, which
                        # @system-service lacks: without it the process hangs there.
                        [ -z "${MRKV_TEST_SANITIZED:-}" ] ||
                                echo "SystemCallFilter=ptrace" >>"$dir/$name.d/50-test.conf"
                        # The units hide /tmp and homes from the services; a build tree
                        # there (a CI clone, say) must stay visible to run its programs.
                        # The installed units run unchanged in tests/vm.
                        case ${MRKV_KVSERVER:-} in
                        /tmp/* | /var/tmp/* | /home/* | /root/*)
                                printf 'PrivateTmp=no\nProtectHome=no\n' >>"$dir/$name.d/50-test.conf" ;;
                        esac
                        ;;
                esac
        done
        systemctl --user daemon-reload
}

# require_user_bus: skips unless the user manager has a user bus to start (dbus.socket,
# package dbus-user-session), which the user units ask for with MRKV_BUS=user.
require_user_bus() {
        systemctl --user cat dbus.socket >/dev/null 2>&1 || skip "no user bus: dbus.socket (dbus-user-session) missing"
        command -v busctl >/dev/null || skip "busctl not found"
}

# unit_is UNIT STATE: `systemctl --user is-active UNIT` prints STATE.
unit_is() {
        [ "$(systemctl --user is-active "$1" 2>/dev/null)" = "$2" ]
}

unit_property() { # UNIT PROPERTY
        systemctl --user show -p "$2" --value "$1"
}

# The test apps of the build tree for the mrkv-worker@ instances (after install_user_units).
worker_test_apps() {
        : "${MRKV_APP_DIR:?}"
        mkdir -p "$XDG_RUNTIME_DIR/systemd/user/mrkv-worker@.service.d"
        printf '[Service]\nEnvironment=MRKV_APP_PATH=%s\n' "$MRKV_APP_DIR" \
                >"$XDG_RUNTIME_DIR/systemd/user/mrkv-worker@.service.d/60-test-apps.conf"
        systemctl --user daemon-reload
}

# Whether N workers are connected to the coordinator, as its bus object says.
workers_are() {
        [ "$(busctl --user get-property org.mrkv.MapReduce1 /org/mrkv/MapReduce1 org.mrkv.MapReduce1 Workers)" = "u $1" ]
}
