#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# check-units.sh UNITS-SOURCE-DIR: the static checks of the units (suite 'units').
#  - `systemd-analyze verify` of every system and user unit, with ExecStart= pointing
#    at this build's programs; it only warns about unknown keys or bad values, so any
#    output at all fails the check;
#  - `systemd-analyze security --offline=true` of every service, printed: at most 2.5 for
#    the system units; at most 5.5 for the user units, which leave out the capability
#    settings a user manager cannot apply (README.md) and so score as if the service
#    could hold capabilities, which a user's service never does;
#  - a dry run of sysusers.d/mrkv.conf into an empty root creates user and group mrkv.
# None of it needs systemd as PID 1 or root.
set -eu
SRC=$1
# --threshold= is the exposure level times 10.
MAX_EXPOSURE_SYSTEM=25
MAX_EXPOSURE_USER=55
RENDER="$SRC/render-unit.sh"

command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze" >&2; exit 77; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/system" "$T/user" "$T/runtime" "$T/root" "$T/home"
chmod 700 "$T/runtime"
# --user needs a runtime directory even offline, and reads unit directories in $HOME:
# neither may be the caller's.
export XDG_RUNTIME_DIR=$T/runtime HOME=$T/home
unset XDG_CONFIG_HOME XDG_DATA_HOME XDG_CONFIG_DIRS XDG_DATA_DIRS

failed=0
fail() {
        echo "FAIL: $*" >&2
        failed=1
}

render_all() { # SRCDIR DESTDIR
        local f
        for f in "$1"/*.service.in "$1"/*.socket; do
                f=${f##*/}
                sh "$RENDER" "$1/$f" "$2/${f%.in}"
        done
}
render_all "$SRC" "$T/system"
render_all "$SRC/user" "$T/user"

verify() { # SCOPE-ARGS... -- UNITS...
        local args=() out rc=0
        while [ "$1" != -- ]; do
                args+=("$1")
                shift
        done
        shift
        out=$(systemd-analyze "${args[@]}" verify --man=no "$@" 2>&1) || rc=$?
        if [ $rc -ne 0 ] || [ -n "$out" ]; then
                fail "systemd-analyze ${args[*]} verify (rc $rc): $out"
        else
                echo "verify ${args[*]:-(system)}: ${*##*/} OK"
        fi
}
verify -- "$T"/system/*
verify --user -- "$T"/user/*

for scope in system user; do
        for f in "$T/$scope"/*.service; do
                args=()
                max=$MAX_EXPOSURE_SYSTEM
                if [ $scope = user ]; then
                        args=(--user)
                        max=$MAX_EXPOSURE_USER
                fi
                rc=0
                out=$(systemd-analyze "${args[@]}" security --offline=true --threshold=$max \
                        --no-pager "$f" 2>&1) || rc=$?
                level=$(printf '%s\n' "$out" | grep 'Overall exposure level' || true)
                echo "security $scope ${f##*/}: ${level#*: } (at most $((max / 10)).$((max % 10)))"
                [ -n "$level" ] || fail "no exposure level for $scope ${f##*/}: $out"
                [ $rc -eq 0 ] || { printf '%s\n' "$out" | grep '✗' >&2; fail "$scope ${f##*/} is exposed above $((max / 10)).$((max % 10))"; }
        done
done

if command -v systemd-sysusers >/dev/null; then
        out=$(systemd-sysusers --dry-run --root="$T/root" "$SRC/sysusers.d/mrkv.conf" 2>&1) || fail "sysusers: $out"
        grep -q "Creating group 'mrkv'" <<<"$out" || fail "sysusers.d/mrkv.conf creates no group mrkv: $out"
        grep -q "Creating user 'mrkv'" <<<"$out" || fail "sysusers.d/mrkv.conf creates no user mrkv: $out"
        echo "sysusers.d/mrkv.conf: user and group mrkv OK"
fi

exit $failed
