#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The coordinator's D-Bus plane on a private dbus-daemon, driven with busctl as a person
# would: introspection, properties, SubmitJob, PropertiesChanged while a job runs, a job
# object's Cancel, and LogControl1.
# Environment (set by meson): MRKV_COORDINATOR, MRKV_WORKER, MRKV_SEQUENTIAL, MRKV_APP_PATH,
# MRKV_TEST_DATA or MRKV_GENCORPUS.
set -u
: "${MRKV_COORDINATOR:?}" "${MRKV_WORKER:?}" "${MRKV_SEQUENTIAL:?}" "${MRKV_APP_PATH:?}"
export MRKV_APP_PATH

. "$(dirname "$0")/lib.sh"
bctl() { busctl --address="$BUS" --no-pager "$@"; }
export MRKV_COORDINATOR_ADDRESS=unix:$tmp/coordinator.sock

mkdir -p "$tmp/in"
if [ -n "${MRKV_TEST_DATA:-}" ] && ls "$MRKV_TEST_DATA"/pg-*.txt >/dev/null 2>&1; then
    cp "$MRKV_TEST_DATA"/pg-*.txt "$tmp/in/"
else
    "$MRKV_GENCORPUS" --files 8 --size 200000 --prefix pg-gen- "$tmp/in" || fail "cannot generate input"
fi

"$MRKV_COORDINATOR" --bus-address="$BUS" --state-directory="$tmp/state" 2> "$tmp/coordinator.log" &
poll 10 bctl status org.mrkv.MapReduce1 >/dev/null 2>&1 || fail "the coordinator did not take its bus name"
"$MRKV_WORKER" --serve 2> "$tmp/worker1.log" &
"$MRKV_WORKER" --serve 2> "$tmp/worker2.log" &
poll 10 sh -c "[ \"\$(busctl --address='$BUS' get-property org.mrkv.MapReduce1 /org/mrkv/MapReduce1 org.mrkv.MapReduce1 Workers)\" = 'u 2' ]" \
    || fail "Workers did not become 2"

intro=$(bctl introspect org.mrkv.MapReduce1 /org/mrkv/MapReduce1) || fail "introspect"
for member in .SubmitJob .CancelJob .Jobs .Workers; do
    grep -q "^$member " <<< "$intro" || fail "introspection lacks $member"
done
bctl introspect org.mrkv.MapReduce1 /org/mrkv/MapReduce1 org.freedesktop.LogControl1 >/dev/null 2>&1 \
    || bctl introspect org.mrkv.MapReduce1 /org/freedesktop/LogControl1 | grep -q '^.LogLevel ' \
    || fail "no LogControl1"

bctl monitor org.mrkv.MapReduce1 > "$tmp/monitor.log" 2>&1 &
# The job's signals are checked below: wait until the monitor shows a call of ours.
monitor_sees_get() {
    bctl get-property org.mrkv.MapReduce1 /org/mrkv/MapReduce1 org.mrkv.MapReduce1 Workers >/dev/null &&
        grep -q 'Member=Get$' "$tmp/monitor.log"
}
poll 10 monitor_sees_get || fail "busctl monitor shows no call to the coordinator"

