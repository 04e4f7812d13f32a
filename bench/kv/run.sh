#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Compares mrkv-kvserver with Redis and etcd on the same machine, closed loop, for 1, 16
# and 50 connections, RUNS times each, interleaved, and prints medians:
#
#   memory    mrkv-kvbench Get/Put against mrkv-kvserver; redis-benchmark GET/SET and
#             mrkv-kvbench --redis (the same client, speaking RESP) against Redis without
#             persistence; one call in flight per connection;
#   pipeline  the same with 16 calls in flight per connection (mrkv-kvbench -P 16,
#             redis-benchmark -P 16);
#   durable   Put against mrkv-kvserver --sync=always, Redis with appendonly yes and
#             appendfsync always (mrkv-kvbench --redis and redis-benchmark) and etcd
#             (mrkv-kvbench --etcd: a txn comparing mod_revision, then put), state on one
#             file system; the same Put with PIPELINE calls in flight per connection
#             (also redis-benchmark -P); Get of --sync=always against --sync=none; Put of
#             --sync=interval:1000 against --sync=none;
#   restart   the time from exec to the first answered Get with RESTART_KEYS keys on disk,
#             after SIGKILL and after SIGTERM, for mrkv and for Redis (appendfsync always);
#   snapshot  the latency of Puts while a snapshot of RESTART_KEYS keys is written, and
#             without one.
#
# Every run also gives the server's own CPU time per operation (user + system of all its
# threads, from /proc), which stays meaningful when other work shares the machine.
#
#   bench/kv/run.sh BUILD-DIR            full: 3 runs of 3 s per case, about 15 minutes;
#                                        writes bench/kv/results.md
#   bench/kv/run.sh BUILD-DIR --quick    1 run of 1 s, 1 and 16 connections, 100,000 keys
#                                        for the restart; writes nothing
#
# It exits non-zero only when something broke (a server died, a client saw an error),
# never because a number is slow; 77 (skipped) in --quick mode when Redis is missing.
# The durable sections need an mrkv-kvserver with --sync (they are skipped otherwise) and
# etcd (package etcd-server; its runs are skipped without it). Environment: RUNS,
# DURATION (seconds per mrkv-kvbench run), CONNECTIONS, KEYS (10000), VALUE_SIZE (100),
# PIPELINE (16), RESTART_KEYS (1000000), SECTIONS ("memory pipeline durable restart
# snapshot"), SNAPSHOT_DURATION (seconds of the snapshot runs, 5),
# MRKV_BENCH_STATE (where the durable servers keep their state, default /var/tmp: a disk,
# not tmpfs), MRKV_BENCH_RESULTS (where to write the results; default
# bench/kv/results.md for full runs), RAW=1 prints every run as it happens, PIN:
# "SERVER-CPU LOAD-CPU" (default "0 1" with 2 or more CPUs, "" to let the scheduler place
# them). Pinned, a run does not depend on whether the scheduler happened to put client
# and server on one CPU or on two; every server gets the same placement.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/../lib.sh"
bench_parse_args "$@"

server=$build/daemons/kvserver/mrkv-kvserver
bench=$build/daemons/kvserver/mrkv-kvbench
bench_require_built "$server" "$bench"
for p in redis-server redis-benchmark python3; do
        if ! command -v $p >/dev/null; then
                echo "missing $p (tools/deps.sh bench, or apt-get install redis-server redis-tools python3)" >&2
                [ $quick = 1 ] && exit 77 # skipped, for meson test --benchmark
                exit 1
        fi
done

if [ $quick = 1 ]; then
        RUNS=${RUNS:-1}
        DURATION=${DURATION:-1}
        CONNECTIONS=${CONNECTIONS:-"1 16"}
        RESTART_KEYS=${RESTART_KEYS:-100000}
else
        RUNS=${RUNS:-3}
        DURATION=${DURATION:-3}
        CONNECTIONS=${CONNECTIONS:-"1 16 50"}
        RESTART_KEYS=${RESTART_KEYS:-1000000}
fi
KEYS=${KEYS:-10000}
VALUE_SIZE=${VALUE_SIZE:-100}
PIPELINE=${PIPELINE:-16}
SECTIONS=${SECTIONS:-"memory pipeline durable restart snapshot"}
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
section() { [[ " $SECTIONS " == *" $1 "* ]]; }

durable=0
"$server" --help | grep -q -- '--sync' && durable=1
have_etcd=0
command -v etcd >/dev/null && have_etcd=1

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
[ $durable = 1 ] || echo "kvbench: note: $server has no --sync option: durable and restart runs skipped"
[ $have_etcd = 1 ] || echo "kvbench: note: no etcd (tools/deps.sh bench): etcd runs skipped"
redis_version=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
etcd_version=$([ $have_etcd = 1 ] && etcd --version | sed -n 's/^etcd Version: //p' || echo none)

