#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Run by with-user-manager.sh: `systemctl --user restart mrkv-coordinator` in the middle
# of a job. The restarted coordinator takes the job back from its journal, the bus shows
# the job object again, and a `mrkvctl submit --wait` and a `mrkvctl status --wait`
# started before the restart reconnect, follow the same job and print it done. Map
# tasks committed before the restart do not run again.
set -eu
. "$(dirname "$0")/lib.sh"
: "${MRKVCTL:?}" "${MRKV_APP_DIR:?}" "${SDU_HOME:?}"
require_user_bus
C=unix:$XDG_RUNTIME_DIR/mrkv/coordinator.sock
ctl() { "$MRKVCTL" --timeout 30 -c "$C" "$@"; }
prop() { # JOB PROPERTY
        busctl --user get-property org.mrkv.MapReduce1 "/org/mrkv/MapReduce1/job/$1" org.mrkv.MapReduce1.Job "$2"
}

install_user_units
worker_test_apps

IN=$SDU_HOME/in
mkdir -p "$IN"
for i in 1 2 3 4 5 6; do echo "input $i" >"$IN/jc-$i.txt"; done

systemctl --user start mrkv-coordinator.socket mrkv-worker@1.service mrkv-worker@2.service
wait_for 10 "two workers on the coordinator" workers_are 2

# jobcount: six maps of 2-5 s on two workers, about ten seconds.
ctl submit jobcount "$IN"/jc-*.txt --nreduce 1 --wait >"$SDU_HOME/submit.out" 2>"$SDU_HOME/submit.err" &
submitter=$!
wait_for 10 "the job's id" test -s "$SDU_HOME/submit.out"
id=$(head -n 1 "$SDU_HOME/submit.out")
ctl status "$id" --wait >"$SDU_HOME/status.out" 2>"$SDU_HOME/status.err" &
follower=$!
map_done() { [ "$(prop "$id" MapDone)" = "u $1" ]; }
wait_for 30 "a map of job $id committed" map_done 2

c1=$(unit_property mrkv-coordinator.service MainPID)
systemctl --user restart mrkv-coordinator.service
wait_for 10 "coordinator active after the restart" unit_is mrkv-coordinator.service active
[ "$(unit_property mrkv-coordinator.service MainPID)" != "$c1" ] || fail "the coordinator kept PID $c1"
# The job object is back, with what was committed before the restart.
wait_for 10 "job $id on the bus again" prop "$id" State
done_after=$(prop "$id" MapDone)
[ "${done_after#u }" -ge 2 ] || fail "job $id: MapDone is $done_after after the restart"

wait "$submitter" || fail "submit --wait exited with $? across the restart: $(cat "$SDU_HOME/submit.out" "$SDU_HOME/submit.err")"
grep -q "^Job $id done in " "$SDU_HOME/submit.out" || fail "submit --wait: no 'done' summary: $(cat "$SDU_HOME/submit.out")"
wait "$follower" || fail "status --wait exited with $? across the restart: $(cat "$SDU_HOME/status.out" "$SDU_HOME/status.err")"
grep -q "^Job $id done in " "$SDU_HOME/status.out" || fail "status --wait: no 'done' summary: $(cat "$SDU_HOME/status.out")"
[ "$(prop "$id" State)" = 's "done"' ] || fail "job $id: State is $(prop "$id" State)"

# Six maps, each run to its end once, plus at most the two in flight at the restart (a
# worker reports an attempt on the connection it got it from, which the restart closed).
ctl status --json "$id" >"$SDU_HOME/job.json" || fail "status $id"
runs=$(python3 -c 'import json, sys; print(open(json.load(open(sys.argv[1]))["outputs"][0]).read().split()[1])' \
        "$SDU_HOME/job.json") || fail "no output: $(cat "$SDU_HOME/job.json")"
echo "job $id: $runs map runs for 6 maps"
[ "$runs" -ge 6 ] && [ "$runs" -le 8 ] || fail "job $id ran its maps $runs times"

systemctl --user stop mrkv-worker@1.service mrkv-worker@2.service mrkv-coordinator.service mrkv-coordinator.socket
echo "OK: job $id survived a restart of the coordinator; submit --wait and status --wait followed it to the end"
