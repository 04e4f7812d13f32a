#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Compares mrkv-kvserver with Redis on the same machine and transport (a Unix socket),
# closed loop, for 1, 16 and 50 connections, RUNS times each, and prints medians:
#
#   1. mrkv-kvbench Get/Put against mrkv-kvserver, and redis-benchmark GET/SET against
#      redis-server (each server with its usual load generator);
#   2. the same client, mrkv-kvbench (--redis speaks RESP), against both servers, since
#      the two load generators differ in cost and in when they start the clock;
#   and for every run the server's own CPU time per operation (user + system, from
#   /proc), which stays meaningful when other work shares the machine.
#
#   bench/kv/run.sh BUILD-DIR            full: 3 runs of 5 s per case, about 5 minutes;
#                                        writes bench/kv/results.md
#   bench/kv/run.sh BUILD-DIR --quick    1 run of 1 s, 1 and 16 connections; writes nothing
#
# It exits non-zero only when something broke (a server died, a client saw an error),
# never because a number is slow. Environment: RUNS, DURATION (seconds per
# mrkv-kvbench run), CONNECTIONS, KEYS (10000), VALUE_SIZE (100), MRKV_BENCH_RESULTS
# (where to write the results; default bench/kv/results.md for full runs), RAW=1 prints
# every run as it happens, PIN: "SERVER-CPU LOAD-CPU" (default "0 1" with 2 or more CPUs,
# "" to let the scheduler place them). Pinned, a run does not depend on whether the
# scheduler happened to put client and server on one CPU (cheap wakeups, but they share
# it) or on two; both servers get the same placement.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/../lib.sh"
bench_parse_args "$@"

server=$build/daemons/kvserver/mrkv-kvserver
bench=$build/daemons/kvserver/mrkv-kvbench
for f in "$server" "$bench"; do
        [ -x "$f" ] || { echo "missing $f: build first (meson compile -C $build)" >&2; exit 1; }
done
for p in redis-server redis-benchmark redis-cli python3; do
        command -v $p >/dev/null || { echo "missing $p (apt-get install redis-server redis-tools python3)" >&2; exit 1; }
done

if [ $quick = 1 ]; then
        RUNS=${RUNS:-1}
        DURATION=${DURATION:-1}
        CONNECTIONS=${CONNECTIONS:-"1 16"}
else
        RUNS=${RUNS:-3}
        DURATION=${DURATION:-5}
        CONNECTIONS=${CONNECTIONS:-"1 16 50"}
fi
KEYS=${KEYS:-10000}
VALUE_SIZE=${VALUE_SIZE:-100}
ticks=$(getconf CLK_TCK)
if [ -z "${PIN+set}" ]; then
        PIN=$([ "$(nproc)" -ge 2 ] && echo "0 1" || echo "")
fi
if [ -n "$PIN" ]; then
        read -r server_cpu load_cpu <<<"$PIN"
        on_server_cpu=(taskset -c "$server_cpu")
        on_load_cpu=(taskset -c "$load_cpu")
else
        on_server_cpu=()
        on_load_cpu=()
fi

source_dir=$(python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["directories"]["source"])' "$build/meson-info/meson-info.json" 2>/dev/null || echo "$root")
commit=$(git -C "$source_dir" rev-parse --short HEAD 2>/dev/null || echo "unknown (source $source_dir)")
# The build may hold edits not yet committed in what the benchmark runs: say so.
dirty=$(git -C "$source_dir" status --porcelain -- lib daemons/kvserver bench/kv 2>/dev/null |
        awk '{ print $2 }' | tr '\n' ' ' || true)
[ -z "$dirty" ] || commit="$commit + uncommitted changes in ${dirty% }"
date=$(date -u +%Y-%m-%dT%H:%MZ)
buildtype=$(python3 -c 'import json, sys
print(next(o["value"] for o in json.load(open(sys.argv[1])) if o["name"] == "buildtype"))' \
        "$build/meson-info/intro-buildoptions.json" 2>/dev/null || echo unknown)
load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
echo "kvbench: $date, nproc $(nproc), commit $commit, $build (buildtype $buildtype), load average $load_start, pinned: ${PIN:-no}"
[ "$buildtype" = release ] || echo "kvbench: note: measure with a -Dbuildtype=release build"
redis_version=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')

dir=$(mktemp -d "${TMPDIR:-/tmp}/mrkv-kvbench-XXXXXX")
pids=()
cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
        rm -rf "$dir"
}
trap cleanup EXIT

