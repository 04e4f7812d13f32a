#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# What wc's combiner saves: the wc job on the Gutenberg texts through a job-server
# mrkv-coordinator and one "mrkv-worker --serve", with the combiner and without
# (mrkvctl submit --no-combine), once with the worker's default --map-memory (the groups
# stay in memory) and once with 64 KiB (spilled runs, merged at the end of each map).
# Prints per configuration the job's counters (shuffle bytes, combine input and output
# records, spilled records), which do not vary from run to run, and the medians of the
# worker's CPU time (user + sys, from /proc) and of the job's wall-clock time; runs with
# and without the combiner alternate. Every output is checked against mrkv-sequential.
#
#   bench/mapreduce/combiner.sh BUILD-DIR [--quick]
#
# Environment: MRKV_BENCH_DATA (the Gutenberg directory; without it 8 texts written by
# mrkv-gencorpus, whose few hundred words do not spill), RUNS (5; --quick: 2),
# NREDUCE (3).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/../lib.sh"
bench_parse_args "$@"

coordinator=$build/daemons/coordinator/mrkv-coordinator
worker=$build/daemons/worker/mrkv-worker
mrkvctl=$build/apps/mrkvctl/mrkvctl
sequential=$build/apps/sequential/mrkv-sequential
gencorpus=$build/tests/tools/gencorpus/mrkv-gencorpus
bench_require_built "$coordinator" "$worker" "$mrkvctl" "$sequential" "$gencorpus"
export MRKV_APP_PATH=$build/apps/mapreduce
RUNS=${RUNS:-$([ $quick = 1 ] && echo 2 || echo 5)}
NREDUCE=${NREDUCE:-3}

work=$(mktemp -d "${TMPDIR:-/tmp}/mrkv-combiner.XXXXXX")
pids=()
cleanup() {
        # Only the processes this script started.
        [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
        wait 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${MRKV_BENCH_DATA:-}" ]; then
        inputs=("$(cd "$MRKV_BENCH_DATA" && pwd)"/pg-*.txt)
else
        mkdir "$work/in"
        "$gencorpus" --files 8 --size 600000 "$work/in" >/dev/null
        inputs=("$work"/in/pg-*.txt)
fi
mkdir "$work/seq" "$work/job" "$work/state"
(cd "$work/seq" && "$sequential" --plain wc "${inputs[@]}" && sort mr-out-0 >"$work/expected")

export MRKV_COORDINATOR_ADDRESS=unix:$work/coordinator.sock
"$coordinator" --listen "$MRKV_COORDINATOR_ADDRESS" --state-directory "$work/state" >"$work/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$work/coordinator.sock" ] && break; sleep 0.05; done
[ -S "$work/coordinator.sock" ] || { echo "the coordinator did not start" >&2; exit 1; }

cpu_ms() { # PID: user + sys of the process so far, in ms
        awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$1/stat"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
json_field() { # FILE EXPRESSION
        python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# One job, its outputs checked: appends "cpu-ms wall-ms" to $work/times-KEY and keeps
# its status in $work/status-KEY.json.
run_job() { # WORKER-PID KEY [SUBMIT-OPTION...]
        local wpid=$1 key=$2 before after t0 t1 id
        shift 2
        rm -f "$work"/job/mr-*
        before=$(cpu_ms "$wpid")
        t0=$(date +%s%N)
        id=$("$mrkvctl" submit wc "${inputs[@]}" --nreduce "$NREDUCE" --workdir "$work/job" --wait "$@")
        id=${id%%$'\n'*}
        t1=$(date +%s%N)
        after=$(cpu_ms "$wpid")
        "$mrkvctl" status --json "$id" >"$work/status-$key.json"
        [ "$(json_field "$work/status-$key.json" 'j["state"]')" = done ] || { echo "job $id failed" >&2; exit 1; }
        sort "$work"/job/mr-out-* | grep . | cmp -s - "$work/expected" || { echo "job $id's output differs" >&2; exit 1; }
        echo "$((after - before)) $(((t1 - t0) / 1000000))" >>"$work/times-$key"
}

printf '%-16s %-9s %14s %14s %14s %14s %12s %12s\n' "groups" "combiner" "shuffle_bytes" "combine_in" \
        "combine_out" "spilled" "worker_cpu_ms" "wall_ms"
for budget in default 64K; do
        opts=()
        [ $budget = default ] || opts=(--map-memory="$budget")
        "$worker" --serve "${opts[@]}" >"$work/worker-$budget.log" 2>&1 &
        wpid=$!
        pids+=($wpid)
        run_job $wpid warm # the texts in the page cache, the app loaded
        for _ in $(seq "$RUNS"); do
                run_job $wpid "$budget-with"
                run_job $wpid "$budget-without" --no-combine
        done
        for c in with without; do
                s=$work/status-$budget-$c.json
                counter() { json_field "$s" "j['counters'].get('$1', 0)"; }
                printf '%-16s %-9s %14s %14s %14s %14s %12s %12s\n' \
                        "$([ $budget = default ] && echo in-memory || echo "spilled ($budget)")" "$c" \
                        "$(counter shuffle_bytes)" "$(counter combine_input_records)" \
                        "$(counter combine_output_records)" "$(counter spilled_records)" \
                        "$(awk '{ print $1 }' "$work/times-$budget-$c" | median)" \
                        "$(awk '{ print $2 }' "$work/times-$budget-$c" | median)"
        done
        kill $wpid
done
echo "($RUNS runs of each, alternating; CPU and wall-clock times are medians)"
