#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# mrkvctl's job verbs against real processes: a job-server mrkv-coordinator and two
# "mrkv-worker --serve" workers on a Unix socket in a fresh temporary directory, which is
# removed, and every process started here killed, also when a check fails.
#
# Usage: test-jobs.sh CASE    CASE: wc progress-lines progress-tty json errors cancel kill-worker
#                                  kill-coordinator stale-attempt splits split-edges backup
# Environment (set by meson): MRKV_COORDINATOR, MRKV_WORKER, MRKV_MRKVCTL, MRKV_SEQUENTIAL,
# MRKV_APP_PATH, MRKV_TEST_DATA (a directory of pg-*.txt; generated with MRKV_GENCORPUS
# when absent).
set -u

case_name=${1:?usage: test-jobs.sh CASE}
: "${MRKV_COORDINATOR:?}" "${MRKV_WORKER:?}" "${MRKV_MRKVCTL:?}" "${MRKV_SEQUENTIAL:?}" "${MRKV_APP_PATH:?}"
export MRKV_APP_PATH

. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrkv-jobs.XXXXXX")
pids=()
cleanup() {
    stop_and_show_logs $?
    rm -rf "$tmp"
}
trap cleanup EXIT

SOCK=$tmp/coordinator.sock
# The job verbs find the coordinator through the environment; one check uses --connect.
export MRKV_COORDINATOR_ADDRESS=unix:$SOCK
# Never the kv server's address by mistake.
export MRKV_KV_ADDRESS=unix:$tmp/no-kv.sock
# A hung call fails the test instead of stalling it.
MRKVCTL=(timeout -k 2s 25s "$MRKV_MRKVCTL")

mkdir -p "$tmp/in" "$tmp/state" "$tmp/seq"
lab_inputs

# Checks that job ID's outputs, sorted, are what mrkv-sequential writes.
check_outputs() { # ID EXPECTED
    "${MRKVCTL[@]}" status --json "$1" >"$tmp/status-$1.json" || fail "status $1 failed"
    [ "$(json_field "$tmp/status-$1.json" 'j["state"]')" = done ] || fail "job $1 is not done"
    local outputs
    mapfile -t outputs < <(json_field "$tmp/status-$1.json" '"\n".join(j["outputs"])')
    [ ${#outputs[@]} -gt 0 ] || fail "job $1 lists no outputs"
    sort "${outputs[@]}" | grep . >"$tmp/job-$1.sorted" || fail "job $1's outputs cannot be read"
    cmp -s "$tmp/job-$1.sorted" "$2" || fail "job $1's output differs from mrkv-sequential's"
}

case $case_name in
wc)
    sequential wc "$tmp/correct-wc" "${INPUTS[@]}"
    start_coordinator
    start_workers 2
    # Relative FILE names: mrkvctl resolves them against its own directory.
    (cd "$(dirname "${INPUTS[0]}")" && "${MRKVCTL[@]}" submit wc --nreduce 4 "${INPUTS[@]##*/}" --wait) \
        >"$tmp/submit.out" 2>"$tmp/submit.log" || fail "submit --wait exited with $?"
    id=$(head -n 1 "$tmp/submit.out")
    [[ $id =~ ^[0-9A-Za-z_-]+$ ]] || fail "the first line is not a job id: '$id'"
    grep -q "^Job $id done in " "$tmp/submit.out" || fail "no 'done' summary: $(cat "$tmp/submit.out")"
    [ "$(grep -c '/mr-out-[0-9]*$' "$tmp/submit.out")" = 4 ] || fail "expected the 4 output files listed"
    check_outputs "$id" "$tmp/correct-wc"
    # A job of its own whose directory the submitter chose.
    mkdir "$tmp/mywork"
    "${MRKVCTL[@]}" submit wc "${INPUTS[@]}" --workdir "$tmp/mywork" --task-timeout 20 --wait >"$tmp/submit2.out" \
        2>>"$tmp/submit.log" || fail "submit --workdir --wait exited with $?"
    ls "$tmp"/mywork/mr-out-* >/dev/null 2>&1 || fail "no mr-out-* in the --workdir"
    sort "$tmp"/mywork/mr-out-* | grep . | cmp -s - "$tmp/correct-wc" || fail "--workdir job's output differs"
    ;;
progress-lines)
    # stdout is a file here: plain lines, each only when the progress changed, no \r.
    start_coordinator
    start_workers 2
    "${MRKVCTL[@]}" submit wc "${INPUTS[@]}" --nreduce 3 --wait >"$tmp/submit.out" 2>"$tmp/submit.log" ||
        fail "submit --wait exited with $?"
    id=$(head -n 1 "$tmp/submit.out")
    ! grep -q $'\r' "$tmp/submit.out" || fail "carriage returns in the output to a file"
    ! grep -q $'\e' "$tmp/submit.out" || fail "escape sequences in the output to a file"
    grep "^job $id: " "$tmp/submit.out" >"$tmp/progress" || fail "no progress lines: $(cat "$tmp/submit.out")"
    tail -n 1 "$tmp/progress" | grep -q "^job $id: done, map ${#INPUTS[@]}/${#INPUTS[@]}, reduce 3/3, 100%, " ||
        fail "the last progress line is not the finished job: $(tail -n 1 "$tmp/progress")"
    # Without the elapsed time, no two lines are the same: a line means a change.
    sed 's/, [0-9:]*$//' "$tmp/progress" >"$tmp/progress.states"
    [ -z "$(uniq -d "$tmp/progress.states")" ] || fail "repeated progress lines: $(uniq -d "$tmp/progress.states")"
    # Counts only go up.
    awk -F'[ /,]+' '{ m = $5; r = $8; if (m < lm || r < lr) exit 1; lm = m; lr = r }' "$tmp/progress.states" ||
        fail "progress went backwards: $(cat "$tmp/progress.states")"
    grep -q "^Job $id done in " "$tmp/submit.out" || fail "no summary after the progress lines"
    ;;