wait_for_socket() {
        for _ in $(seq 100); do
                [ -S "$1" ] && return 0
                sleep 0.1
        done
        echo "no socket at $1" >&2
        exit 1
}

# CPU time (user + system) of a process in clock ticks.
cpu_ticks() {
        awk '{ print $14 + $15 }' "/proc/$1/stat"
}

"${on_server_cpu[@]}" "$server" --listen "unix:$dir/kv.sock" --log-level=warning &
mrkv_pid=$!
pids+=("$mrkv_pid")
"${on_server_cpu[@]}" redis-server --port 0 --unixsocket "$dir/redis.sock" --save '' --appendonly no \
        --logfile "$dir/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
wait_for_socket "$dir/kv.sock"
wait_for_socket "$dir/redis.sock"

# Same key space and value size for both: every key redis-benchmark's -r picks
# ("key:%012d") exists before the GETs, as mrkv-kvbench creates its keys first.
python3 - "$KEYS" "$VALUE_SIZE" <<'PY' | redis-cli -s "$dir/redis.sock" --pipe >/dev/null
import sys
keys, size = int(sys.argv[1]), int(sys.argv[2])
value = b"x" * size
out = sys.stdout.buffer
for k in range(keys):
    key = b"key:%012d" % k
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value))
PY

results=$dir/results.csv
: >"$results"

# kvbench SERVER-NAME PID ADDRESS C OP [--redis]: one mrkv-kvbench run, one result line.
kvbench() {
        local name=$1 pid=$2 address=$3 c=$4 op=$5 line t0 t1 rate p50 p99 errors ops
        shift 5
        t0=$(cpu_ticks "$pid")
        line=$("${on_load_cpu[@]}" "$bench" -a "$address" -c "$c" -d "$DURATION" -t "$op" -k "$KEYS" -s "$VALUE_SIZE" --csv "$@")
        t1=$(cpu_ticks "$pid")
        # op,connections,ops,seconds,ops_per_sec,p50_us,p99_us,p999_us,max_us,errors
        IFS=, read -r _ _ ops _ rate p50 p99 _ _ errors <<<"$line"
        [ "$errors" = 0 ] || { echo "mrkv-kvbench against $name reported $errors errors" >&2; exit 1; }
        # CPU includes the unmeasured warm-up (0.5 s); scale by the ops of the whole run.
        echo "$name,$c,$op,$rate,$p50,$p99,$t0,$t1,$ops" >>"$results"
        [ "${RAW:-0}" = 1 ] && echo "$name $op c=$c: $line" >&2
        echo "$rate"
}

for run in $(seq "$RUNS"); do
        for c in $CONNECTIONS; do
                for op in get put; do
                        rate=$(kvbench mrkv "$mrkv_pid" "unix:$dir/kv.sock" "$c" "$op")
                        kvbench redis-same-client "$redis_pid" "unix:$dir/redis.sock" "$c" "$op" --redis >/dev/null

                        # As many requests as mrkv did, so both run for about the same time.
                        n=$(awk -v r="$rate" -v d="$DURATION" 'BEGIN { n = int(r * d); print n < 1000 ? 1000 : n }')
                        rop=$([ "$op" = get ] && echo get || echo set)
                        t0=$(cpu_ticks "$redis_pid")
                        # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
                        rline=$("${on_load_cpu[@]}" redis-benchmark -s "$dir/redis.sock" -t "$rop" -c "$c" -n "$n" -r "$KEYS" \
                                -d "$VALUE_SIZE" -P 1 --csv | tail -n 1 | tr -d '"')
                        t1=$(cpu_ticks "$redis_pid")
                        IFS=, read -r _ rrate _ _ rp50 _ rp99 _ <<<"$rline"
                        awk -v c="$c" -v op="$op" -v r="$rrate" -v p50="$rp50" -v p99="$rp99" -v t0="$t0" \
                                -v t1="$t1" -v n="$n" \
                                'BEGIN { printf "redis-benchmark,%s,%s,%s,%.1f,%.1f,%s,%s,%s\n", c, op, r, p50 * 1000, p99 * 1000, t0, t1, n }' \
                                >>"$results"
                        [ "${RAW:-0}" = 1 ] && echo "redis-benchmark $rop c=$c: $rline" >&2
                done
        done
