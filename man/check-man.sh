#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# check-man.sh lint PAGE...        groff (and man, if installed) must not warn about any
#                                  PAGE; exit 77 (skip) without groff.
# check-man.sh options PAGE PROGRAM
#                                  every long option "PROGRAM --help" shows must be
#                                  described in PAGE.
set -u

fail=0
case ${1:-} in
lint)
    shift
    if ! command -v groff >/dev/null 2>&1; then
        echo "groff is not installed (Debian: groff-base); skipping"
        exit 77
    fi
    for page in "$@"; do
        # -ww: every warning; -z: no output, only the diagnostics.
        out=$(groff -man -ww -z "$page" 2>&1) || { echo "$page: groff failed"; fail=1; }
        [ -z "$out" ] || { echo "$page: groff warns:"; echo "$out"; fail=1; }
        if command -v man >/dev/null 2>&1; then
            out=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) || { echo "$page: man failed"; fail=1; }
            [ -z "$out" ] || { echo "$page: man warns:"; echo "$out"; fail=1; }
        fi
        sed -n '/^\.SH NAME/{n;p;q}' "$page" | grep -q '^[a-z][a-z0-9\\-]* \\- ' ||
            { echo "$page: the NAME line is not 'name \\- description'"; fail=1; }
    done
    ;;
options)
    page=${2:?usage: check-man.sh options PAGE PROGRAM}
    program=${3:?usage: check-man.sh options PAGE PROGRAM}
    help=$("$program" --help) || { echo "$program --help failed"; exit 1; }
    # The page as text: "\-" is a plain "-" there.
    text=$(sed 's/\\-/-/g; s/\\f[BIRP]//g' "$page")
    for option in $(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
        printf '%s\n' "$text" | grep -q -- "$option\\b" ||
            { echo "$page: $option (in $program --help) is not described"; fail=1; }
    done
    ;;
*)
    echo "usage: check-man.sh lint PAGE... | options PAGE PROGRAM" >&2
    exit 2
    ;;
esac
exit $fail