progress-tty)
    # stdout is a terminal (script(1) gives one): one line redrawn in place.
    command -v script >/dev/null 2>&1 || { echo "script(1) is not installed; skipping"; exit 77; }
    start_coordinator
    start_workers 2
    # jobcount's maps take seconds: the elapsed time is redrawn while nothing else changes.
    printf -v cmd '%q ' "$MRKV_MRKVCTL" submit jobcount "${INPUTS[@]:0:2}" --nreduce 1 --wait
    timeout -k 2s 25s script -qec "stty cols 100; $cmd" /dev/null >"$tmp/tty.out" 2>"$tmp/tty.log" </dev/null ||
        fail "submit --wait on a terminal exited with $?: $(cat "$tmp/tty.out")"
    id=$(head -n 1 "$tmp/tty.out" | tr -d '\r')
    grep -q $'\r'"job $id mapping *\[[#.]*\] *[0-9]*%  map [0-9]/2  reduce 0/1  0:0[0-9]"$'\e\\[K' "$tmp/tty.out" ||
        fail "no progress bar redrawn in place: $(cat -A "$tmp/tty.out")"
    # Redrawn several times on one line: more bars than lines.
    bars=$(grep -o $'\r'"job $id " "$tmp/tty.out" | wc -l)
    [ "$bars" -ge 3 ] || fail "the bar was drawn $bars times only: $(cat -A "$tmp/tty.out")"
    [ "$(wc -l <"$tmp/tty.out")" -le 4 ] || fail "the progress scrolled: $(cat -A "$tmp/tty.out")"
    # The bar never grows wider than the terminal.
    tr '\r' '\n' <"$tmp/tty.out" | sed 's/\x1b\[K//g' | awk 'length > 99 { exit 1 }' ||
        fail "a line wider than the terminal: $(cat -A "$tmp/tty.out")"
    grep -q "Job $id done in " "$tmp/tty.out" || fail "no summary: $(cat -A "$tmp/tty.out")"
    ;;