done

# Both servers must have lived through it all.
kill -0 "$mrkv_pid" && kill -0 "$redis_pid" || { echo "a server died during the benchmark" >&2; exit 1; }

table=$(python3 - "$results" "$RUNS" "$ticks" "$DURATION" <<'PY'
import csv, statistics, sys

path, runs, ticks, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
rows = {}
for who, c, op, rate, p50, p99, t0, t1, ops in csv.reader(open(path)):
    # mrkv-kvbench counts ops only after its 0.5 s warm-up; the CPU covers all of the run.
    total = int(ops) * (duration + 0.5) / duration if who != 'redis-benchmark' else int(ops)
    cpu_us = (int(t1) - int(t0)) * 1e6 / ticks / total if total else 0
    rows.setdefault((int(c), op, who), []).append((float(rate), float(p50), float(p99), cpu_us))

def med(who, c, op, i):
    return statistics.median(x[i] for x in rows[(c, op, who)])

keys = sorted({(c, op) for c, op, _ in rows})

def table(other, title):
    print(f"{title}\n")
    print("| connections | op | mrkv ops/s | Redis ops/s | mrkv / Redis | mrkv p50 / p99 (us) "
          "| Redis p50 / p99 (us) | server CPU per op, mrkv / Redis (us) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c, op in keys:
        m = [med('mrkv', c, op, i) for i in range(4)]
        r = [med(other, c, op, i) for i in range(4)]
        rop = 'GET' if op == 'get' else 'SET'
        print(f"| {c} | {op.capitalize()} / {rop} | {m[0]:.0f} | {r[0]:.0f} | {m[0] / r[0]:.2f} "
              f"| {m[1]:.1f} / {m[2]:.1f} | {r[1]:.1f} / {r[2]:.1f} | {m[3]:.2f} / {r[3]:.2f} |")
    print()

table('redis-benchmark', "mrkv-kvbench against mrkv-kvserver, redis-benchmark against redis-server "
      f"(medians of {runs} runs):")
table('redis-same-client', "The same client, mrkv-kvbench (`--redis` for Redis), against both:")

print("| target (from the issue: mrkv-kvbench vs redis-benchmark) | measured | |")
print("| --- | --- | --- |")
for c, op in keys:
    m_rate, r_rate = med('mrkv', c, op, 0), med('redis-benchmark', c, op, 0)
    m_p99, r_p99 = med('mrkv', c, op, 2), med('redis-benchmark', c, op, 2)
    name = f"{op.capitalize()} at {c} connection{'s' if c > 1 else ''}"
    print(f"| {name}: throughput >= Redis | {m_rate / r_rate:.2f}x | {'met' if m_rate >= r_rate else 'missed'} |")
    print(f"| {name}: p99 <= Redis | {m_p99:.0f} us vs {r_p99:.0f} us | {'met' if m_p99 <= r_p99 else 'missed'} |")
PY
)

echo
echo "$table"

results=${MRKV_BENCH_RESULTS:-}
[ -z "$results" ] && [ $quick = 0 ] && results=$here/results.md
if [ -n "$results" ]; then
        {
                echo "# Key/value benchmark results"
                echo
                echo "Written by \`bench/kv/run.sh\`$([ $quick = 1 ] && echo " --quick")." \
                        "Closed loop over a Unix socket: every connection has one call in flight." \
                        "$KEYS keys of ${VALUE_SIZE}-byte values, created before the runs; random keys." \
                        "Latency from sending a call to reading its whole reply. Server CPU: user + system" \
                        "time of the server process from /proc, divided by the operations it served."
                echo
                echo "- date: $date"
                echo "- nproc: $(nproc)"
                echo "- build: buildtype $buildtype"
                echo "- load average (1, 5, 15 min) at the start: $load_start; at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
                echo "- commit: $commit"
                echo "- CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
                echo "- Redis: redis-server $redis_version, --save '' --appendonly no"
                echo "- CPUs (server, load generator): ${PIN:-not pinned}"
                echo
                echo "$table"
        } >"$results"
        echo
        echo "kvbench: wrote $results"
fi
