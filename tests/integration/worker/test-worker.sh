#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The worker's map side at real sizes and its streaming apps, against a real job-server
# mrkv-coordinator and "mrkv-worker --serve" workers on a Unix socket in a temporary
# directory (removed, and every process started here killed, also when a check fails).
#
# Usage: test-worker.sh CASE    CASE: spill combiner streaming streaming-retry streaming-hang
#                                     old-coordinator pipeline streaming-errors
#   spill             a 1 MiB --map-memory and ~50 MB of distinct keys in one file cut into
#                     4 MiB splits: output identical to mrkv-sequential's, spilled records
#                     counted, the worker's peak RSS (VmHWM) under the budget, the split
#                     and a few MiB (printed; skipped in sanitized builds)
#   combiner          wc with and without its combiner (submit --no-combine): the same
#                     output; with a 64 KiB --map-memory (spilled runs) fewer shuffle bytes
#                     with it and combine input records > output records; in memory its
#                     shuffle bytes no more than without (both printed); mrkv-sequential
#                     --no-combine's output the same
#   streaming         the Python word count of examples/streaming equals the wc plugin's
#                     output, whole files and in splits
#   streaming-retry   a mapper that exits non-zero once: the task is run again, the job
#                     done, the failed attempt counted
#   streaming-hang    a mapper that hangs on its first attempt (not reading its input, a
#                     child in its group and one in a session of its own holding its
#                     stdout, all ignoring SIGTERM): the worker stops it at the task's
#                     time-out, the next attempt works, the job is done, the failed
#                     attempt counted, no process of the hung command is left; the same
#                     for a reducer
#   old-coordinator   a coordinator from before RequestTask's "takes" (played by a few
#                     lines of Python, as no such coordinator is built here) refuses it
#                     with InvalidParameter: the worker asks again without and goes on
#   pipeline          a coordinator (a few lines of Python that hand out four map tasks and
#                     log what each read of the socket gets) sees the worker's first
#                     report and request one at a time, and then each report with the next
#                     request in one write; a report it refuses is not sent again, the task
#                     the request got still runs and is reported, and the hand-off after
#                     it goes one call at a time again
#   streaming-errors  lines the format cannot carry, a non-zero exit and a signal fail the
#                     job with errors that say so, as does a line over --max-input-size;
#                     commands do not get NOTIFY_SOCKET
# Environment (set by meson): MRKV_COORDINATOR, MRKV_WORKER, MRKV_MRKVCTL, MRKV_SEQUENTIAL,
# MRKV_APP_PATH, MRKV_EXAMPLES (examples/streaming), MRKV_TEST_DATA (a directory of
# pg-*.txt; generated with MRKV_GENCORPUS when absent), MRKV_TEST_SANITIZED.
set -u

case_name=${1:?usage: test-worker.sh CASE}
: "${MRKV_COORDINATOR:?}" "${MRKV_WORKER:?}" "${MRKV_MRKVCTL:?}" "${MRKV_SEQUENTIAL:?}" "${MRKV_APP_PATH:?}"
: "${MRKV_EXAMPLES:?}"
export MRKV_APP_PATH

. "$(dirname "$0")/../jobs/lib.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrkv-worker.XXXXXX")
pids=()
cleanup() {
    stop_and_show_logs $?
    rm -rf "$tmp"
}
trap cleanup EXIT

SOCK=$tmp/coordinator.sock
export MRKV_COORDINATOR_ADDRESS=unix:$SOCK
MRKVCTL=(timeout -k 2s 250s "$MRKV_MRKVCTL")
mkdir -p "$tmp/in" "$tmp/state" "$tmp/seq" "$tmp/work"

# Submits a job and waits for it: its id in $id, its status in $tmp/status-$id.json.
submit() { # ARG...
    "${MRKVCTL[@]}" submit "$@" --workdir "$tmp/work" --wait >"$tmp/submit.out" 2>>"$tmp/submit.log"
    id=$(head -n 1 "$tmp/submit.out")
    [[ $id =~ ^[0-9A-Za-z_-]+$ ]] || fail "submit printed no job id: $(cat "$tmp/submit.out" "$tmp/submit.log")"
    "${MRKVCTL[@]}" status --json "$id" >"$tmp/status-$id.json" || fail "status $id failed"
}

state() { json_field "$tmp/status-$id.json" 'j["state"]'; }
counter() { json_field "$tmp/status-$id.json" "(j.get('counters') or {}).get('$1', 0)"; }