json)
    sequential wc "$tmp/correct-wc" "${INPUTS[@]}"
    start_coordinator
    start_workers 2
    "${MRKVCTL[@]}" submit wc "${INPUTS[@]}" --wait --json >"$tmp/submit.json" 2>"$tmp/submit.log" ||
        fail "submit --wait --json exited with $?"
    [ "$(wc -l <"$tmp/submit.json")" = 1 ] || fail "--json --wait printed more than the Job object"
    json_field "$tmp/submit.json" 'j["state"]' >"$tmp/state.txt" || fail "--json output does not parse"
    [ "$(cat "$tmp/state.txt")" = done ] || fail "state is $(cat "$tmp/state.txt"), not done"
    id=$(json_field "$tmp/submit.json" 'j["id"]')
    [ "$(json_field "$tmp/submit.json" 'j["map_done"] == j["map_total"] == len(j["files"])')" = True ] ||
        fail "map counts do not match the files: $(cat "$tmp/submit.json")"
    [ "$(json_field "$tmp/submit.json" 'all(f.startswith("/") for f in j["files"] + j["outputs"])')" = True ] ||
        fail "paths in the Job object are not absolute"
    check_outputs "$id" "$tmp/correct-wc"

    # Without --wait, --json prints the job as just submitted.
    "${MRKVCTL[@]}" submit wc "${INPUTS[0]}" --json >"$tmp/submit2.json" || fail "submit --json failed"
    id2=$(json_field "$tmp/submit2.json" 'j["id"]') || fail "submit --json output does not parse"
    [ "$id2" != "$id" ] || fail "two jobs with the same id $id"

    # jobs: a table with both, and the same as a JSON array.
    "${MRKVCTL[@]}" jobs >"$tmp/jobs.txt" || fail "jobs failed"
    head -n 1 "$tmp/jobs.txt" | grep -q '^ID  *STATE  *APP  *PROGRESS  *MAPS  *REDUCES  *SUBMITTED$' ||
        fail "jobs: unexpected header: $(head -n 1 "$tmp/jobs.txt")"
    grep -q "^$id  *done  *wc  *100%  *${#INPUTS[@]}/${#INPUTS[@]}  *10/10  " "$tmp/jobs.txt" ||
        fail "jobs does not list job $id as done: $(cat "$tmp/jobs.txt")"
    grep -q "^$id2  " "$tmp/jobs.txt" || fail "jobs does not list job $id2"
    "${MRKVCTL[@]}" jobs --json >"$tmp/jobs.json" || fail "jobs --json failed"
    [ "$(json_field "$tmp/jobs.json" 'sorted(x["id"] for x in j) == sorted(["'"$id"'", "'"$id2"'"])')" = True ] ||
        fail "jobs --json does not hold exactly the two jobs: $(cat "$tmp/jobs.json")"

    # status, human-readable.
    "${MRKVCTL[@]}" status "$id" >"$tmp/status.txt" || fail "status failed"
    grep -q '^ *State: done$' "$tmp/status.txt" || fail "status: no 'State: done': $(cat "$tmp/status.txt")"
    grep -q '^ *Output: /.*/mr-out-0$' "$tmp/status.txt" || fail "status: no output files"
    ;;
errors)
    start_coordinator
    # No such job: exit 3, for status and cancel, with --connect instead of the environment.
    "${MRKVCTL[@]}" --connect "unix:$SOCK" status 4711 2>"$tmp/err"
    [ $? = 3 ] || fail "status of an unknown job: expected exit 3"
    grep -q "no such job: 4711" "$tmp/err" || fail "status of an unknown job: unclear message: $(cat "$tmp/err")"
    env -u MRKV_COORDINATOR_ADDRESS "$MRKV_MRKVCTL" cancel 4711 --connect "unix:$SOCK" 2>/dev/null
    [ $? = 3 ] || fail "cancel of an unknown job: expected exit 3"

    # A missing file fails before anything is sent: no job appears.
    "${MRKVCTL[@]}" submit wc "${INPUTS[0]}" "$tmp/no-such-file.txt" --wait >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc = 1 ] || fail "submit of a missing file: expected exit 1, got $rc"
    grep -q "no-such-file.txt.*No such file or directory" "$tmp/err" ||
        fail "submit of a missing file: unclear message: $(cat "$tmp/err")"
    [ ! -s "$tmp/out" ] || fail "submit of a missing file printed: $(cat "$tmp/out")"
    "${MRKVCTL[@]}" submit wc "$tmp" 2>"$tmp/err"
    [ $? = 1 ] || fail "submit of a directory: expected exit 1"
    "${MRKVCTL[@]}" jobs --json >"$tmp/jobs.json" || fail "jobs failed"
    [ "$(cat "$tmp/jobs.json")" = "[]" ] || fail "a refused submit reached the coordinator: $(cat "$tmp/jobs.json")"
    "${MRKVCTL[@]}" jobs >"$tmp/jobs.txt" || fail "jobs failed"
    [ "$(cat "$tmp/jobs.txt")" = "No jobs." ] || fail "jobs with no jobs: $(cat "$tmp/jobs.txt")"

    # Usage errors: exit 2.
    for args in "submit" "submit wc" "submit wc ${INPUTS[0]} --nreduce 0" "submit wc ${INPUTS[0]} --task-timeout -1" \
        "status" "status 1 2" "cancel" "jobs extra" "submit wc ${INPUTS[0]} --bogus"; do
        # shellcheck disable=SC2086
        "${MRKVCTL[@]}" $args 2>/dev/null
        rc=$?
        [ $rc = 2 ] || fail "'mrkvctl $args': expected exit 2 (usage), got $rc"
    done

    # The coordinator refuses a bad job: exit 1 with its reason.
    "${MRKVCTL[@]}" submit ../wc "${INPUTS[0]}" 2>"$tmp/err"
    [ $? = 1 ] || fail "submit of an invalid app name: expected exit 1"
    grep -q "refused the job" "$tmp/err" || fail "no reason for the refused job: $(cat "$tmp/err")"

    # Nobody listening: exit 1, naming the address.
    "${MRKVCTL[@]}" --connect "unix:$tmp/nobody.sock" jobs 2>"$tmp/err"
    [ $? = 1 ] || fail "jobs without a coordinator: expected exit 1"
    grep -q "nobody.sock" "$tmp/err" || fail "the error does not name the address: $(cat "$tmp/err")"
    ;;
