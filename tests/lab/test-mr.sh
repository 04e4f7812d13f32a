#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The MIT 6.5840 lab 1 test suite (test-mr.sh), run against the real mrkv-coordinator,
# mrkv-worker and app plugins: each case starts real processes on a real Unix socket in
# a fresh temporary directory and compares the job's output with mrkv-sequential.
#
# Usage: test-mr.sh CASE      CASE: wc indexer map-parallelism reduce-parallelism
#                                   job-count early-exit crash
# Environment (set by meson): MRKV_COORDINATOR, MRKV_WORKER, MRKV_SEQUENTIAL, MRKV_APP_PATH,
# MRKV_TEST_DATA (a directory of pg-*.txt; generated with MRKV_GENCORPUS when absent).
set -u

case_name=${1:?usage: test-mr.sh CASE}
: "${MRKV_COORDINATOR:?}" "${MRKV_WORKER:?}" "${MRKV_SEQUENTIAL:?}" "${MRKV_APP_PATH:?}"
export MRKV_APP_PATH

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrkv-lab.XXXXXX")
cleanup() {
    # Every process this script started, also when a check failed half-way.
    local pids
    pids=$(jobs -p)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    pkill -9 -P $$ 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "--- $case_name: FAIL: $*" >&2
    exit 1
}

SOCK=$tmp/coordinator.sock
export MRKV_COORDINATOR_ADDRESS=unix:$SOCK
COORDINATOR=(timeout -k 2s 300s "$MRKV_COORDINATOR")
WORKER=(timeout -k 2s 300s "$MRKV_WORKER")

# Input: the lab's Gutenberg texts when available, else a generated corpus of 8 files.
mkdir -p "$tmp/in" "$tmp/mr-tmp"
if [ -n "${MRKV_TEST_DATA:-}" ] && ls "$MRKV_TEST_DATA"/pg-*.txt >/dev/null 2>&1; then
    cp "$MRKV_TEST_DATA"/pg-*.txt "$tmp/in/"
else
    : "${MRKV_GENCORPUS:?no MRKV_TEST_DATA and no MRKV_GENCORPUS}"
    "$MRKV_GENCORPUS" --files 8 --size 200000 --prefix pg-gen- "$tmp/in" || fail "cannot generate input"
fi
cd "$tmp/mr-tmp" || exit 1
INPUTS=(../in/pg*.txt)
NINPUTS=${#INPUTS[@]}

wait_for_socket() {
    # Poll with a deadline (10 s) instead of sleeping blindly.
    for _ in $(seq 200); do
        [ -S "$SOCK" ] && return 0
        sleep 0.05
    done
    fail "the coordinator did not create $SOCK within 10 s"
}

sequential() { # APP OUTFILE
    "$MRKV_SEQUENTIAL" --plain "$1" "${INPUTS[@]}" || fail "mrkv-sequential $1 failed"
    sort mr-out-0 > "$2"
    rm -f mr-out*
}

case $case_name in
wc)
    sequential wc mr-correct-wc.txt
    "${COORDINATOR[@]}" "${INPUTS[@]}" &
    cpid=$!
    wait_for_socket
    # One worker loads the plugin by path, the others by name from $MRKV_APP_PATH.
    "${WORKER[@]}" "$MRKV_APP_PATH/wc.so" &
    "${WORKER[@]}" wc &
    "${WORKER[@]}" wc.so &
    wait $cpid || fail "the coordinator exited with $?"
    wait
    sort mr-out* | grep . > mr-wc-all
    cmp -s mr-wc-all mr-correct-wc.txt || fail "wc output is not the same as mr-correct-wc.txt"
    [ "$(ls mr-out-* | wc -l)" = 10 ] || fail "expected 10 mr-out files, found: $(ls mr-out-*)"
    ls -a | grep -q '^\.mrkv-tmp' && fail "temporary files left behind: $(ls -a | grep '^\.mrkv-tmp')"
    ;;