dir=$(mktemp -d "${TMPDIR:-/tmp}/mrkv-kvbench-XXXXXX")
state=$(mktemp -d "${MRKV_BENCH_STATE:-/var/tmp}/mrkv-kvbench-state-XXXXXX")
state_fs="$(findmnt -n -o FSTYPE -T "$state" 2>/dev/null || stat -f -c %T "$state") on $(df -P "$state" |
        awk 'NR == 2 { print $1 " (mounted on " $6 ")" }')"
case $state_fs in
tmpfs* | ramfs*) echo "kvbench: note: $state is on $state_fs: syncs cost nothing there (MRKV_BENCH_STATE=DIR on a disk)" ;;
esac
declare -A pid addr proto
all_pids=()
cleanup() {
        for p in "${all_pids[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${all_pids[@]}"; do wait "$p" 2>/dev/null || true; done
        rm -rf "$dir" "$state"
}
trap cleanup EXIT

wait_for_socket() {
        for _ in $(seq 300); do
                [ -S "$1" ] && return 0
                sleep 0.1
        done
        echo "no socket at $1" >&2
        exit 1
}

# CPU time (user + system, all threads) of a process in clock ticks.
cpu_ticks() {
        awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# start NAME PROTO ADDRESS COMMAND...: a server on the server CPU. etcd's log (its gateway
# complains when the server goes away under it at the end) goes to a file.
start() {
        local name=$1 log=/dev/stderr
        proto[$name]=$2
        addr[$name]=$3
        shift 3
        [ "${proto[$name]}" = etcd ] && log=$dir/$name.log
        "${on_server_cpu[@]}" "$@" 2>>"$log" &
        pid[$name]=$!
        all_pids+=("$!")
}

# Two free TCP ports on the loopback for etcd (client, peer).
free_ports() {
        python3 -c 'import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))'
}

wait_for_etcd() { # PORT
        for _ in $(seq 300); do
                python3 -c 'import sys, urllib.request
sys.exit(0 if b"true" in urllib.request.urlopen(sys.argv[1], timeout=1).read() else 1)' \
                        "http://127.0.0.1:$1/health" 2>/dev/null && return 0
                sleep 0.1
        done
        echo "etcd did not become healthy on port $1" >&2
        exit 1
}

mrkv_none_args=()
[ $durable = 1 ] && mrkv_none_args=(--sync=none --state-directory "$state/mrkv-none")
start mrkv varlink "unix:$dir/kv.sock" \
        "$server" --listen "unix:$dir/kv.sock" --log-level=warning "${mrkv_none_args[@]}"
start redis redis "unix:$dir/redis.sock" \
        redis-server --port 0 --unixsocket "$dir/redis.sock" --save '' --appendonly no --logfile "$dir/redis.log"
wait_for_socket "$dir/kv.sock"
wait_for_socket "$dir/redis.sock"

if [ $durable = 1 ] && section durable; then
        start mrkv-always varlink "unix:$dir/kv-always.sock" \
                "$server" --listen "unix:$dir/kv-always.sock" --log-level=warning \
                --sync=always --state-directory "$state/mrkv-always"
        start mrkv-interval varlink "unix:$dir/kv-interval.sock" \
                "$server" --listen "unix:$dir/kv-interval.sock" --log-level=warning \
                --sync=interval:1000 --state-directory "$state/mrkv-interval"
        # The pairs compared here get the same load, unlike the in-memory server of the
        # other sections, whose log grows with their Puts.
        start mrkv-none varlink "unix:$dir/kv-none.sock" \
                "$server" --listen "unix:$dir/kv-none.sock" --log-level=warning \
                --sync=none --state-directory "$state/mrkv-none-durable"
        mkdir "$state/redis-always"
        start redis-always redis "unix:$dir/redis-always.sock" \
                redis-server --port 0 --unixsocket "$dir/redis-always.sock" --save '' --appendonly yes \
                --appendfsync always --dir "$state/redis-always" --logfile "$dir/redis-always.log"
        wait_for_socket "$dir/kv-always.sock"
        wait_for_socket "$dir/kv-interval.sock"
        wait_for_socket "$dir/kv-none.sock"
        wait_for_socket "$dir/redis-always.sock"
        if [ $have_etcd = 1 ]; then
                read -r etcd_port etcd_peer_port <<<"$(free_ports)"
                # One member, defaults otherwise: a WAL fsynced before every reply. Go sizes
                # its scheduler by the CPUs it may use at start; it gets all, so that the
                # runs with etcd on every CPU (below) can use them.
                start etcd etcd "tcp:127.0.0.1:$etcd_port" \
                        env GOMAXPROCS="$(nproc)" etcd --name kvbench --data-dir "$state/etcd" --log-level error \
                        --listen-client-urls "http://127.0.0.1:$etcd_port" \
                        --advertise-client-urls "http://127.0.0.1:$etcd_port" \
                        --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
                        --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
                        --initial-cluster "kvbench=http://127.0.0.1:$etcd_peer_port"
                wait_for_etcd "$etcd_port"
                # The same server, for runs with all its threads allowed on every CPU.
                pid[etcd-all-cpus]=${pid[etcd]}
                addr[etcd-all-cpus]=${addr[etcd]}
                proto[etcd-all-cpus]=etcd
        fi
fi

results=$dir/results.csv
loads=$dir/load.txt
: >"$results"
: >"$loads"

note_load() {
        cut -d ' ' -f 1 /proc/loadavg >>"$loads"
}

# kvbench SECTION NAME C OP P [ARGS...]: one mrkv-kvbench run against server NAME, one
# result line; prints the rate.
kvbench() {
        local section=$1 name=$2 c=$3 op=$4 p=$5 line rate p50 p99 errors cpu flag=()
        shift 5
        case ${proto[$name]} in
        redis) flag=(--redis) ;;
        etcd) flag=(--etcd) ;;
        esac
        note_load
        line=$("${on_load_cpu[@]}" "$bench" "${flag[@]}" -a "${addr[$name]}" -c "$c" -P "$p" -d "$DURATION" \
                -t "$op" -k "$KEYS" -s "$VALUE_SIZE" --server-pid "${pid[$name]}" --csv "$@")
        # op,connections,ops,seconds,ops_per_sec,p50_us,p99_us,p999_us,max_us,errors,server_cpu_us_per_op
        IFS=, read -r _ _ _ _ rate p50 p99 _ _ errors cpu <<<"$line"
        [ "$errors" = 0 ] || { echo "mrkv-kvbench against $name reported $errors errors" >&2; exit 1; }
        echo "$section,$name,kvbench,$c,$op,$p,$rate,$p50,$p99,${cpu:-0}" >>"$results"
        [ "${RAW:-0}" = 1 ] && echo "$section: $name $op c=$c P=$p: $line" >&2
        echo "$rate"
}