cancel)
    sequential wc "$tmp/correct-wc" "${INPUTS[@]}"
    start_coordinator
    start_workers 2
    # jobcount's maps sleep 2-5 s: the job is certainly running when it is cancelled.
    id=$("${MRKVCTL[@]}" submit jobcount "${INPUTS[@]}" --nreduce 2) || fail "submit jobcount failed"
    "${MRKVCTL[@]}" status --json "$id" >"$tmp/s.json" || fail "status failed"
    workdir=$(json_field "$tmp/s.json" 'j["workdir"]')
    map_started() { compgen -G "$workdir/mr-worker-jobcount-*" >/dev/null; }
    wait_until 20 "a jobcount map runs" map_started
    "${MRKVCTL[@]}" cancel "$id" || fail "cancel exited with $?"
    "${MRKVCTL[@]}" status "$id" >"$tmp/status.txt" || fail "status after cancel failed"
    grep -q '^ *State: cancelled$' "$tmp/status.txt" || fail "not cancelled: $(cat "$tmp/status.txt")"
    "${MRKVCTL[@]}" status --json "$id" >"$tmp/s.json" || fail "status --json after cancel failed"
    [ "$(json_field "$tmp/s.json" 'j["state"], j["outputs"], j["map_done"] < j["map_total"]')" = \
        "('cancelled', [], True)" ] || fail "unexpected cancelled job: $(cat "$tmp/s.json")"
    # Cancelling it again: it has ended.
    "${MRKVCTL[@]}" cancel "$id" 2>"$tmp/err"
    [ $? = 1 ] || fail "second cancel: expected exit 1"
    grep -q "already ended (cancelled)" "$tmp/err" || fail "second cancel: unclear message: $(cat "$tmp/err")"
    # The workers go on to the next job.
    "${MRKVCTL[@]}" submit wc "${INPUTS[@]}" --wait >"$tmp/submit.out" 2>"$tmp/submit.log" ||
        fail "the job after the cancelled one exited with $?"
    check_outputs "$(head -n 1 "$tmp/submit.out")" "$tmp/correct-wc"
    # submit --wait on a job that gets cancelled: exit 1, and says so.
    "${MRKVCTL[@]}" submit jobcount "${INPUTS[@]:0:2}" --nreduce 1 --wait >"$tmp/wait.out" 2>"$tmp/wait.log" &
    waiter=$!
    pids+=($waiter)
    has_id() { [ -s "$tmp/wait.out" ]; }
    wait_until 10 "submit --wait prints the job id" has_id
    id3=$(head -n 1 "$tmp/wait.out")
    "${MRKVCTL[@]}" cancel "$id3" || fail "cancel $id3 exited with $?"
    wait $waiter
    rc=$?
    [ $rc = 1 ] || fail "submit --wait of a cancelled job: expected exit 1, got $rc"
    grep -q "^Job $id3 cancelled after " "$tmp/wait.out" || fail "no 'cancelled' summary: $(cat "$tmp/wait.out")"
    ;;