# The job's outputs, sorted, are EXPECTED; then they are removed for the next job.
check_outputs() { # EXPECTED
    [ "$(state)" = done ] || fail "job $id is $(state): $(json_field "$tmp/status-$id.json" 'j.get("error")')"
    sort "$tmp"/work/mr-out-* | grep . >"$tmp/job-$id.sorted" || fail "job $id's outputs cannot be read"
    cmp -s "$tmp/job-$id.sorted" "$1" || fail "job $id's output differs from $1: $(diff "$tmp/job-$id.sorted" "$1" | head -5)"
    rm -f "$tmp"/work/mr-*
}

MAPPER="python3 $MRKV_EXAMPLES/wc-mapper.py"
REDUCER="python3 $MRKV_EXAMPLES/wc-reducer.py"

case $case_name in
spill)
    [ -n "${MRKV_TEST_SANITIZED:-}" ] && { echo "a sanitized build pads every block; skipping"; exit 77; }
    # ~50 MB of distinct words (a base-26 count), ten to a line: every map task holds far
    # more distinct keys than its budget.
    python3 - "$tmp/in/keys.txt" <<'PY' || fail "cannot write the input"
import sys
letters = "abcdefghijklmnopqrstuvwxyz"
def word(i):
    s = ""
    for _ in range(7):
        s += letters[i % 26]
        i //= 26
    return s
with open(sys.argv[1], "w") as f:
    for line in range(660000):
        f.write(" ".join(word(line * 10 + k) for k in range(10)) + "\n")
PY
    size=$(stat -c %s "$tmp/in/keys.txt")
    [ "$size" -gt 40000000 ] || fail "the input has only $size bytes"
    sequential wc "$tmp/correct" "$tmp/in/keys.txt"
    budget=$((1024 * 1024)) split=$((4 * 1024 * 1024))
    start_coordinator
    start_workers 1 --map-memory=$budget
    submit wc "$tmp/in/keys.txt" --nreduce 4 --split-size $split
    check_outputs "$tmp/correct"
    [ "$(counter map_output_records)" -ge 5600000 ] || fail "map output records: $(counter map_output_records)"
    [ "$(counter spilled_records)" -ge 5600000 ] || fail "spilled records: $(counter spilled_records)"
    # The worker is still up (--serve): its peak is the job's.
    hwm=$(awk '/^VmHWM:/ { print $2 * 1024 }' "/proc/${WORKER_PIDS[0]}/status")
    # The budget, one split's text (with its last line), and 8 MiB for the program, its
    # libraries and the read and write buffers.
    bound=$((budget + split + 8 * 1024 * 1024))
    echo "worker peak RSS $((hwm / 1024)) KiB with --map-memory=$((budget / 1024))K, $((split / 1048576)) MiB splits" \
        "of $((size / 1048576)) MiB, $(counter spilled_records) records spilled (bound $((bound / 1024)) KiB)"
    [ "$hwm" -le "$bound" ] || fail "worker peak RSS $hwm bytes over $bound"
    # No run is left in the job's directory, named or not.
    [ -z "$(ls -A "$tmp/work")" ] || fail "files left in the job's directory: $(ls -A "$tmp/work")"
    ;;
combiner)
    lab_inputs
    # And 20,000 distinct words five times over, so that a 64 KiB budget spills whatever
    # the texts (a generated corpus has a few hundred words).
    python3 - "$tmp/in/repeated.txt" <<'PY' || fail "cannot write the input"
