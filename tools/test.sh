#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs what every suite needs (tools/deps.sh all), builds mrkv with warnings as
# errors, and runs the whole meson test suite twice: a normal build, and one with
# AddressSanitizer and UBSan.
# Usage: tools/test.sh [--no-sanitize] [meson test arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=1
if [ "${1:-}" = "--no-sanitize" ]; then
    sanitize=0
    shift
fi

tools/deps.sh all

run_suite() { # BUILD_DIR EXTRA_TEST_ARGS [meson setup options...]
    local dir=$1 extra=$2
    shift 2
    if [ -d "$dir/meson-info" ]; then
        meson setup --reconfigure "$dir" -Dwerror=true "$@" >/dev/null
    else
        meson setup "$dir" -Dwerror=true "$@" >/dev/null
    fi
    meson compile -C "$dir"
    # shellcheck disable=SC2086 # extra is a list of options
    meson test -C "$dir" --print-errorlogs $extra "${TEST_ARGS[@]}"
}

# The closing line CI reads: every test of every pass, from meson's own logs.
summary() {
    python3 - "$@" <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    for line in open(path):
        result = json.loads(line)["result"]
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
PY
}

TEST_ARGS=("$@")
logs=(build/meson-logs/testlog.json)
run_suite build ""
if [ "$sanitize" = 1 ]; then
    # Leak checks stay on; dlopen()ed plugins are built with the same sanitizers. The
    # package tests build and install the .deb, which holds no sanitized code: once is enough.
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_suite build-sanitize "--no-suite vm --no-suite vm-qemu" \
        -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
    logs+=(build-sanitize/meson-logs/testlog.json)
fi
summary "${logs[@]}"