kill-worker)
    start_coordinator
    start_workers 2
    victim=${WORKER_PIDS[0]}
    for i in 1 2 3; do echo "input $i" >"$tmp/in/jc-$i.txt"; done
    # Map runs are counted: no backup attempts, which would add runs of their own.
    "${MRKVCTL[@]}" submit jobcount "$tmp"/in/jc-*.txt --nreduce 1 --no-backup-tasks --wait >"$tmp/wait.out" \
        2>"$tmp/wait.log" &
    waiter=$!
    pids+=($waiter)
    has_id() { [ -s "$tmp/wait.out" ]; }
    wait_until 10 "submit --wait prints the job id" has_id
    id=$(head -n 1 "$tmp/wait.out")
    "${MRKVCTL[@]}" status --json "$id" >"$tmp/s.json" || fail "status failed"
    workdir=$(json_field "$tmp/s.json" 'j["workdir"]')
    # jobcount names its file after the worker's pid: the victim is inside a map, asleep.
    victim_in_map() { compgen -G "$workdir/mr-worker-jobcount-$victim-*" >/dev/null; }
    wait_until 20 "worker $victim runs a map" victim_in_map
    kill -9 "$victim"
    wait $waiter
    rc=$?
    [ $rc = 0 ] || fail "submit --wait after killing a worker: expected exit 0, got $rc: $(cat "$tmp/wait.out")"
    grep -q "^Job $id done in " "$tmp/wait.out" || fail "no 'done' summary: $(cat "$tmp/wait.out")"
    # Every map ran to the end once, plus the killed attempt, which left its file too.
    n=$(compgen -G "$workdir/mr-worker-jobcount-*" | wc -l)
    [ "$n" = 4 ] || fail "expected 3 maps + 1 killed attempt, found $n jobcount files"
    [ "$(cat "$workdir"/mr-out-*)" = "a 4" ] || fail "unexpected output: $(cat "$workdir"/mr-out-*)"
    "${MRKVCTL[@]}" status --json "$id" >"$tmp/s.json" || fail "status failed"
    [ "$(json_field "$tmp/s.json" 'j["map_done"], j["reduce_done"]')" = "(3, 1)" ] ||
        fail "counts of the finished job: $(cat "$tmp/s.json")"
    ;;
kill-coordinator)
    # A stream of jobs through three workers while the coordinator is killed with SIGKILL
    # at random moments, 20 times, and restarted on the same state directory. Every job
    # ends done with mrkv-sequential's output; submit --wait follows its job throughout.
    sequential wc "$tmp/correct-wc" "${INPUTS[@]}"
    sequential indexer "$tmp/correct-indexer" "${INPUTS[@]}"
    echo "one input" >"$tmp/in/jc-1.txt"
    echo "another input" >"$tmp/in/jc-2.txt"
    start_coordinator
    start_workers 3
    WAIT=(timeout -k 2s 170s "$MRKV_MRKVCTL" --timeout 30)
    # jobcount: two maps of 2-5 s each, counted by the files they leave (no backups,
    # which would add runs).
    "${WAIT[@]}" submit jobcount "$tmp"/in/jc-*.txt --nreduce 1 --no-backup-tasks --wait >"$tmp/jc.out" \
        2>"$tmp/jc.log" &
    jc_waiter=$!
    pids+=("$jc_waiter")
    "${WAIT[@]}" submit wc "${INPUTS[@]}" --nreduce 3 --wait >"$tmp/wc-wait.out" 2>"$tmp/wc-wait.log" &
    wc_waiter=$!
    pids+=("$wc_waiter")
    has_id() { [ -s "$tmp/jc.out" ]; }
    wait_until 10 "submit --wait prints the jobcount job's id" has_id
    jc=$(head -n 1 "$tmp/jc.out")
    "${MRKVCTL[@]}" status --json "$jc" >"$tmp/s.json" || fail "status failed"
    jc_dir=$(json_field "$tmp/s.json" 'j["workdir"]')

    # Bursts of three submissions, retried while the coordinator is down.
    submit_retrying() { # APP
        for _ in $(seq 300); do
            "$MRKV_MRKVCTL" --timeout 5 submit "$1" "${INPUTS[@]}" --nreduce 3 2>/dev/null && return 0
            sleep 0.1
        done
        return 1
    }
    (
        for _ in $(seq 12); do
            for app in wc indexer wc; do submit_retrying $app || exit 1; done
            sleep "0.$((RANDOM % 9 + 1))"
        done
    ) >"$tmp/submitted" 2>"$tmp/submitter.log" &
    submitter=$!
    pids+=("$submitter")

    lost=0
    for kill in $(seq 20); do
        # Mostly within a jobcount map, sometimes long enough for one to commit.
        sleep "$((RANDOM % 3 + (kill % 5 == 0 ? 4 : 0))).$((RANDOM % 10))$((RANDOM % 10))"
        kill -9 "$COORDINATOR_PID"
        wait "$COORDINATOR_PID" 2>/dev/null
        sleep 0.2 # a map handed out just before the kill leaves its file
        started=$(compgen -G "$jc_dir/mr-worker-jobcount-*" | wc -l)
        start_coordinator
        "${MRKVCTL[@]}" status --json "$jc" >"$tmp/s.json" || fail "status of $jc after restart $kill failed"
        done_maps=$(json_field "$tmp/s.json" 'j["map_done"]')
        # Runs of the map that neither committed nor were lost at an earlier kill: in flight.
        in_flight=$((started - done_maps - lost))
        echo "kill $kill: jobcount map runs $started, committed $done_maps, in flight at this kill $in_flight"
        [ "$in_flight" -ge 0 ] && [ "$in_flight" -le 2 ] ||
            fail "kill $kill: $in_flight jobcount map runs in flight, but the job has two maps"
        lost=$((lost + in_flight))
    done

    wait $submitter || fail "submitting the jobs failed: $(cat "$tmp/submitter.log")"
    wait $jc_waiter || fail "submit --wait of jobcount job $jc exited with $?: $(cat "$tmp/jc.out" "$tmp/jc.log")"
    wait $wc_waiter || fail "submit --wait of a wc job exited with $?: $(cat "$tmp/wc-wait.out" "$tmp/wc-wait.log")"
    grep -q "^Job $jc done in " "$tmp/jc.out" || fail "no 'done' summary: $(cat "$tmp/jc.out")"
    all_ended() {
        "${MRKVCTL[@]}" jobs --json >"$tmp/jobs.json" &&
            [ "$(json_field "$tmp/jobs.json" 'all(x["state"] in ("done", "failed", "cancelled") for x in j)')" = True ]
    }
    wait_until 120 "every job has ended" all_ended
    n_jobs=0
    while read -r id app; do
        [ "$app" = jobcount ] && continue
        check_outputs "$id" "$tmp/correct-$app"
        n_jobs=$((n_jobs + 1))
    done < <(json_field "$tmp/jobs.json" '"\n".join(x["id"] + " " + x["app"] for x in j)')
    [ "$n_jobs" -ge 37 ] || fail "only $n_jobs wc and indexer jobs listed"
    runs=$(compgen -G "$jc_dir/mr-worker-jobcount-*" | wc -l)
    echo "jobcount: $runs map runs; 2 maps + $lost in flight at the kills = $((2 + lost))"
    [ "$runs" = $((2 + lost)) ] || fail "jobcount ran its maps $runs times, expected $((2 + lost))"
    [ "$(cat "$jc_dir"/mr-out-*)" = "a $runs" ] || fail "unexpected jobcount output: $(cat "$jc_dir"/mr-out-*)"
    echo "$n_jobs wc and indexer jobs done with mrkv-sequential's output through 20 kills"
    ;;