files=("$tmp"/in/pg-*.txt)
out=$(bctl call org.mrkv.MapReduce1 /org/mrkv/MapReduce1 org.mrkv.MapReduce1 SubmitJob sasus \
      wc ${#files[@]} "${files[@]}" 5 "") || fail "SubmitJob"
read -r _ id path <<< "$out"
id=${id//\"/}
path=${path//\"/}
[ "$path" = "/org/mrkv/MapReduce1/job/$id" ] || fail "unexpected job path $path"

state() { bctl get-property org.mrkv.MapReduce1 "$path" org.mrkv.MapReduce1.Job State; }
poll 60 sh -c "[ \"\$(busctl --address='$BUS' get-property org.mrkv.MapReduce1 $path org.mrkv.MapReduce1.Job State)\" = 's \"done\"' ]" \
    || fail "job $id did not finish: $(state)"
[ "$(bctl get-property org.mrkv.MapReduce1 "$path" org.mrkv.MapReduce1.Job MapDone)" = "u ${#files[@]}" ] || fail "MapDone"
[ "$(bctl get-property org.mrkv.MapReduce1 "$path" org.mrkv.MapReduce1.Job ReduceDone)" = "u 5" ] || fail "ReduceDone"
[ "$(bctl get-property org.mrkv.MapReduce1 "$path" org.mrkv.MapReduce1.Job Progress)" = "d 1" ] || fail "Progress"
bctl get-property org.mrkv.MapReduce1 "$path" org.mrkv.MapReduce1.Job Outputs | grep -q "mr-out-4" || fail "Outputs"
bctl get-property org.mrkv.MapReduce1 /org/mrkv/MapReduce1 org.mrkv.MapReduce1 Jobs | grep -q "$path" || fail "Jobs"

poll 5 grep -q 'MapDone' "$tmp/monitor.log" || fail "no PropertiesChanged with MapDone seen"
grep -q 'PropertiesChanged' "$tmp/monitor.log" || fail "no PropertiesChanged seen"

# The output is the sequential one.
workdir=$(bctl get-property org.mrkv.MapReduce1 "$path" org.mrkv.MapReduce1.Job Workdir | sed 's/^s "\(.*\)"$/\1/')
(cd "$tmp" && "$MRKV_SEQUENTIAL" --plain wc "${files[@]}" && sort mr-out-0 > correct.txt) || fail "mrkv-sequential"
sort "$workdir"/mr-out-* | grep . | cmp -s - "$tmp/correct.txt" || fail "job output differs from mrkv-sequential"
# The job's counters: the names of before, then the job counters, of the committed attempts.
counters=$(bctl get-property org.mrkv.MapReduce1 "$path" org.mrkv.MapReduce1.Job Counters) || fail "Counters"
[[ $counters == 'a{st} '*' "attempts" '* ]] || fail "Counters without attempts: $counters"
[[ $counters == *" \"reduce_output_records\" $(grep -c . "$tmp/correct.txt") "* ]] ||
    fail "Counters: reduce_output_records is not the number of output lines: $counters"
[[ $counters == *' "backup_attempts_won" 0 '* ]] || fail "Counters without backup_attempts_won: $counters"

# Cancel through the job object: jobcount's maps sleep 2-5 s, so it is still running.
out=$(bctl call org.mrkv.MapReduce1 /org/mrkv/MapReduce1 org.mrkv.MapReduce1 SubmitJob sasus \
      jobcount ${#files[@]} "${files[@]}" 1 "") || fail "SubmitJob jobcount"
read -r _ _ path2 <<< "$out"
path2=${path2//\"/}
bctl call org.mrkv.MapReduce1 "$path2" org.mrkv.MapReduce1.Job Cancel || fail "Cancel"
[ "$(bctl get-property org.mrkv.MapReduce1 "$path2" org.mrkv.MapReduce1.Job State)" = 's "cancelled"' ] || fail "not cancelled"
bctl call org.mrkv.MapReduce1 "$path2" org.mrkv.MapReduce1.Job Cancel 2>/dev/null && fail "a second Cancel succeeded"

# Bad input gets an error and leaves the daemon serving.
bctl call org.mrkv.MapReduce1 /org/mrkv/MapReduce1 org.mrkv.MapReduce1 SubmitJob sasus wc 1 relative.txt 1 "" \
    2>/dev/null && fail "a relative input file was accepted"
bctl call org.mrkv.MapReduce1 /org/mrkv/MapReduce1 org.mrkv.MapReduce1 CancelJob s 999 2>/dev/null \
    && fail "cancelling a job that does not exist succeeded"

# LogControl1, as systemctl service-log-level uses it.
bctl set-property org.mrkv.MapReduce1 /org/freedesktop/LogControl1 org.freedesktop.LogControl1 LogLevel s debug || fail "LogLevel"
[ "$(bctl get-property org.mrkv.MapReduce1 /org/freedesktop/LogControl1 org.freedesktop.LogControl1 LogLevel)" = 's "debug"' ] \
    || fail "LogLevel not debug"
bctl set-property org.mrkv.MapReduce1 /org/freedesktop/LogControl1 org.freedesktop.LogControl1 LogLevel s loud 2>/dev/null \
    && fail "an invalid log level was accepted"

echo "PASS"