# redis_benchmark SECTION NAME C OP P N: one redis-benchmark run of N requests.
redis_benchmark() {
        local section=$1 name=$2 c=$3 op=$4 p=$5 n=$6 t0 t1 rline rrate rp50 rp99 rop='set'
        [ "$op" = get ] && rop='get'
        note_load
        t0=$(cpu_ticks "${pid[$name]}")
        # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
        rline=$("${on_load_cpu[@]}" redis-benchmark -s "${addr[$name]#unix:}" -t "$rop" -c "$c" -n "$n" -r "$KEYS" \
                -d "$VALUE_SIZE" -P "$p" --csv | tail -n 1 | tr -d '"')
        t1=$(cpu_ticks "${pid[$name]}")
        IFS=, read -r _ rrate _ _ rp50 _ rp99 _ <<<"$rline"
        awk -v s="$section" -v name="$name" -v c="$c" -v op="$op" -v p="$p" -v r="$rrate" -v p50="$rp50" \
                -v p99="$rp99" -v t0="$t0" -v t1="$t1" -v n="$n" -v ticks="$ticks" \
                'BEGIN { printf "%s,%s,redis-benchmark,%s,%s,%s,%s,%.1f,%.1f,%.2f\n", s, name, c, op, p, r,
                         p50 * 1000, p99 * 1000, (t1 - t0) * 1e6 / ticks / n }' >>"$results"
        [ "${RAW:-0}" = 1 ] && echo "$section: redis-benchmark $name $rop c=$c P=$p: $rline" >&2
        return 0
}

# As many requests as RATE ops/s for DURATION: about as long as the mrkv-kvbench runs.
requests_for() {
        awk -v r="$1" -v d="$DURATION" 'BEGIN { n = int(r * d); print n < 1000 ? 1000 : n }'
}