stale-attempt)
    # A FinishTask of an attempt handed out before the coordinator restarted is refused
    # (TaskNotAssigned: no connection of the new run holds it), nothing counts, and the
    # task runs again as an attempt of the new run, numbered above every attempt of the
    # old one.
    : "${MRKV_VARLINK_CALL:?}"
    call() { python3 "$MRKV_VARLINK_CALL" "unix:$SOCK" "$@"; }
    start_coordinator
    id=$("${MRKVCTL[@]}" submit wc "${INPUTS[0]}" --nreduce 2) || fail "submit failed"
    call org.mrkv.MapReduce.RequestTask >"$tmp/task.json" || fail "RequestTask: $(cat "$tmp/task.json")"
    attempt=$(json_field "$tmp/task.json" 'j["parameters"]["attempt"]')
    [ "$attempt" = $((1 << 16 | 1)) ] || fail "the first run's first attempt is $attempt"
    kill -9 "$COORDINATOR_PID"
    wait "$COORDINATOR_PID" 2>/dev/null
    start_coordinator
    call org.mrkv.MapReduce.FinishTask "{\"job\": \"$id\", \"kind\": \"map\", \"task\": 0, \"attempt\": $attempt, \"ok\": true}" \
        >"$tmp/finish.json" && fail "FinishTask of the stale attempt accepted: $(cat "$tmp/finish.json")"
    grep -q '"error": "org.mrkv.MapReduce.TaskNotAssigned"' "$tmp/finish.json" ||
        fail "FinishTask of the stale attempt: $(cat "$tmp/finish.json")"
    "${MRKVCTL[@]}" status --json "$id" >"$tmp/s.json" || fail "status failed"
    [ "$(json_field "$tmp/s.json" 'j["map_done"]')" = 0 ] || fail "the stale attempt counts: $(cat "$tmp/s.json")"
    call org.mrkv.MapReduce.RequestTask >"$tmp/task2.json" || fail "RequestTask after the restart"
    [ "$(json_field "$tmp/task2.json" 'j["parameters"]["task"], j["parameters"]["attempt"]')" = "(0, $((2 << 16 | 1)))" ] ||
        fail "map 0 is not handed out again as the new run's attempt: $(cat "$tmp/task2.json")"
    ;;
