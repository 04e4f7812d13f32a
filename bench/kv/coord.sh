#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The coordination calls of mrkv-kvserver, and etcd's lock beside them, on this machine:
#
#   watch     notification latency with 1, 100 and 1,000 watchers of one key
#             (mrkv-coordbench --watchers: p50/p99 from the Put's send and from its
#             acknowledgement to each watcher's reply), RUNS runs, medians;
#   lock      hand-over time of a lock, the holder exiting (release) or killed with
#             SIGKILL (the rest of its lease's ttl): mrkv-coordbench --lock-handover
#             through libmrkv, and the same with the command-line tools, `mrkvctl lock`
#             and `etcdctl lock`, ttl LOCK_TTL (5) s for both;
#   list      List of LIST_KEYS (1,000,000) keys of 100 bytes, by pages of 1,000 and
#             10,000 (a --sync=none server filled by mrkv-kvbench).
#
#   bench/kv/coord.sh BUILD-DIR [--quick]     --quick: 1 run, 100,000 keys, no etcd crash
#
# Servers run with --sync=always (state in MRKV_BENCH_STATE, default /var/tmp) except the
# list's. Nothing is judged; it exits non-zero only when something broke.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/../lib.sh"
bench_parse_args "$@"

server=$build/daemons/kvserver/mrkv-kvserver
kvbench=$build/daemons/kvserver/mrkv-kvbench
coordbench=$build/bench/kv/mrkv-coordbench
mrkvctl=$build/apps/mrkvctl/mrkvctl
bench_require_built "$server" "$kvbench" "$coordbench" "$mrkvctl"

if [ $quick = 1 ]; then
        RUNS=${RUNS:-1}
        LIST_KEYS=${LIST_KEYS:-100000}
        HANDOVERS=${HANDOVERS:-3}
else
        RUNS=${RUNS:-3}
        LIST_KEYS=${LIST_KEYS:-1000000}
        HANDOVERS=${HANDOVERS:-5}
fi
LOCK_TTL=${LOCK_TTL:-5}
state=$(mktemp -d "${MRKV_BENCH_STATE:-/var/tmp}/mrkv-coordbench.XXXXXX")
dir=$(mktemp -d)
pids=()
cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
        rm -rf "$dir" "$state"
}
trap cleanup EXIT

wait_for_socket() {
        for _ in $(seq 300); do [ -S "$1" ] && return 0; sleep 0.02; done
        echo "no socket $1" >&2
        exit 1
}
median() { sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "-" }'; }
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
now_ns() { date +%s%N; }

"$server" --listen "unix:$dir/kv.sock" --log-level=warning --sync=always --state-directory "$state/kv" &
pids+=($!)
wait_for_socket "$dir/kv.sock"
kv=unix:$dir/kv.sock

echo "== watch: notification latency (us), $RUNS run(s), medians; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-9s %14s %14s %14s %14s\n' watchers send-p50 send-p99 ack-p50 ack-p99
for n in 1 100 1000; do
        out=$(for _ in $(seq "$RUNS"); do "$coordbench" -a "$kv" --watchers $n --changes 100; done)
        printf '%-9s %14s %14s %14s %14s\n' $n \
                "$(field from_send_p50_us <<<"$out" | median)" "$(field from_send_p99_us <<<"$out" | median)" \
                "$(field from_ack_p50_us <<<"$out" | median)" "$(field from_ack_p99_us <<<"$out" | median)"
done

echo "== lock hand-over (ms), $HANDOVERS each; ttl ${LOCK_TTL} s"
for how in exit crash; do
        n=$HANDOVERS
        [ $how = crash ] && n=$(( (HANDOVERS + 1) / 2 ))
        flag=()
        [ $how = crash ] && flag=(--crash)
        out=$("$coordbench" -a "$kv" --lock-handover "${flag[@]}" --ttl "$LOCK_TTL" --changes $n)
        echo "libmrkv   $how: p50 $(field p50_ms <<<"$out") max $(field max_ms <<<"$out")"
done

# handover TOOL HOW: a holder and a waiter of the command-line tool TOOL ("mrkvctl lock"
# or "etcdctl lock"); prints the ms from the holder's end (its command told to return,
# or the tool killed) to the waiter's command starting.
handover() {
        local tool=$1 how=$2 t0 t1 holder waiter
        rm -f "$dir/held" "$dir/acquired" "$dir/fifo"
        mkfifo "$dir/fifo"
        $tool bench-cli -- sh -c "touch '$dir/held'; read x < '$dir/fifo'" >/dev/null 2>&1 &
        holder=$!
        for _ in $(seq 500); do [ -e "$dir/held" ] && break; sleep 0.01; done
        $tool bench-cli -- sh -c "date +%s%N > '$dir/acquired.new' && mv '$dir/acquired.new' '$dir/acquired'" \
                >/dev/null 2>&1 &
        waiter=$!
        sleep 0.5 # the waiter is waiting
        t0=$(now_ns)
        if [ "$how" = crash ]; then
                kill -KILL $holder
                echo > "$dir/fifo" & # the orphaned command's read
        else
                echo > "$dir/fifo"
        fi
        wait $waiter || true
        wait $holder 2>/dev/null || true
        t1=$(cat "$dir/acquired")
        echo $(( (t1 - t0) / 1000000 ))
}

cli_handovers() { # NAME TOOL...
        local name=$1
        shift
        for how in exit crash; do
                n=$HANDOVERS
                [ $how = crash ] && n=$(( (HANDOVERS + 1) / 2 ))
                [ $how = crash ] && [ "$name" = etcdctl ] && [ $quick = 1 ] && continue
                echo "$name $how: p50 $(for _ in $(seq $n); do handover "$*" $how 2>/dev/null; done | median)"
        done
}
cli_handovers mrkvctl "$mrkvctl" --connect "$kv" lock --ttl "$LOCK_TTL"

if command -v etcd >/dev/null && command -v etcdctl >/dev/null; then
        read -r port peer <<<"$(python3 -c 'import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')"
        etcd --name coordbench --data-dir "$state/etcd" --log-level error \
                --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
                --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
                --initial-cluster "coordbench=http://127.0.0.1:$peer" 2>"$dir/etcd.log" &
        pids+=($!)
        for _ in $(seq 300); do
                ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$port" endpoint health >/dev/null 2>&1 && break
                sleep 0.1
        done
        ETCDCTL_API=3 cli_handovers etcdctl etcdctl --endpoints "127.0.0.1:$port" lock --ttl "$LOCK_TTL"
else
        echo "etcdctl: no etcd (tools/deps.sh bench): skipped"
fi

echo "== list: $LIST_KEYS keys of 100 bytes"
"$server" --listen "unix:$dir/list.sock" --log-level=warning --sync=none --state-directory "$state/list" &
pids+=($!)
wait_for_socket "$dir/list.sock"
"$kvbench" -a "unix:$dir/list.sock" -k "$LIST_KEYS" -t get -d 0.1 -w 0 --csv >/dev/null
for p in 1000 10000; do
        "$coordbench" -a "unix:$dir/list.sock" --list --page-size $p
done