for _ in $(seq "$RUNS"); do
        for c in $CONNECTIONS; do
                for op in get put; do
                        if section memory; then
                                kvbench memory mrkv "$c" "$op" 1 >/dev/null
                                rate=$(kvbench memory redis "$c" "$op" 1)
                                redis_benchmark memory redis "$c" "$op" 1 "$(requests_for "$rate")"
                        fi
                        if section pipeline; then
                                kvbench pipeline mrkv "$c" "$op" "$PIPELINE" >/dev/null
                                rate=$(kvbench pipeline redis "$c" "$op" "$PIPELINE")
                                redis_benchmark pipeline redis "$c" "$op" "$PIPELINE" "$(requests_for "$rate")"
                        fi
                done
                if [ $durable = 1 ] && section durable; then
                        kvbench durable mrkv-always "$c" put 1 >/dev/null
                        rate=$(kvbench durable redis-always "$c" put 1)
                        redis_benchmark durable redis-always "$c" put 1 "$(requests_for "$rate")"
                        if [ $have_etcd = 1 ]; then
                                kvbench durable etcd "$c" put 1 >/dev/null
                                # etcd is written to use several cores (its gateway alone
                                # costs more CPU than a sync): also measure it unpinned.
                                if [ -n "$PIN" ]; then
                                        taskset -a -p -c "0-$(($(nproc) - 1))" "${pid[etcd]}" >/dev/null
                                        kvbench durable etcd-all-cpus "$c" put 1 >/dev/null
                                        taskset -a -p -c "$server_cpu" "${pid[etcd]}" >/dev/null
                                fi
                        fi
                        kvbench durable mrkv-always "$c" put "$PIPELINE" >/dev/null
                        rate=$(kvbench durable redis-always "$c" put "$PIPELINE")
                        redis_benchmark durable redis-always "$c" put "$PIPELINE" "$(requests_for "$rate")"
                        kvbench durable mrkv-always "$c" get 1 >/dev/null
                        kvbench durable mrkv-none "$c" get 1 >/dev/null
                        kvbench durable mrkv-interval "$c" put 1 >/dev/null
                        kvbench durable mrkv-none "$c" put 1 >/dev/null
                fi
        done
done

# Every server must have lived through it all.
for name in "${!pid[@]}"; do
        kill -0 "${pid[$name]}" 2>/dev/null || { echo "$name died during the benchmark" >&2; exit 1; }
done

# restart NAME ARGS...: fills a fresh server with RESTART_KEYS keys, kills it with SIGKILL,
# then times its start RUNS + 1 times: the first after the SIGKILL, the others after the
# SIGTERM with which mrkv-kvbench --startup-time stops it.
restarts=$dir/restarts.csv
: >"$restarts"
restart() {
        local name=$1 flag=() ms kind
        shift
        [ "${proto[$name]}" = redis ] && flag=(--redis)
        "${on_load_cpu[@]}" "$bench" "${flag[@]}" -a "${addr[$name]}" -k "$RESTART_KEYS" -s "$VALUE_SIZE" \
                -t get -c 1 -w 0 -d 0.1 >/dev/null
        kill -KILL "${pid[$name]}"
        wait "${pid[$name]}" 2>/dev/null || true
        for i in $(seq 0 "$RUNS"); do
                kind=$([ "$i" = 0 ] && echo SIGKILL || echo SIGTERM)
                note_load
                ms=$("${on_load_cpu[@]}" "$bench" "${flag[@]}" -a "${addr[$name]}" -k "$RESTART_KEYS" --csv \
                        --startup-time -- "${on_server_cpu[@]}" "$@")
                echo "$name,$kind,$ms,$(du -sb "$state/$name" | cut -f 1)" >>"$restarts"
                [ "${RAW:-0}" = 1 ] && echo "restart: $name after $kind: $ms ms" >&2
        done
        find "$state/$name" -type f -printf "$name %P %s\n" | sort >>"$dir/restart-files.txt"
}
if [ $durable = 1 ] && section restart; then
        : >"$dir/restart-files.txt"
        mrkv_restart=("$server" --listen "unix:$dir/kv-restart.sock" --log-level=warning
                --sync=always --state-directory "$state/mrkv-restart")
        start mrkv-restart varlink "unix:$dir/kv-restart.sock" "${mrkv_restart[@]}"
        wait_for_socket "$dir/kv-restart.sock"
        restart mrkv-restart "${mrkv_restart[@]}"

        mkdir "$state/redis-restart"
        redis_restart=(redis-server --port 0 --unixsocket "$dir/redis-restart.sock" --save '' --appendonly yes
                --appendfsync always --dir "$state/redis-restart" --logfile "$dir/redis-restart.log")
        start redis-restart redis "unix:$dir/redis-restart.sock" "${redis_restart[@]}"
        wait_for_socket "$dir/redis-restart.sock"
        restart redis-restart "${redis_restart[@]}"
fi