splits)
    # One input of more than 200 MiB cut into splits of 8 MiB (at least 25 map tasks):
    # the output is mrkv-sequential's, and the map tasks read every byte once.
    big=$tmp/in/big.txt
    while [ "$(stat -c %s "$big" 2>/dev/null || echo 0)" -le $((25 * 8 << 20)) ]; do
        cat "${INPUTS[@]}" >>"$big" || fail "cannot write $big"
    done
    sequential wc "$tmp/correct-big" "$big"
    start_coordinator
    start_workers 2
    id=$("${MRKVCTL[@]}" submit wc "$big" --split-size 8M --nreduce 4) || fail "submit failed"
    "${MRKVCTL[@]}" --timeout 240 status --wait "$id" >"$tmp/wait.out" 2>&1 || fail "the job did not finish: $(cat "$tmp/wait.out")"
    check_outputs "$id" "$tmp/correct-big"
    s=$tmp/status-$id.json
    [ "$(json_field "$s" 'j["map_total"] >= 25 and j["split_size"] == 8 << 20')" = True ] ||
        fail "not 25 splits of 8 MiB: $(cat "$s")"
    [ "$(json_field "$s" 'j["counters"]["map_input_bytes"]')" = "$(stat -c %s "$big")" ] ||
        fail "the map tasks did not read the file's bytes once: $(cat "$s")"
    [ "$(json_field "$s" 'j["counters"]["reduce_output_records"]')" = "$(wc -l <"$tmp/correct-big")" ] ||
        fail "reduce_output_records is not the number of output lines: $(cat "$s")"
    "${MRKVCTL[@]}" status "$id" >"$tmp/status.txt" || fail "status failed"
    grep -q '^ *Splits: 8 MiB$' "$tmp/status.txt" || fail "status shows no split size: $(cat "$tmp/status.txt")"
    grep -q '^ *Counters: map_input_records  *[1-9][0-9]*$' "$tmp/status.txt" ||
        fail "status shows no counters: $(cat "$tmp/status.txt")"
    echo "splits: $(json_field "$s" 'j["map_total"]') map tasks over $(stat -c %s "$big") bytes"
    ;;
split-edges)
    # Splits of 100 bytes over lines longer than a split, a file without a trailing
    # newline, an empty file, lines that end exactly at a split's end, and a file of one
    # split: wc's and indexer's output are mrkv-sequential's.
    e=$tmp/edges
    mkdir "$e"
    { for i in $(seq 300); do printf 'long%d ' $((i % 7)); done; echo; echo "short line after"; } >"$e/long.txt"
    printf 'alpha beta\ngamma delta\nlast line without newline' >"$e/nonl.txt"
    : >"$e/empty.txt"
    # Lines of 10 and 100 bytes: some end exactly where a split does.
    for i in $(seq 40); do printf 'word%04d\n' "$i"; printf '%099d\n' "$i" | tr 0 x; done >"$e/exact.txt"
    printf 'tiny file\n' >"$e/tiny.txt"
    edges=("$e/long.txt" "$e/nonl.txt" "$e/empty.txt" "$e/exact.txt" "$e/tiny.txt")
    # A split per 100 bytes begun, and one for the empty file.
    nsplits=$(python3 -c 'import os, sys; print(sum(max(1, -(-os.path.getsize(f) // 100)) for f in sys.argv[1:]))' \
        "${edges[@]}")
    sequential wc "$tmp/correct-wc" "${edges[@]}"
    sequential indexer "$tmp/correct-indexer" "${edges[@]}"
    start_coordinator
    start_workers 2
    for app in wc indexer; do
        "${MRKVCTL[@]}" submit "$app" "${edges[@]}" --split-size 100 --nreduce 3 --wait >"$tmp/$app.out" ||
            fail "submit $app --wait failed"
        id=$(head -n 1 "$tmp/$app.out")
        check_outputs "$id" "$tmp/correct-$app"
        [ "$(json_field "$tmp/status-$id.json" 'j["map_total"]')" = "$nsplits" ] ||
            fail "$app: not $nsplits map tasks: $(cat "$tmp/status-$id.json")"
        [ "$(json_field "$tmp/status-$id.json" 'j["counters"]["map_input_bytes"]')" = \
          "$(cat "${edges[@]}" | wc -c)" ] || fail "$app: the splits did not read each byte once"
    done
    # One map task per file with split size 0, and the bound on map tasks.
    "${MRKVCTL[@]}" submit wc "${edges[@]}" --split-size 0 --wait >"$tmp/whole.out" || fail "submit --split-size 0 failed"
    id=$(head -n 1 "$tmp/whole.out")
    check_outputs "$id" "$tmp/correct-wc"
    [ "$(json_field "$tmp/status-$id.json" 'j["map_total"]')" = 5 ] || fail "--split-size 0 is not a task per file"
    # A coordinator that allows fewer map tasks than these splits refuses the job.
    kill -9 "$COORDINATOR_PID"
    wait "$COORDINATOR_PID" 2>/dev/null
    start_coordinator --max-map-tasks 50
    "${MRKVCTL[@]}" submit wc "${edges[@]}" --split-size 100 >"$tmp/bound.out" 2>&1 &&
        fail "$nsplits splits accepted over 50"
    grep -q "too many map tasks: $nsplits splits of 100 bytes, at most 50 per job" "$tmp/bound.out" ||
        fail "no clear error for too many splits: $(cat "$tmp/bound.out")"
    ;;
