#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A long run of a libFuzzer target, for `meson test --suite fuzz` in a build configured
# with -Dfuzz=true (never in CI): RUNS executions from the committed seeds in SEEDS, new
# inputs going to a scratch directory that is removed afterwards. Prints the executions,
# executions per second and the crash (or leak, time-out) found; a crash leaves its input
# as crash-<sha1> in the test's working directory (the build directory), and fails the test.
#
# Usage: run-fuzz.sh TARGET SEEDS RUNS
set -u

target=${1:?usage: run-fuzz.sh TARGET SEEDS RUNS}
seeds=${2:?usage: run-fuzz.sh TARGET SEEDS RUNS}
runs=${3:?usage: run-fuzz.sh TARGET SEEDS RUNS}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/mrkv-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# UBSan only prints its findings unless told to halt; ASan's leak check runs at exit.
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    "$target" -runs="$runs" -print_final_stats=1 -artifact_prefix="$PWD/" \
    "$scratch" "$seeds" >"$scratch/fuzz.log" 2>&1
status=$?

stat() { sed -n "s/^stat::$1: *//p" "$scratch/fuzz.log" | tail -n 1; }
execs=$(stat number_of_executed_units)
echo "$(basename "$target"): ${execs:-?} executions, $(stat average_exec_per_sec) exec/s," \
     "peak RSS $(stat peak_rss_mb) MB, $(ls "$scratch" | grep -vc '^fuzz.log$') new inputs, exit status $status"
if [ $status -ne 0 ]; then
    echo "--- the fuzzer failed; the end of its output:" >&2
    tail -n 60 "$scratch/fuzz.log" >&2
    exit 1
fi
if [ "${execs:-0}" -lt "$runs" ]; then
    echo "--- fewer executions than the $runs asked for" >&2
    exit 1
fi
echo "0 crashes"