import sys
def word(i):  # wc's words are letters only
    return "".join("abcdefghijklmnopqrstuvwxyz"[i // 26 ** d % 26] for d in range(4))
with open(sys.argv[1], "w") as f:
    for line in range(10000):
        f.write(" ".join(word((line * 10 + k) % 20000) for k in range(10)) + "\n")
PY
    INPUTS+=("$tmp/in/repeated.txt")
    sequential wc "$tmp/correct" "${INPUTS[@]}"
    (cd "$tmp/seq" && "$MRKV_SEQUENTIAL" --no-combine wc "${INPUTS[@]}" && sort mr-out-0 >"$tmp/seq-no-combine" &&
        rm -f mr-out-0) || fail "mrkv-sequential --no-combine failed"
    cmp -s "$tmp/seq-no-combine" "$tmp/correct" || fail "mrkv-sequential --no-combine's output differs"
    start_coordinator
    # Spilling: the runs of a key are combined into one when merged, copied without.
    start_workers 1 --map-memory=64K
    submit wc "${INPUTS[@]}" --nreduce 3
    check_outputs "$tmp/correct"
    [ "$(counter spilled_records)" -gt 0 ] || fail "nothing was spilled with --map-memory=64K"
    spill_with=$(counter shuffle_bytes) cin=$(counter combine_input_records) cout=$(counter combine_output_records)
    [ "$cin" -gt "$cout" ] || fail "combine input records $cin, output records $cout"
    submit wc "${INPUTS[@]}" --nreduce 3 --no-combine
    check_outputs "$tmp/correct"
    spill_without=$(counter shuffle_bytes)
    [ "$(counter combine_input_records)" = 0 ] || fail "--no-combine combined $(counter combine_input_records) records"
    "${MRKVCTL[@]}" status "$id" | grep -q "Combiner: *no" || fail "status does not say the job runs without the combiner"
    echo "spilled (--map-memory=64K): shuffle bytes $spill_with with the combiner ($cin records combined into" \
        "$cout), $spill_without without"
    [ "$spill_with" -lt "$spill_without" ] || fail "shuffle bytes $spill_with with the combiner, $spill_without without"
    # In memory: a key's repeated "1"s are one run already, which the combiner cannot shrink.
    kill "${WORKER_PIDS[0]}"
    start_workers 1
    submit wc "${INPUTS[@]}" --nreduce 3
    check_outputs "$tmp/correct"
    mem_with=$(counter shuffle_bytes)
    submit wc "${INPUTS[@]}" --nreduce 3 --no-combine
    check_outputs "$tmp/correct"
    mem_without=$(counter shuffle_bytes)
    echo "in memory: shuffle bytes $mem_with with the combiner, $mem_without without"
    [ "$mem_with" -le "$mem_without" ] || fail "shuffle bytes $mem_with with the combiner, $mem_without without"
    ;;
streaming)
    lab_inputs
    sequential wc "$tmp/correct" "${INPUTS[@]}"
    start_coordinator
    start_workers 2
    submit --mapper "$MAPPER" --reducer "$REDUCER" --nreduce 3 "${INPUTS[@]}"
    check_outputs "$tmp/correct"
    [ "$(counter map_input_records)" -gt 0 ] || fail "no map input records counted"
    [ "$(counter reduce_output_records)" = "$(wc -l <"$tmp/correct")" ] ||
        fail "reduce output records $(counter reduce_output_records), expected $(wc -l <"$tmp/correct")"
    # In splits of 64 KiB: the lines of each file read once.
    submit --mapper "$MAPPER" --reducer "$REDUCER" --nreduce 2 --split-size 65536 "${INPUTS[@]}"
    check_outputs "$tmp/correct"
    [ "$(json_field "$tmp/status-$id.json" 'j["map_total"]')" -gt "${#INPUTS[@]}" ] || fail "the files were not split"
    ;;
streaming-retry)
    lab_inputs
    sequential wc "$tmp/correct" "${INPUTS[0]}"
    start_coordinator
    start_workers 1
    # Fails its first run (leaving a mark in the job's directory), then counts words.
    submit --mapper "if [ -e failed-once ]; then exec $MAPPER; fi; touch failed-once; exit 3" \
        --reducer "$REDUCER" --nreduce 1 "${INPUTS[0]}"
    [ -e "$tmp/work/failed-once" ] || fail "the mapper did not run in the job's directory"
    rm -f "$tmp/work/failed-once"
    check_outputs "$tmp/correct"
    [ "$(counter task_attempts_failed)" = 1 ] || fail "failed attempts: $(counter task_attempts_failed)"
    grep -q "mapper .* exited with status 3" "$tmp/worker1.log" || fail "the worker did not log the exit status"
    ;;
