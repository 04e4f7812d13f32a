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
#   bench/kv/run.sh [BUILD-DIR]        (default: build)
#
# Environment: RUNS (3), DURATION seconds per mrkv-kvbench run (5), CONNECTIONS
# ("1 16 50"), KEYS (10000), VALUE_SIZE (100), RAW=1 prints every run as it happens.
set -euo pipefail

build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
case $build in /*) ;; *) build=$root/$build ;; esac

server=$build/daemons/kvserver/mrkv-kvserver
bench=$build/daemons/kvserver/mrkv-kvbench
for f in "$server" "$bench"; do
        [ -x "$f" ] || { echo "missing $f: build first (meson compile -C $build)" >&2; exit 1; }
done
for p in redis-server redis-benchmark redis-cli python3; do
        command -v $p >/dev/null || { echo "missing $p (apt-get install redis-server redis-tools python3)" >&2; exit 1; }
done

RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-"1 16 50"}
KEYS=${KEYS:-10000}
VALUE_SIZE=${VALUE_SIZE:-100}
ticks=$(getconf CLK_TCK)

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

"$server" --listen "unix:$dir/kv.sock" --log-level=warning &
mrkv_pid=$!
pids+=("$mrkv_pid")
redis-server --port 0 --unixsocket "$dir/redis.sock" --save '' --appendonly no \
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
        line=$("$bench" -a "$address" -c "$c" -d "$DURATION" -t "$op" -k "$KEYS" -s "$VALUE_SIZE" --csv "$@")
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
                        rline=$(redis-benchmark -s "$dir/redis.sock" -t "$rop" -c "$c" -n "$n" -r "$KEYS" \
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

python3 - "$results" "$RUNS" "$ticks" "$DURATION" <<'PY'
import csv, statistics, sys

path, runs, ticks, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
rows = {}
for who, c, op, rate, p50, p99, t0, t1, ops in csv.reader(open(path)):
    rate = float(rate)
    # kvbench counts ops only after its 0.5 s warm-up, the CPU covers all of the run.
    total = int(ops) * (duration + 0.5) / duration if who != 'redis-benchmark' else int(ops)
    cpu_us = (int(t1) - int(t0)) * 1e6 / ticks / total if total else 0
    rows.setdefault((int(c), op, who), []).append((rate, float(p50), float(p99), cpu_us))

def med(v, i):
    return statistics.median(x[i] for x in v)

keys = sorted({(c, op) for c, op, _ in rows})

def table(title, a, b, an, bn):
    print(title)
    print(f"{'conns':>5} {'op':>4} {an + ' ops/s':>16} {bn + ' ops/s':>16} {'ratio':>6} "
          f"{an + ' p50/p99 us':>19} {bn + ' p50/p99 us':>19} {'cpu us/op ' + an + '/' + bn:>22}")
    for c, op in keys:
        x, y = rows[(c, op, a)], rows[(c, op, b)]
        print(f"{c:>5} {op:>4} {med(x,0):>16.0f} {med(y,0):>16.0f} {med(x,0)/med(y,0):>6.2f} "
              f"{med(x,1):>9.1f}/{med(x,2):<9.1f} {med(y,1):>9.1f}/{med(y,2):<9.1f} "
              f"{med(x,3):>11.2f}/{med(y,3):<10.2f}")
    print()

print(f"medians of {runs} runs, {duration:g} s each; redis op get = GET, put = SET\n")
table("mrkv-kvbench -> mrkv-kvserver  vs  redis-benchmark -> redis-server", 'mrkv', 'redis-benchmark', 'mrkv', 'redis')
table("same client (mrkv-kvbench, --redis for Redis)", 'mrkv', 'redis-same-client', 'mrkv', 'redis')
PY