indexer)
    sequential indexer mr-correct-indexer.txt
    "${COORDINATOR[@]}" "${INPUTS[@]}" &
    cpid=$!
    wait_for_socket
    "${WORKER[@]}" indexer &
    "${WORKER[@]}" indexer &
    wait $cpid || fail "the coordinator exited with $?"
    wait
    sort mr-out* | grep . > mr-indexer-all
    cmp -s mr-indexer-all mr-correct-indexer.txt || fail "indexer output is not the same as mr-correct-indexer.txt"
    ;;
map-parallelism)
    "${COORDINATOR[@]}" "${INPUTS[@]}" &
    cpid=$!
    wait_for_socket
    "${WORKER[@]}" mtiming &
    "${WORKER[@]}" mtiming &
    wait $cpid || fail "the coordinator exited with $?"
    wait
    NT=$(cat mr-out* | grep -c '^times-')
    [ "$NT" = 2 ] || fail "saw $NT workers rather than 2"
    cat mr-out* | grep -q '^parallel.* 2' || fail "map workers did not run in parallel"
    ;;
reduce-parallelism)
    "${COORDINATOR[@]}" "${INPUTS[@]}" &
    cpid=$!
    wait_for_socket
    "${WORKER[@]}" rtiming &
    "${WORKER[@]}" rtiming &
    wait $cpid || fail "the coordinator exited with $?"
    wait
    NT=$(cat mr-out* | grep -c '^[a-z] 2')
    [ "$NT" -ge 2 ] || fail "too few parallel reduces ($NT)"
    ;;
job-count)
    "${COORDINATOR[@]}" "${INPUTS[@]}" &
    cpid=$!
    wait_for_socket
    "${WORKER[@]}" jobcount &
    "${WORKER[@]}" jobcount
    # The job is over: these two must find nothing to do.
    "${WORKER[@]}" jobcount &
    "${WORKER[@]}" jobcount
    wait $cpid || fail "the coordinator exited with $?"
    wait
    NT=$(cat mr-out* | awk '{print $2}')
    [ "$NT" = "$NINPUTS" ] || fail "map jobs ran incorrect number of times ($NT != $NINPUTS)"
    ;;
early-exit)
    sequential early_exit mr-correct-early-exit.txt
    "${COORDINATOR[@]}" "${INPUTS[@]}" &
    cpid=$!
    wait_for_socket
    "${WORKER[@]}" early_exit &
    "${WORKER[@]}" early_exit &
    "${WORKER[@]}" early_exit &
    # As soon as any one process exits, the output must already be complete.
    wait -n
    sort mr-out* 2>/dev/null | grep . > mr-wc-all-initial
    wait $cpid
    wait
    sort mr-out* | grep . > mr-wc-all-final
    cmp -s mr-wc-all-final mr-wc-all-initial || fail "output changed after the first process exited"
    cmp -s mr-wc-all-final mr-correct-early-exit.txt || fail "early_exit output differs from mrkv-sequential"
    ;;
crash)
    sequential nocrash mr-correct-crash.txt
    rm -f mr-done
    "${COORDINATOR[@]}" "${INPUTS[@]}" &
    cpid=$!
    wait_for_socket
    "${WORKER[@]}" crash &
    # Restart crashed workers while the coordinator is there, as the lab does.
    for _ in 1 2 3; do
        ( while [ -e "$SOCK" ] && [ ! -f mr-done ]; do
              "${WORKER[@]}" crash
              sleep 1
          done ) &
    done
    wait $cpid || fail "the coordinator exited with $?"
    touch mr-done
    wait
    sort mr-out* | grep . > mr-crash-all
    cmp -s mr-crash-all mr-correct-crash.txt || fail "crash output is not the same as mr-correct-crash.txt"
    ;;
*)
    fail "unknown case"
    ;;
esac

echo "--- $case_name: PASS"
exit 0
