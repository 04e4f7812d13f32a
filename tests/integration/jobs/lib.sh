# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the job server's tests (jobs/test-jobs.sh, identity/test-identity.sh,
# worker/test-worker.sh), which define $case_name, $tmp (their directory) and $pids (the
# processes they started); those that start a coordinator and workers here also $SOCK.

fail() {
    echo "--- $case_name: FAIL: $*" >&2
    exit 1
}

# The inputs in $INPUTS: the lab's texts (MRKV_TEST_DATA) when there, else 8 files
# written by MRKV_GENCORPUS into $tmp/in.
lab_inputs() {
    if [ -n "${MRKV_TEST_DATA:-}" ] && ls "$MRKV_TEST_DATA"/pg-*.txt >/dev/null 2>&1; then
        INPUTS=("$MRKV_TEST_DATA"/pg-*.txt)
    else
        : "${MRKV_GENCORPUS:?no MRKV_TEST_DATA and no MRKV_GENCORPUS}"
        "$MRKV_GENCORPUS" --files 8 --size 200000 --prefix pg-gen- "$tmp/in" || fail "cannot generate input"
        INPUTS=("$tmp"/in/pg-*.txt)
    fi
}

# For the EXIT trap: kills the processes the script started, by their ids, and when it
# failed (STATUS not 0) shows the end of every log in $tmp.
stop_and_show_logs() { # STATUS
    [ ${#pids[@]} -gt 0 ] && kill -9 "${pids[@]}" 2>/dev/null
    wait 2>/dev/null
    if [ "$1" -ne 0 ]; then
        for log in "$tmp"/*.log; do
            [ -s "$log" ] && { echo "--- $log:"; tail -n 30 "$log"; } >&2
        done
    fi
    return 0
}

# Polls CONDITION (a command) every 50 ms until it holds or SEC seconds have passed.
wait_until() { # SEC DESCRIPTION COMMAND...
    local sec=$1 what=$2
    shift 2
    for _ in $(seq $((sec * 20))); do
        "$@" && return 0
        sleep 0.05
    done
    fail "timed out after ${sec}s waiting until $what"
}

json_field() { # FILE EXPRESSION (Python, on the parsed JSON as j)
    python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# A job-server coordinator on $SOCK with its state in $tmp/state; its pid in COORDINATOR_PID.
COORDINATOR_PID=
start_coordinator() { # [OPTION...]
    rm -f "$SOCK"
    "$MRKV_COORDINATOR" --listen "unix:$SOCK" --state-directory "$tmp/state" "$@" >>"$tmp/coordinator.log" 2>&1 &
    COORDINATOR_PID=$!
    pids+=($!)
    wait_until 10 "the coordinator listens on $SOCK" test -S "$SOCK"
}

# N --serve workers of $SOCK, logging to $tmp/workerI.log; their pids in WORKER_PIDS.
WORKER_PIDS=()
start_workers() { # N [OPTION...]
    local n=$1
    shift
    for i in $(seq "$n"); do
        "$MRKV_WORKER" --serve --connect "unix:$SOCK" "$@" >"$tmp/worker$i.log" 2>&1 &
        pids+=($!)
        WORKER_PIDS+=($!)
    done
}

# The sorted output of mrkv-sequential --plain (the reference engine) APP over FILEs, run
# in $tmp/seq.
sequential() { # APP OUTFILE FILE...
    local app=$1 out=$2
    shift 2
    (cd "$tmp/seq" && "$MRKV_SEQUENTIAL" --plain "$app" "$@" && sort mr-out-0 >"$out" && rm -f mr-out-0) ||
        fail "mrkv-sequential $app failed"
}
