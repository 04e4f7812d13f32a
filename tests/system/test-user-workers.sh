#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Run by with-user-manager.sh: a MapReduce job through the user units. Two
# mrkv-worker@ instances (Type=notify: active on READY=1) reach the coordinator through
# its socket unit and so activate it; a job submitted with mrkvctl gives the output
# mrkv-sequential gives. After `systemctl --user restart mrkv-coordinator`, the same
# worker processes reconnect and run a second job.
set -eu
. "$(dirname "$0")/lib.sh"
: "${MRKVCTL:?}" "${MRKV_SEQUENTIAL:?}" "${MRKV_APP_DIR:?}" "${SDU_HOME:?}"
require_user_bus
C=unix:$XDG_RUNTIME_DIR/mrkv/coordinator.sock
ctl() { "$MRKVCTL" --timeout 30 -c "$C" "$@"; }

install_user_units
worker_test_apps

# Inputs where the workers can read them: not in /tmp, which PrivateTmp= hides.
IN=$SDU_HOME/in
mkdir -p "$IN" "$SDU_HOME/seq"
for i in 1 2 3; do
        for j in $(seq 1 200); do
                echo "the quick brown fox $i jumps over the lazy dog $((j % 7)) and file$i line$j"
        done >"$IN/pg-$i.txt"
done
(cd "$SDU_HOME/seq" && MRKV_APP_PATH=$MRKV_APP_DIR "$MRKV_SEQUENTIAL" --plain wc "$IN"/pg-*.txt && sort mr-out-0 >expected) ||
        fail "mrkv-sequential failed"

systemctl --user start mrkv-coordinator.socket
systemctl --user start mrkv-worker@1.service mrkv-worker@2.service
unit_is mrkv-worker@1.service active || fail "worker 1 is $(systemctl --user is-active mrkv-worker@1.service)"
unit_is mrkv-worker@2.service active || fail "worker 2 is $(systemctl --user is-active mrkv-worker@2.service)"
wait_for 10 "coordinator activated by the workers" unit_is mrkv-coordinator.service active
wait_for 10 "two workers on the coordinator" workers_are 2
w1=$(unit_property mrkv-worker@1.service MainPID)
w2=$(unit_property mrkv-worker@2.service MainPID)

run_job() { # NAME
        local id outputs
        ctl submit wc "$IN"/pg-*.txt --nreduce 3 --wait >"$SDU_HOME/$1.out" || fail "$1: submit --wait exited with $?"
        id=$(head -n 1 "$SDU_HOME/$1.out")
        ctl status --json "$id" >"$SDU_HOME/$1.json" || fail "$1: status $id"
        python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["state"] == "done", j
print("\n".join(j["outputs"]))' "$SDU_HOME/$1.json" >"$SDU_HOME/$1.outputs" || fail "$1: job $id: $(cat "$SDU_HOME/$1.json")"
        mapfile -t outputs <"$SDU_HOME/$1.outputs"
        [ ${#outputs[@]} -eq 3 ] || fail "$1: ${#outputs[@]} outputs, expected 3"
        sort "${outputs[@]}" | cmp -s - "$SDU_HOME/seq/expected" || fail "$1: output differs from mrkv-sequential's"
        echo "$1: job $id done, output as mrkv-sequential's, in ${outputs[0]%/*}"
}
run_job first

c1=$(unit_property mrkv-coordinator.service MainPID)
systemctl --user restart mrkv-coordinator.service
wait_for 10 "coordinator active after restart" unit_is mrkv-coordinator.service active
[ "$(unit_property mrkv-coordinator.service MainPID)" != "$c1" ] || fail "the coordinator kept PID $c1"
wait_for 20 "the workers back on the restarted coordinator" workers_are 2
[ "$(unit_property mrkv-worker@1.service MainPID)" = "$w1" ] || fail "worker 1 was restarted"
[ "$(unit_property mrkv-worker@2.service MainPID)" = "$w2" ] || fail "worker 2 was restarted"
run_job second

# A worker killed in the middle of a job: the job still finishes. jobcount's maps sleep
# 2-5 s, so both workers are inside a map when the signal comes.
id=$(ctl submit jobcount "$IN"/pg-*.txt --nreduce 1 | head -n 1) || fail "submit jobcount"
job_state() { busctl --user get-property org.mrkv.MapReduce1 "/org/mrkv/MapReduce1/job/$id" org.mrkv.MapReduce1.Job State; }
wait_for 10 "job $id mapping" sh -c "[ \"\$(busctl --user get-property org.mrkv.MapReduce1 /org/mrkv/MapReduce1/job/$id org.mrkv.MapReduce1.Job State)\" = 's \"mapping\"' ]"
systemctl --user kill -s KILL mrkv-worker@1.service
wait_for 60 "job $id done after a worker was killed" sh -c "[ \"\$(busctl --user get-property org.mrkv.MapReduce1 /org/mrkv/MapReduce1/job/$id org.mrkv.MapReduce1.Job State)\" = 's \"done\"' ]"
[ "$(busctl --user get-property org.mrkv.MapReduce1 "/org/mrkv/MapReduce1/job/$id" org.mrkv.MapReduce1.Job MapDone)" = "u 3" ] ||
        fail "job $id: MapDone is not 3"
busctl --user get-property org.mrkv.MapReduce1 "/org/mrkv/MapReduce1/job/$id" org.mrkv.MapReduce1.Job Counters |
        grep -q '"worker_losses" [1-9]' || fail "job $id: no worker loss counted"
ctl status --json "$id" >"$SDU_HOME/killed.json" || fail "status $id"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["state"] == "done", j
line = open(j["outputs"][0]).read().split()
# Every map ran to the end once, and the killed attempt started too.
assert line[0] == "a" and int(line[1]) >= 4, line' "$SDU_HOME/killed.json" || fail "job $id: $(cat "$SDU_HOME/killed.json")"
[ "$(unit_property mrkv-worker@1.service MainPID)" != "$w1" ] || fail "worker 1 was not killed"
wait_for 20 "the killed worker restarted and back" workers_are 2
echo "kill: job $id finished after mrkv-worker@1 was killed"

systemctl --user stop mrkv-worker@1.service mrkv-worker@2.service mrkv-coordinator.service mrkv-coordinator.socket
echo "OK: workers $w1 and $w2 ran a job, outlived a coordinator restart and ran another; a killed worker did not stop a job"