streaming-hang)
    lab_inputs
    sequential wc "$tmp/correct" "${INPUTS[0]}"
    start_coordinator
    start_workers 1
    # The worker stopped them before it reported the attempt, and before the next one.
    check_nothing_left() { # WHAT
        while read -r pid; do
            if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'sleep 1000\|hung-pids'; then
                fail "process $pid of the hung $1 is still running: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
            fi
        done <"$tmp/work/hung-pids"
        [ -z "$(cat /proc/"${WORKER_PIDS[0]}"/task/*/children)" ] ||
            fail "the worker has children left: $(cat /proc/"${WORKER_PIDS[0]}"/task/*/children)"
        rm -f "$tmp/work/hung-pids"
    }
    # The first run writes its pids and hangs: it never reads its input, and it and its
    # children ignore SIGTERM; one child is in a session of its own, and both hold the
    # command's stdout. The next run does its work.
    hang='trap "" TERM; echo $$ >hung-pids; (setsid sh -c "echo \$\$ >>hung-pids; exec sleep 1000" &);'
    hang+=' sleep 1000 & echo $! >>hung-pids; wait'
    submit --mapper "if [ -e hung-pids ]; then exec $MAPPER; fi; $hang" --reducer "$REDUCER" --nreduce 1 \
        --task-timeout 4 "${INPUTS[0]}"
    [ "$(wc -l <"$tmp/work/hung-pids")" = 3 ] || fail "the hung mapper did not start: $(cat "$tmp/work/hung-pids")"
    check_outputs "$tmp/correct"
    [ "$(counter task_attempts_failed)" = 1 ] || fail "failed attempts: $(counter task_attempts_failed)"
    grep -q "mapper .* was still running at the task's time-out" "$tmp/worker1.log" ||
        fail "the worker did not say why it stopped the mapper"
    check_nothing_left mapper
    # A reducer that hangs the same way once.
    submit --mapper "$MAPPER" --reducer "if [ -e hung-pids ]; then exec $REDUCER; fi; $hang" --nreduce 1 \
        --task-timeout 4 "${INPUTS[0]}"
    check_outputs "$tmp/correct"
    [ "$(counter task_attempts_failed)" = 1 ] || fail "failed reduce attempts: $(counter task_attempts_failed)"
    grep -q "reducer .* was still running at the task's time-out" "$tmp/worker1.log" ||
        fail "the worker did not say why it stopped the reducer"
    check_nothing_left reducer
    ;;
old-coordinator)
    # It answers RequestTask as a coordinator that knows no "takes" would, then "exit".
    python3 - "$SOCK" "$tmp/calls" <<'PY' &
import json, socket, sys
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(sys.argv[1])
server.listen(1)
conn, _ = server.accept()
buf = b""
with open(sys.argv[2], "w") as log:
    while True:
        while b"\0" not in buf:
            data = conn.recv(4096)
            if not data:
                sys.exit(0)
            buf += data
        msg, buf = buf.split(b"\0", 1)
        call = json.loads(msg)
        params = call.get("parameters") or {}
        log.write(json.dumps(params, sort_keys=True) + "\n")
        log.flush()
        if "takes" in params:
            reply = {"error": "org.varlink.service.InvalidParameter", "parameters": {"parameter": "takes"}}
        else:
            reply = {"parameters": {"kind": "exit"}}
        conn.sendall(json.dumps(reply).encode() + b"\0")
PY
    pids+=($!)
    wait_until 10 "the old coordinator listens" test -S "$SOCK"
    timeout 30 "$MRKV_WORKER" --connect "unix:$SOCK" wc >"$tmp/worker1.log" 2>&1 || fail "the worker failed"
    [ "$(cat "$tmp/calls")" = "$(printf '%s\n' '{"takes": ["timeout_usec", "combine"]}' '{}')" ] ||
        fail "the worker asked: $(cat "$tmp/calls")"
    ;;
pipeline)
    lab_inputs
    # Four map tasks of one input, then "exit"; the report of task 1 refused. Each line of
    # $tmp/reads: the calls one recv() got.
    python3 - "$SOCK" "$tmp/reads" "${INPUTS[0]}" "$tmp/work" "$(id -u)" <<'PY' &
import json, socket, sys
sock, reads, inp, workdir, uid = sys.argv[1:6]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(sock)
server.listen(1)
conn, _ = server.accept()
buf, task = b"", 0
with open(reads, "w") as log:
    while True:
        data = conn.recv(65536)
        if not data:
            sys.exit(0)
        buf += data
        calls = []
        while b"\0" in buf:
            msg, buf = buf.split(b"\0", 1)
            call = json.loads(msg)
            params = call.get("parameters") or {}
            if call["method"].endswith(".FinishTask"):
                calls.append(f"FinishTask:{params['task']}:{params['ok']}")
                if params["task"] == 1:
                    reply = {"error": "org.mrkv.MapReduce.TaskNotAssigned", "parameters": params}
                else:
                    reply = {"parameters": {}}
            elif task < 4:
                calls.append("RequestTask")
                reply = {"parameters": {"kind": "map", "job": "1", "task": task, "attempt": 1, "files": [inp],
                                        "nmap": 4, "nreduce": 1, "workdir": workdir, "owner_uid": int(uid)}}
                task += 1
            else:
                calls.append("RequestTask")
                reply = {"parameters": {"kind": "exit"}}
            conn.sendall(json.dumps(reply).encode() + b"\0")
        if calls:
            log.write(" ".join(calls) + "\n")
            log.flush()