backup)
    # Three workers, one stopped (SIGSTOP) in the middle of its first map task: once the
    # other maps are done, an idle worker runs a backup of it, which wins, and the job
    # ends with the right output long before the task time-out. Without backups the job
    # waits for the time-out. Both times are printed, not checked. The maps are a
    # streaming job's commands that take a second each, so the stop comes mid-task.
    files=("${INPUTS[@]:0:8}")
    cat "${files[@]}" | tr -cs 'A-Za-z' '\n' | grep . | sort | uniq -c | awk '{ print $2, $1 }' | sort \
        >"$tmp/correct-backup"
    mapper="sleep 1; tr -cs 'A-Za-z' '\\n' | awk 'NF { print \$0 \"\\t1\" }'"
    reducer="awk -F '\\t' '{ n[\$1] += \$2 } END { for (k in n) print k, n[k] }'"
    start_coordinator
    run_with_stopped_worker() { # LABEL SUBMIT-OPTION...
        local label=$1 stopped start end others=()
        shift
        # The worker to stop connects alone, so that it gets the first map task.
        "$MRKV_WORKER" --serve --connect "unix:$SOCK" --log-level=debug >"$tmp/stopped-$label.log" 2>&1 &
        stopped=$!
        pids+=($stopped)
        start=$(date +%s.%N)
        id=$("${MRKVCTL[@]}" submit --mapper "$mapper" --reducer "$reducer" "${files[@]}" --nreduce 2 \
                 --task-timeout 15 "$@") || fail "$label: submit failed"
        wait_until 20 "the first worker runs a map task" grep -q "Running map task" "$tmp/stopped-$label.log"
        kill -STOP "$stopped"
        for i in 1 2; do
            "$MRKV_WORKER" --serve --connect "unix:$SOCK" >"$tmp/worker-$label-$i.log" 2>&1 &
            pids+=($!)
            others+=($!)
        done
        "${MRKVCTL[@]}" --timeout 60 status --wait "$id" >"$tmp/wait-$label.out" 2>&1 ||
            fail "$label: the job did not finish: $(cat "$tmp/wait-$label.out")"
        end=$(date +%s.%N)
        check_outputs "$id" "$tmp/correct-backup"
        kill -9 "$stopped" "${others[@]}" 2>/dev/null
        echo "backup: $label: job $id done in $(python3 -c "print(f'{$end - $start:.1f}')") s (task time-out 15 s)"
    }
    run_with_stopped_worker with-backups
    s=$tmp/status-$id.json
    [ "$(json_field "$s" 'j["counters"]["backup_attempts_won"] >= 1')" = True ] ||
        fail "with backups: no backup won: $(cat "$s")"
    run_with_stopped_worker without-backups --no-backup-tasks
    s=$tmp/status-$id.json
    [ "$(json_field "$s" 'j["backup_tasks"], j["counters"]["backup_attempts_started"]')" = "(False, 0)" ] ||
        fail "without backups: a backup started: $(cat "$s")"
    [ "$(json_field "$s" 'j["counters"]["task_attempts_timed_out"] >= 1')" = True ] ||
        fail "without backups: no time-out: $(cat "$s")"
    ;;
*)
    fail "unknown case"
    ;;
esac

echo "--- $case_name: PASS"
exit 0