# snapshot: what writing a snapshot of RESTART_KEYS keys costs the clients of a busy
# server. A server is filled and stopped (its log then holds every key, no snapshot),
# then started twice under a Put load of 16 connections: once with --snapshot-log-size=0
# (no snapshot) and once with the default, over which the loaded log is, so that its
# first Put starts a snapshot of every key: fork(), then a child writes while the server
# answers on. The longest answer and p99.9 of each run tell the difference.
snapshots=$dir/snapshots.csv
: >"$snapshots"
# snapshot_run KIND SNAPSHOT-LOG-SIZE: one run, one line in $snapshots.
snapshot_run() {
        local kind=$1 log=$dir/snapshot-$1.log line written
        rm -f "$dir/kv-snap.sock"
        start "mrkv-snap-$kind" varlink "unix:$dir/kv-snap.sock" \
                "${mrkv_snap[@]}" --snapshot-log-size="$2" 2>"$log"
        wait_for_socket "$dir/kv-snap.sock"
        line=$("${on_load_cpu[@]}" "$bench" -a "unix:$dir/kv-snap.sock" -k "$RESTART_KEYS" -s "$VALUE_SIZE" \
                -t put -c 16 -w 0 -d "$SNAPSHOT_DURATION" --server-pid "${pid[mrkv-snap-$kind]}" --csv)
        kill -TERM "${pid[mrkv-snap-$kind]}"
        wait "${pid[mrkv-snap-$kind]}" 2>/dev/null || true
        written=$(grep -c 'Snapshot of record .* written' "$log" || true)
        echo "$kind,$line,$written" >>"$snapshots"
        [ "${RAW:-0}" = 1 ] && echo "snapshot: $kind: $line, $written snapshots written" >&2
        return 0
}
if [ $durable = 1 ] && section snapshot; then
        SNAPSHOT_DURATION=${SNAPSHOT_DURATION:-5}
        mrkv_snap=("$server" --listen "unix:$dir/kv-snap.sock" --sync=always --state-directory "$state/mrkv-snap")
        start mrkv-snap-fill varlink "unix:$dir/kv-snap.sock" "${mrkv_snap[@]}" --snapshot-log-size=0
        wait_for_socket "$dir/kv-snap.sock"
        "${on_load_cpu[@]}" "$bench" -a "unix:$dir/kv-snap.sock" -k "$RESTART_KEYS" -s "$VALUE_SIZE" \
                -t get -c 1 -w 0 -d 0.1 >/dev/null
        kill -TERM "${pid[mrkv-snap-fill]}"
        wait "${pid[mrkv-snap-fill]}" 2>/dev/null || true
        snapshot_run without 0
        snapshot_run with 64M
fi

load_end=$(cut -d ' ' -f 1-3 /proc/loadavg)
load_runs=$(sort -g "$loads" | awk '{ v[NR] = $1 } END { if (NR) printf "%s to %s (median %s)", v[1], v[NR], v[int((NR + 1) / 2)] }')