PY
    pids+=($!)
    wait_until 10 "the coordinator listens" test -S "$SOCK"
    timeout 60 "$MRKV_WORKER" --connect "unix:$SOCK" wc >"$tmp/worker1.log" 2>&1 || fail "the worker failed"
    expected=$(printf '%s\n' RequestTask FinishTask:0:True RequestTask "FinishTask:1:True RequestTask" \
        FinishTask:2:True RequestTask "FinishTask:3:True RequestTask")
    [ "$(cat "$tmp/reads")" = "$expected" ] || fail "the coordinator read: $(cat "$tmp/reads")"
    grep -q "refused the finish of map task 1" "$tmp/worker1.log" || fail "the worker did not say the report was refused"
    ;;
streaming-errors)
    lab_inputs
    start_coordinator
    # A worker of systemd's: its commands do not get the notification socket.
    NOTIFY_SOCKET=$tmp/notify.sock start_workers 1 --max-input-size=4M
    check_error() { # WHAT EXPECTED-PATTERN
        [ "$(state)" = failed ] || fail "$1: job $id is $(state), not failed"
        json_field "$tmp/status-$id.json" 'j["error"]' | grep -q -- "$2" ||
            fail "$1: error '$(json_field "$tmp/status-$id.json" 'j["error"]')' does not match '$2'"
        rm -f "$tmp"/work/mr-*
    }
    submit --mapper "printf 'a\tb\tc\n'" --reducer cat --nreduce 1 "${INPUTS[0]}"
    check_error "a TAB in a value" "mapper output line 1 has more than one TAB"
    submit --mapper "printf 'k\0ey\t1\n'" --reducer cat --nreduce 1 "${INPUTS[0]}"
    check_error "a NUL" "mapper output line 1 holds a NUL byte"
    submit --mapper "echo no-tab" --reducer cat --nreduce 1 "${INPUTS[0]}"
    check_error "no TAB" "has no TAB between key and value"
    submit --mapper "cat >/dev/null; exit 7" --reducer cat --nreduce 1 "${INPUTS[0]}"
    check_error "an exit status" "mapper 'cat >/dev/null; exit 7' exited with status 7"
    submit --mapper "$MAPPER" --reducer 'kill -9 $$' --nreduce 1 "${INPUTS[0]}"
    check_error "a signal" "reducer 'kill -9 \$\$' was killed by signal 9"
    # A line is a record, bounded as an input is.
    submit --mapper "head -c 5000000 /dev/zero | tr '\\0' a" --reducer cat --nreduce 1 "${INPUTS[0]}"
    check_error "a line too long" "mapper output line 1 is longer than 4194304 bytes"
    submit --mapper 'cat >/dev/null; printf "notify\t%s\n" "${NOTIFY_SOCKET:-unset}"' --reducer cat --nreduce 1 "${INPUTS[0]}"
    [ "$(cat "$tmp"/work/mr-out-0)" = "$(printf 'notify\tunset')" ] ||
        fail "the mapper saw NOTIFY_SOCKET: $(cat "$tmp"/work/mr-out-0)"
    rm -f "$tmp"/work/mr-*
    # A mapper that reads nothing of a large input and writes its pairs is fine.
    submit --mapper "printf 'a\t1\n'" --reducer "cat" --nreduce 1 "${INPUTS[@]}"
    [ "$(state)" = done ] || fail "a mapper that ignores its input: job $id is $(state)"
    [ "$(cat "$tmp"/work/mr-out-0)" = "$(printf 'a\t1\n%.0s' "${INPUTS[@]}")" ] ||
        fail "unexpected output: $(head -3 "$tmp"/work/mr-out-0)"
    ;;
*)
    fail "unknown case"
    ;;
esac
exit 0