table=$(python3 - "$results" "$restarts" "$RUNS" "$PIPELINE" "$RESTART_KEYS" "$VALUE_SIZE" "$snapshots" <<'PY'
import csv, statistics, sys

path, restarts_path, runs, pipeline = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
restart_keys, value_size = int(sys.argv[5]), int(sys.argv[6])
snapshots_path = sys.argv[7]
rows = {}
for section, server, client, c, op, p, rate, p50, p99, cpu in csv.reader(open(path)):
    rows.setdefault((section, server, client, int(c), op, int(p)), []).append(
        (float(rate), float(p50), float(p99), float(cpu)))

def med(section, server, client, c, op, p, i=0):
    v = rows.get((section, server, client, c, op, p))
    return statistics.median(x[i] for x in v) if v else None

def has(section):
    return any(k[0] == section for k in rows)

conns = sorted({k[3] for k in rows})
targets = []

def ratio(a, b):
    return a / b if a is not None and b else None

def fmt(v, spec='.0f'):
    return '-' if v is None else format(v, spec)

def lat(section, server, client, c, op, p):
    return f"{fmt(med(section, server, client, c, op, p, 1), '.0f')} / {fmt(med(section, server, client, c, op, p, 2), '.0f')}"

def target(name, value, goal):
    met = '-' if value is None else 'met' if value >= goal else 'missed'
    # Enough digits that a miss never reads as the goal itself.
    shown = fmt(value, '.3f' if value is not None and f"{value:.2f}" == f"{goal:.2f}" else '.2f')
    targets.append(f"| {name} | {shown}{'' if value is None else 'x'} | {met} |")

def memory_table(section, p, other, title):
    print(f"{title}\n")
    print("| connections | op | mrkv ops/s | Redis ops/s | mrkv / Redis | mrkv p50 / p99 (us) "
          "| Redis p50 / p99 (us) | server CPU per op, mrkv / Redis (us) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in conns:
        for op in ('get', 'put'):
            m = med(section, 'mrkv', 'kvbench', c, op, p)
            r = med(section, 'redis', other, c, op, p)
            if m is None or r is None:
                continue
            rop = 'GET' if op == 'get' else 'SET'
            print(f"| {c} | {op.capitalize()} / {rop} | {m:.0f} | {r:.0f} | {m / r:.2f} "
                  f"| {lat(section, 'mrkv', 'kvbench', c, op, p)} | {lat(section, 'redis', other, c, op, p)} "
                  f"| {med(section, 'mrkv', 'kvbench', c, op, p, 3):.2f} / {med(section, 'redis', other, c, op, p, 3):.2f} |")
    print()

if has('memory'):
    memory_table('memory', 1, 'redis-benchmark', "In memory, one call in flight per connection: mrkv-kvbench against "
                 "mrkv-kvserver, redis-benchmark against redis-server (medians of " + runs + " runs):")
    memory_table('memory', 1, 'kvbench', "The same client, mrkv-kvbench (`--redis` for Redis), against both:")
    for c in conns:
        target(f"in memory, Get at {c} connection{'s' if c > 1 else ''}, same client: >= 1.0x Redis",
               ratio(med('memory', 'mrkv', 'kvbench', c, 'get', 1), med('memory', 'redis', 'kvbench', c, 'get', 1)), 1.0)

if has('pipeline'):
    print(f"Pipelined, {pipeline} calls in flight per connection: mrkv-kvbench -P {pipeline} against both "
          f"servers, redis-benchmark -P {pipeline} against Redis (ops/s):\n")
    print(f"| connections | op | mrkv | Redis, same client | Redis, redis-benchmark | mrkv / Redis same client "
          f"| mrkv / redis-benchmark | p99 (us) mrkv / Redis / redis-benchmark | server CPU per op, mrkv / Redis (us) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in conns:
        for op in ('get', 'put'):
            m = med('pipeline', 'mrkv', 'kvbench', c, op, pipeline)
            r = med('pipeline', 'redis', 'kvbench', c, op, pipeline)
            rb = med('pipeline', 'redis', 'redis-benchmark', c, op, pipeline)
            if m is None:
                continue
            print(f"| {c} | {op.capitalize()} | {m:.0f} | {fmt(r)} | {fmt(rb)} | {fmt(ratio(m, r), '.2f')} "
                  f"| {fmt(ratio(m, rb), '.2f')} | {fmt(med('pipeline', 'mrkv', 'kvbench', c, op, pipeline, 2))} / "
                  f"{fmt(med('pipeline', 'redis', 'kvbench', c, op, pipeline, 2))} / "
                  f"{fmt(med('pipeline', 'redis', 'redis-benchmark', c, op, pipeline, 2))} "
                  f"| {med('pipeline', 'mrkv', 'kvbench', c, op, pipeline, 3):.2f} / "
                  f"{fmt(med('pipeline', 'redis', 'kvbench', c, op, pipeline, 3), '.2f')} |")
            target(f"pipelined (P = {pipeline}), {op.capitalize()} at {c} connection{'s' if c > 1 else ''}: "
                   f">= 1.0x redis-benchmark -P {pipeline}", ratio(m, rb), 1.0)
    print()

if has('durable'):
    print("Durable Put: mrkv-kvserver --sync=always (versioned Put), Redis appendonly yes + appendfsync "
          "always (SET, no compare), etcd (txn: compare mod_revision, then put) on the servers' CPU and on "
          "all CPUs; ops/s:\n")
    print("| connections | mrkv always | Redis always, same client | Redis always, redis-benchmark | etcd CAS "
          "| etcd CAS, all CPUs | mrkv / Redis | mrkv / etcd (servers' CPU, all CPUs) "
          "| p99 (us) mrkv / Redis / etcd / etcd all CPUs | server CPU per op, mrkv / Redis / etcd / etcd all CPUs (us) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    servers = ('mrkv-always', 'redis-always', 'etcd', 'etcd-all-cpus')
    for c in conns:
        m, r, e, ea = (med('durable', x, 'kvbench', c, 'put', 1) for x in servers)
        rb = med('durable', 'redis-always', 'redis-benchmark', c, 'put', 1)
        if m is None:
            continue
        p99 = ' / '.join(fmt(med('durable', x, 'kvbench', c, 'put', 1, 2)) for x in servers)
        cpu = ' / '.join(fmt(med('durable', x, 'kvbench', c, 'put', 1, 3), '.1f') for x in servers)
        print(f"| {c} | {m:.0f} | {fmt(r)} | {fmt(rb)} | {fmt(e)} | {fmt(ea)} | {fmt(ratio(m, r), '.2f')} "
              f"| {fmt(ratio(m, e), '.2f')}, {fmt(ratio(m, ea), '.2f')} | {p99} | {cpu} |")
        s = 's' if c > 1 else ''
        target(f"durable Put at {c} connection{s}: >= 1.0x Redis appendfsync always (same client)", ratio(m, r), 1.0)
        if c > 1:
            best = max((x for x in (e, ea) if x is not None), default=None)
            target(f"durable Put at {c} connection{s}: >= 2.0x etcd CAS (the faster etcd placement)",
                   ratio(m, best), 2.0)
    print()

    print(f"Durable Put, pipelined: {pipeline} calls in flight per connection, mrkv-kvbench -P {pipeline} "
          f"against both, redis-benchmark -P {pipeline} against Redis appendfsync always (ops/s):\n")
    print("| connections | mrkv always | Redis always, same client | Redis always, redis-benchmark "
          "| mrkv / Redis same client | mrkv / redis-benchmark | p99 (us) mrkv / Redis / redis-benchmark "
          "| server CPU per op, mrkv / Redis / redis-benchmark's Redis (us) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in conns:
        m, r = (med('durable', x, 'kvbench', c, 'put', pipeline) for x in ('mrkv-always', 'redis-always'))
        rb = med('durable', 'redis-always', 'redis-benchmark', c, 'put', pipeline)
        if m is None:
            continue
        print(f"| {c} | {m:.0f} | {fmt(r)} | {fmt(rb)} | {fmt(ratio(m, r), '.2f')} | {fmt(ratio(m, rb), '.2f')} "
              f"| {fmt(med('durable', 'mrkv-always', 'kvbench', c, 'put', pipeline, 2))} / "
              f"{fmt(med('durable', 'redis-always', 'kvbench', c, 'put', pipeline, 2))} / "
              f"{fmt(med('durable', 'redis-always', 'redis-benchmark', c, 'put', pipeline, 2))} "
              f"| {fmt(med('durable', 'mrkv-always', 'kvbench', c, 'put', pipeline, 3), '.1f')} / "
              f"{fmt(med('durable', 'redis-always', 'kvbench', c, 'put', pipeline, 3), '.1f')} / "
              f"{fmt(med('durable', 'redis-always', 'redis-benchmark', c, 'put', pipeline, 3), '.1f')} |")
        target(f"durable pipelined Put (P = {pipeline}) at {c} connection{'s' if c > 1 else ''}: "
               f">= 1.0x redis-benchmark -P {pipeline}, appendfsync always", ratio(m, rb), 1.0)
    print()

    print("What durability costs mrkv, same client, same moments (ops/s, p99 in us):\n")
    print("| connections | Get, --sync=always | Get, --sync=none | ratio | Put, --sync=interval:1000 "
          "| Put, --sync=none | ratio | server CPU per op (us): Get always / none, Put interval / none |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in conns:
        ga = med('durable', 'mrkv-always', 'kvbench', c, 'get', 1)
        gn = med('durable', 'mrkv-none', 'kvbench', c, 'get', 1)
        pi = med('durable', 'mrkv-interval', 'kvbench', c, 'put', 1)
        pn = med('durable', 'mrkv-none', 'kvbench', c, 'put', 1)
        if ga is None:
            continue
        print(f"| {c} | {ga:.0f} (p99 {fmt(med('durable', 'mrkv-always', 'kvbench', c, 'get', 1, 2))}) "
              f"| {fmt(gn)} (p99 {fmt(med('durable', 'mrkv-none', 'kvbench', c, 'get', 1, 2))}) | {fmt(ratio(ga, gn), '.2f')} "
              f"| {fmt(pi)} (p99 {fmt(med('durable', 'mrkv-interval', 'kvbench', c, 'put', 1, 2))}) "
              f"| {fmt(pn)} (p99 {fmt(med('durable', 'mrkv-none', 'kvbench', c, 'put', 1, 2))}) | {fmt(ratio(pi, pn), '.2f')} "
              f"| {fmt(med('durable', 'mrkv-always', 'kvbench', c, 'get', 1, 3), '.2f')} / "
              f"{fmt(med('durable', 'mrkv-none', 'kvbench', c, 'get', 1, 3), '.2f')}, "
              f"{fmt(med('durable', 'mrkv-interval', 'kvbench', c, 'put', 1, 3), '.2f')} / "
              f"{fmt(med('durable', 'mrkv-none', 'kvbench', c, 'put', 1, 3), '.2f')} |")
        s = 's' if c > 1 else ''
        target(f"Get at {c} connection{s}: --sync=always within 5 % of --sync=none", ratio(ga, gn), 0.95)
        target(f"Put at {c} connection{s}: --sync=interval:1000 within 10 % of --sync=none", ratio(pi, pn), 0.90)
    print()

restarts = {}
for name, kind, ms, size in csv.reader(open(restarts_path)):
    restarts.setdefault((name, kind), []).append((float(ms), int(size)))
if restarts:
    print(f"Restart: {restart_keys} keys of {value_size} bytes written, the server killed with SIGKILL; the "
          "time from exec to the first answered Get of the first and the last key, after that SIGKILL and "
          "after a SIGTERM (median), page cache warm:\n")
    print("| server | state on disk | after SIGKILL (ms) | after SIGTERM (ms) |")
    print("| --- | ---: | ---: | ---: |")
    for name, label in (('mrkv-restart', 'mrkv --sync=always'), ('redis-restart', 'Redis appendfsync always')):
        k, t = restarts.get((name, 'SIGKILL')), restarts.get((name, 'SIGTERM'))
        if not k:
            continue
        tm = statistics.median(x[0] for x in t) if t else None
        print(f"| {label} | {k[0][1] / 2**20:.0f} MiB | {k[0][0]:.0f} | {fmt(tm)} |")
        if name == 'mrkv-restart':
            worst = max([k[0][0]] + [x[0] for x in t or []])
            goal = f"restart with {restart_keys} keys of {value_size} B: < 1 s"
            targets.append(f"| {goal} | {worst:.0f} ms (slowest start) | "
                           f"{('met' if worst < 1000 else 'missed') if restart_keys >= 1000000 else 'not run with 1 M keys'} |")
    print()

# kind, then mrkv-kvbench's --csv line, then the number of snapshots written.
snapshots = list(csv.reader(open(snapshots_path)))
if snapshots:
    print(f"Snapshot under load: Put at 16 connections, one run each, on a server that loaded {restart_keys} "
          f"keys of {value_size} bytes from its log; \"with\": its first Put starts a snapshot of them all "
          "(fork, a child writes it), \"without\": no snapshot (--snapshot-log-size=0):\n")
    print("| run | snapshots written | Put ops/s | p50 / p99 / p99.9 (us) | longest answer (us) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind, _op, _c, _ops, _secs, rate, p50, p99, p999, mx, _errors, _cpu, written in snapshots:
        print(f"| {kind} | {written} | {float(rate):.0f} | {float(p50):.0f} / {float(p99):.0f} / {float(p999):.0f} "
              f"| {float(mx):.0f} |")
    print()

if targets:
    print("| target (from the issue) | measured | |")
    print("| --- | --- | --- |")
    print("\n".join(targets))
PY
)

echo
echo "$table"
if [ -s "$dir/restart-files.txt" ]; then
        echo
        echo "State files after the restarts (server, file, bytes):"
        sed 's/^/    /' "$dir/restart-files.txt"
fi

results=${MRKV_BENCH_RESULTS:-}
[ -z "$results" ] && [ $quick = 0 ] && results=$here/results.md
if [ -n "$results" ]; then
        {
                echo "# Key/value benchmark results"
                echo
                echo "Written by \`bench/kv/run.sh\`$([ $quick = 1 ] && echo " --quick")." \
                        "Closed loop over Unix sockets (etcd: TCP on the loopback): every connection keeps" \
                        "one call in flight, or P in the pipelined runs. $KEYS keys of ${VALUE_SIZE}-byte" \
                        "values, created before the runs; random keys. Latency from queueing a call to" \
                        "reading its whole reply. Server CPU: user + system time of the server process (all" \
                        "its threads) from /proc while the client measured, divided by the operations it served."
                echo
                echo "- date: $date"
                echo "- nproc: $(nproc); CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
                echo "- build: buildtype $buildtype; commit: $commit"
                echo "- load average (1, 5, 15 min) at the start: $load_start; at the end: $load_end;" \
                        "1-minute load before the runs: ${load_runs:-none}"
                echo "- durable state (mrkv, Redis, etcd): $state_fs"
                echo "- Redis: redis-server $redis_version (in memory: --save '' --appendonly no;" \
                        "durable: --appendonly yes --appendfsync always); etcd: $etcd_version, one member, defaults"
                echo "- CPUs (servers, load generator): ${PIN:-not pinned}; each run's $DURATION s follow 0.5 s" \
                        "of warm-up; medians of $RUNS runs"
                echo
                echo "$table"
                if [ -s "$dir/restart-files.txt" ]; then
                        echo
                        echo "State files after the restarts (server, file, bytes):"
                        echo
                        echo '```'
                        cat "$dir/restart-files.txt"
                        echo '```'
                fi
        } >"$results"
        echo
        echo "kvbench: wrote $results"
fi
