#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Trust boundaries of the job server, with real distinct users: a coordinator running as
# a service user S, "system" workers of S, and two users A and B submitting jobs and
# running workers of their own, each through setpriv. Every case is an attack a member
# of the daemon's group could make; it must not work. Runs as root (useradd); the users,
# the processes started here and the temporary directory go at exit, also on failure.
#
# Usage: test-identity.sh CASE
#   own-job            A's job runs on A's worker, on inputs only A can read; its outputs
#                      belong to A
#   so-path            an app given as a path is never run by the service's workers
#   unreadable-input   a 0600 file of S, unreadable by A, never comes out of A's job
#   proc-environ       /proc/self/environ as input shows no worker's environment but A's
#   symlink-workdir    links planted under the next job's temporary names write nothing
#   foreign-workdir    a job cannot name another user's directory
#   cancel             only the owner and root cancel a job or see its files
#   fake-workers       workers of A never get B's tasks
#   finish-unassigned  FinishTask for an attempt never handed to the caller is refused
#   bus-cancel         the same rules on D-Bus: a job submitted there is its sender's, and
#                      only the owner and root cancel it or read its Files and Workdir
# Environment (set by meson): MRKV_COORDINATOR, MRKV_WORKER, MRKV_MRKVCTL, MRKV_APP_PATH,
# MRKV_GENCORPUS.
set -u

case_name=${1:?usage: test-identity.sh CASE}
: "${MRKV_COORDINATOR:?}" "${MRKV_WORKER:?}" "${MRKV_MRKVCTL:?}" "${MRKV_APP_PATH:?}" "${MRKV_GENCORPUS:?}"

if [ "$(id -u)" != 0 ]; then
    echo "test-identity.sh needs root (it creates users with useradd); skipping"
    exit 77
fi
for tool in useradd userdel setpriv python3; do
    command -v $tool >/dev/null 2>&1 || { echo "$tool is not installed; skipping"; exit 77; }
done
# The users run the system's Python: root's PATH may lead to a Python only root can read.
USER_PYTHON=/usr/bin/python3
VARLINK_CALL=$(cd "$(dirname "$0")/../../system" && pwd)/varlink-call.py
[ -x $USER_PYTHON ] || { echo "$USER_PYTHON is not installed; skipping"; exit 77; }

. "$(dirname "$0")/../jobs/lib.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrkv-identity.XXXXXX")
chmod 755 "$tmp"
pids=()
users=()
cleanup() {
    stop_and_show_logs $?
    for u in "${users[@]}"; do
        userdel "$u" || echo "test-identity.sh: cannot remove user $u" >&2
    done
    rm -rf "$tmp"
}
trap cleanup EXIT


# Users with names of this run: S, the service; A and B, two members of its group.
add_user() { # VAR SUFFIX
    local name="mrkvt-id$$-$2"
    useradd --system --no-create-home --home-dir / --shell /usr/sbin/nologin "$name" ||
        fail "useradd $name failed"
    users+=("$name")
    printf -v "$1" '%s' "$(id -u "$name")"
}
add_user S s
add_user A a
add_user B b

# Runs a command as uid U (with U's groups).
as() { # UID COMMAND...
    local u=$1
    shift
    setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"
}
# Starts a command as uid U in the background, remembering its pid (setpriv's, which
# execs the command) so that cleanup kills the command itself. Output to LOG.
as_bg() { # UID LOG COMMAND...
    local u=$1 log=$2
    shift 2
    setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@" >"$log" 2>&1 &
    pids+=($!)
}

SOCK=$tmp/run/coordinator.sock
export MRKV_COORDINATOR_ADDRESS=unix:$SOCK
export MRKV_KV_ADDRESS=unix:$tmp/no-kv.sock
export MRKV_APP_PATH
ctl() { # UID ARGS...: mrkvctl as UID, a hung call fails
    local u=$1
    shift
    as "$u" timeout -k 2s 25s "$MRKV_MRKVCTL" "$@"
}

mkdir -p "$tmp/in" "$tmp/run" "$tmp/state"
"$MRKV_GENCORPUS" --files 2 --size 20000 --prefix pg-gen- "$tmp/in" || fail "cannot generate input"
chmod -R a+rX "$tmp/in"
INPUTS=("$tmp"/in/pg-*.txt)
chown "$S" "$tmp/run" "$tmp/state"

start_coordinator() {
    as_bg "$S" "$tmp/coordinator.log" "$MRKV_COORDINATOR" --listen "unix:$SOCK" --state-directory "$tmp/state"
    wait_until 10 "the coordinator listens on $SOCK" test -S "$SOCK"
    # The package's socket is 0660 with group mrkv; here A and B stand for its members.
    chmod 666 "$SOCK"
}

start_worker() { # UID NAME [ENV=VALUE...]
    local u=$1 name=$2
    shift 2
    as_bg "$u" "$tmp/worker-$name.log" env "$@" "$MRKV_WORKER" --serve --connect "unix:$SOCK"
}

status() { # UID ID FILE
    ctl "$1" status --json "$2" >"$3" 2>>"$tmp/ctl.log" || fail "status $2 as uid $1 failed"
}

# The state of job ID as UID sees it, "?" if status fails (then the callers fail).
job_state() { # UID ID
    ctl "$1" status --json "$2" >"$tmp/state.json" 2>>"$tmp/ctl.log" && json_field "$tmp/state.json" 'j["state"]' ||
        echo "?"
}

job_ended() { # UID ID
    case $(job_state "$1" "$2") in done | failed | cancelled) return 0 ;; esac
    return 1
}

# A directory owned by uid U with MODE.
user_dir() { # UID MODE PATH
    mkdir -p "$3" && chown "$1" "$3" && chmod "$2" "$3"
}

submit() { # UID ARGS...: prints the job id
    ctl "$1" submit "${@:2}" 2>>"$tmp/ctl.log" | head -n 1
}

case $case_name in
own-job)
    start_coordinator
    start_worker "$A" a
    user_dir "$A" 755 "$tmp/a-work"
    # Inputs only A can reach: the job reads them with A's rights, the service never.
    user_dir "$A" 700 "$tmp/a-private"
    cp "${INPUTS[@]}" "$tmp/a-private/" && chown "$A" "$tmp"/a-private/*
    # A's directory, where the service cannot even look: the coordinator leaves the
    # check to A's workers.
    user_dir "$A" 755 "$tmp/a-private/work"
    ! as "$S" test -e "$tmp/a-private/work" || fail "the service can reach A's private directory"
    id=$(submit "$A" wc "$tmp"/a-private/pg-*.txt --nreduce 2 --workdir "$tmp/a-private/work") ||
        fail "A's submit failed"
    [ -n "$id" ] || fail "A's submit printed no job id"
    wait_until 20 "A's job $id has ended" job_ended "$A" "$id"
    [ "$(job_state "$A" "$id")" = done ] || fail "A's job is $(job_state "$A" "$id"), not done"
    [ "$(json_field "$tmp/state.json" 'j["owner_uid"]')" = "$A" ] || fail "the job's owner is not A"
    for f in "$tmp"/a-private/work/mr-out-*; do
        [ "$(stat -c %u "$f")" = "$A" ] || fail "$f belongs to uid $(stat -c %u "$f"), not A ($A)"
    done
    grep -q . "$tmp"/a-private/work/mr-out-* || fail "A's job wrote no output"
    # A job naming no directory would get one of the service's, where A's workers cannot write.
    ! ctl "$A" submit wc "${INPUTS[@]}" >/dev/null 2>"$tmp/nodir.err" || fail "A's job without a workdir was accepted"
    grep -q "needs a working directory it owns" "$tmp/nodir.err" || fail "unclear error: $(cat "$tmp/nodir.err")"
    ;;
so-path)
    # The service's workers run, none of A's: A's job with an app path must wait.
    start_coordinator
    start_worker "$S" s1
    start_worker "$S" s2
    user_dir "$A" 777 "$tmp/a-work"
    id=$(submit "$A" "$MRKV_APP_PATH/wc.so" "${INPUTS[@]}" --nreduce 1 --workdir "$tmp/a-work") ||
        fail "A's submit failed"
    [ -n "$id" ] || fail "A's submit printed no job id"
    # The service's own job, after A's: once it is done, the workers have had A's job's
    # tasks to take (jobs run in submission order).
    sid=$(submit "$S" wc "${INPUTS[0]}" --nreduce 1) || fail "S's submit failed"
    wait_until 20 "S's job $sid has ended" job_ended "$S" "$sid"
    [ "$(job_state "$S" "$sid")" = done ] || fail "S's job is not done"
    state=$(job_state "$A" "$id")
    [ "$state" = queued ] || fail "A's job with app $MRKV_APP_PATH/wc.so ran on the service's workers: $state"
    [ "$(json_field "$tmp/state.json" 'j.get("waiting")')" = "a worker of uid $A" ] ||
        fail "A's job does not say what it waits for: $(cat "$tmp/state.json")"
    ! ls "$tmp"/a-work/mr-* >/dev/null 2>&1 || fail "files of A's job appeared: $(ls -a "$tmp/a-work")"
    # A's own worker runs it.
    start_worker "$A" a
    wait_until 20 "A's job $id has ended" job_ended "$A" "$id"
    [ "$(job_state "$A" "$id")" = done ] || fail "A's job is not done on A's worker"
    [ "$(stat -c %u "$tmp/a-work/mr-out-0")" = "$A" ] || fail "A's output does not belong to A"
    ;;
unreadable-input)
    start_coordinator
    start_worker "$S" s1
    start_worker "$A" a
    echo "svc-secret-words only the service may read" >"$tmp/svc-secret"
    chown "$S" "$tmp/svc-secret"
    chmod 600 "$tmp/svc-secret"
    user_dir "$A" 777 "$tmp/a-work"
    if id=$(submit "$A" wc "$tmp/svc-secret" --nreduce 1 --workdir "$tmp/a-work") && [ -n "$id" ]; then
        wait_until 30 "A's job $id has ended" job_ended "$A" "$id"
        [ "$(job_state "$A" "$id")" = failed ] || fail "A's job on S's 0600 file is $(job_state "$A" "$id")"
        json_field "$tmp/state.json" 'j.get("error", "")' | grep -q "Permission denied" ||
            fail "the job's error does not say why: $(cat "$tmp/state.json")"
    fi
    ! grep -rq "svc-secret-words" "$tmp/a-work" || fail "the service's 0600 file came out of A's job"
    ;;
proc-environ)
    start_coordinator
    start_worker "$S" s1 MRKV_IDENTITY_TEST=svc-environment-secret
    user_dir "$A" 777 "$tmp/a-work"
    # Over Varlink itself: mrkvctl would resolve the link to its own /proc/PID.
    as "$A" "$USER_PYTHON" "$VARLINK_CALL" "unix:$SOCK" org.mrkv.MapReduce.SubmitJob \
        '{"app": "wc", "files": ["/proc/self/environ"], "nreduce": 1, "workdir": "'"$tmp/a-work"'"}' \
        >"$tmp/submit.json" || fail "A's SubmitJob failed: $(cat "$tmp/submit.json")"
    id=$(json_field "$tmp/submit.json" 'j["parameters"]["job"]') || fail "no job id: $(cat "$tmp/submit.json")"
    # As in so-path: once the service's later job is done, its worker had A's tasks to take.
    sid=$(submit "$S" wc "${INPUTS[0]}" --nreduce 1) || fail "S's submit failed"
    wait_until 20 "S's job $sid has ended" job_ended "$S" "$sid"
    start_worker "$A" a MRKV_IDENTITY_TEST=a-environment
    wait_until 30 "A's job $id has ended" job_ended "$A" "$id"
    ! grep -rq "svc" "$tmp/a-work" || fail "the service worker's environment came out of A's job"
    # What A may read, A gets: the environment of A's own worker.
    [ "$(job_state "$A" "$id")" = done ] && grep -rq "^environment " "$tmp/a-work" ||
        fail "A's job did not read its own worker's environment"
    ;;
symlink-workdir)
    start_coordinator
    start_worker "$S" s1
    echo "svc-original" >"$tmp/svc-file"
    chown "$S" "$tmp/svc-file"
    chmod 600 "$tmp/svc-file"
    # A shared directory, as /tmp is; A plants links under the names job 1 will use.
    mkdir -m 1777 "$tmp/shared"
    plant() { # TARGET DIR
        for name in .mrkv-tmp-{1,2}-m0.1 .mrkv-tmp-{1,2}-r0.1 mr-0 mr-out-0; do
            as "$A" ln -s "$1" "$2/$name" || fail "cannot plant $name"
        done
    }
    plant "$tmp/svc-file" "$tmp/shared"
    id=$(submit "$B" wc "${INPUTS[0]}" --nreduce 1 --workdir "$tmp/shared")
    [ -z "$id" ] || wait_until 30 "B's job $id has ended" job_ended "$B" "$id"
    [ "$(cat "$tmp/svc-file")" = svc-original ] || fail "the service's file was written through a planted link"
    [ -z "$id" ] || fail "B's job in a directory B does not own was accepted"
    grep -q "belongs to uid 0, not to the submitter" "$tmp/ctl.log" || fail "unclear error: $(cat "$tmp/ctl.log")"

    # In B's own directory, writable by A too, planted links are replaced, not followed.
    start_worker "$B" b
    user_dir "$B" 777 "$tmp/b-work"
    echo "b-original" >"$tmp/b-file"
    chown "$B" "$tmp/b-file"
    chmod 644 "$tmp/b-file"
    plant "$tmp/b-file" "$tmp/b-work"
    id=$(submit "$B" wc "${INPUTS[0]}" --nreduce 1 --workdir "$tmp/b-work") || fail "B's submit failed"
    [[ $id = [12] ]] || fail "B's job got id '$id', the links were planted for 1 and 2"
    wait_until 30 "B's job $id has ended" job_ended "$B" "$id"
    [ "$(job_state "$B" "$id")" = done ] || fail "B's job is $(job_state "$B" "$id")"
    [ "$(cat "$tmp/b-file")" = b-original ] || fail "B's file was written through a planted link"
    [ ! -L "$tmp/b-work/mr-out-0" ] && grep -q . "$tmp/b-work/mr-out-0" || fail "B's output is not a file of its own"
    ;;
foreign-workdir)
    start_coordinator
    start_worker "$S" s1
    start_worker "$A" a
    # B's directory with B's finished result; writable by everyone, so only ownership stops A.
    user_dir "$B" 777 "$tmp/b-work"
    echo "b-result" >"$tmp/b-work/mr-out-0"
    chown "$B" "$tmp/b-work/mr-out-0"
    chmod 666 "$tmp/b-work/mr-out-0"
    id=$(submit "$A" wc "${INPUTS[0]}" --nreduce 1 --workdir "$tmp/b-work")
    [ -z "$id" ] || wait_until 30 "A's job $id has ended" job_ended "$A" "$id"
    [ "$(cat "$tmp/b-work/mr-out-0")" = b-result ] || fail "A's job overwrote B's output"
    [ -z "$id" ] || fail "A's job in B's directory was accepted"
    grep -q "belongs to uid $B, not to the submitter (uid $A)" "$tmp/ctl.log" || fail "unclear error: $(cat "$tmp/ctl.log")"

    # B's directory inside A's private one: the coordinator cannot look, A's worker refuses.
    user_dir "$A" 700 "$tmp/a-private"
    user_dir "$B" 777 "$tmp/a-private/b-work"
    id=$(submit "$A" wc "${INPUTS[0]}" --nreduce 1 --workdir "$tmp/a-private/b-work") || fail "A's submit failed"
    wait_until 30 "A's job $id has ended" job_ended "$A" "$id"
    [ "$(job_state "$A" "$id")" = failed ] || fail "A's job in B's directory is $(job_state "$A" "$id")"
    json_field "$tmp/state.json" 'j.get("error", "")' | grep -q "belongs to uid $B, not to the job's owner" ||
        fail "the job's error does not say why: $(cat "$tmp/state.json")"
    [ -z "$(ls -A "$tmp/a-private/b-work")" ] || fail "A's job wrote in B's directory: $(ls -A "$tmp/a-private/b-work")"
    ;;
cancel)
    start_coordinator
    user_dir "$B" 755 "$tmp/b-work"
    # No worker of B: the job stays queued.
    id=$(submit "$B" wc "${INPUTS[0]}" --nreduce 1 --workdir "$tmp/b-work") || fail "B's submit failed"
    [ -n "$id" ] || fail "B's submit printed no job id"
    ! ctl "$A" cancel "$id" 2>"$tmp/cancel.err" || fail "A cancelled B's job"
    grep -q "permission denied: only the job's owner and root may cancel it" "$tmp/cancel.err" || fail "unclear error: $(cat "$tmp/cancel.err")"
    [ "$(job_state "$B" "$id")" = queued ] || fail "B's job is no longer queued"
    # A sees that the job exists, its progress, not its files.
    status "$A" "$id" "$tmp/a-view.json"
    [ "$(json_field "$tmp/a-view.json" '(j["files"], j["workdir"], j["outputs"], j["map_total"])')" = "([], '', [], 1)" ] ||
        fail "A sees B's files: $(cat "$tmp/a-view.json")"
    ctl "$A" jobs --json >"$tmp/a-jobs.json" || fail "jobs as A failed"
    # ListJobs leaves every job's lists out (null); the directory is B's to see only.
    [ "$(json_field "$tmp/a-jobs.json" '[(x["files"], x["workdir"]) for x in j]')" = "[(None, '')]" ] ||
        fail "A's job list shows B's files or directory: $(cat "$tmp/a-jobs.json")"
    status "$B" "$id" "$tmp/b-view.json"
    [ "$(json_field "$tmp/b-view.json" 'j["files"]')" = "['${INPUTS[0]}']" ] || fail "B does not see its files"
    # Root may.
    ctl 0 cancel "$id" || fail "root could not cancel B's job"
    [ "$(job_state "$B" "$id")" = cancelled ] || fail "B's job was not cancelled by root"
    ;;
fake-workers)
    start_coordinator
    user_dir "$B" 755 "$tmp/b-work"
    id=$(submit "$B" wc "${INPUTS[@]}" --nreduce 2 --workdir "$tmp/b-work" --task-timeout 2) || fail "B's submit failed"
    [ -n "$id" ] || fail "B's submit printed no job id"
    # Three fake workers of A ask for tasks and keep whatever they get.
    user_dir "$A" 755 "$tmp/fake"
    cat >"$tmp/fake-worker.py" <<'EOF'
import json, os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(json.dumps({"method": "org.mrkv.MapReduce.RequestTask", "parameters": {}}).encode() + b"\0")
open(sys.argv[2] + ".asked", "w").close()
s.settimeout(0.1)
got = b""
while not os.path.exists(sys.argv[2] + ".stop"):
    try:
        d = s.recv(65536)
        if not d:
            break
        got += d
    except socket.timeout:
        pass
open(sys.argv[2] + ".got", "wb").write(got)
EOF
    for i in 1 2 3; do
        as_bg "$A" "$tmp/fake$i.log" "$USER_PYTHON" "$tmp/fake-worker.py" "$SOCK" "$tmp/fake/$i"
    done
    for i in 1 2 3; do
        wait_until 10 "fake worker $i has asked" test -e "$tmp/fake/$i.asked"
    done
    [ "$(job_state "$B" "$id")" = queued ] || fail "B's job started with only A's workers connected"
    start_worker "$B" b
    wait_until 30 "B's job $id has ended" job_ended "$B" "$id"
    [ "$(job_state "$B" "$id")" = done ] || fail "B's job is $(job_state "$B" "$id")"
    for i in 1 2 3; do
        touch "$tmp/fake/$i.stop"
        wait_until 10 "fake worker $i has stopped" test -e "$tmp/fake/$i.got"
        [ ! -s "$tmp/fake/$i.got" ] || fail "A's fake worker $i got: $(tr '\0' '\n' <"$tmp/fake/$i.got")"
    done
    ;;
finish-unassigned)
    start_coordinator
    user_dir "$B" 755 "$tmp/b-work"
    id=$(submit "$B" wc "${INPUTS[@]}" --nreduce 1 --workdir "$tmp/b-work") || fail "B's submit failed"
    [ -n "$id" ] || fail "B's submit printed no job id"
    # A reports B's tasks failed, over and over, though none was handed to A.
    for attempt in 1 2 3 4 5; do
        as "$A" "$USER_PYTHON" - "$SOCK" "$id" "$attempt" <<'EOF' >>"$tmp/finish.out" 2>>"$tmp/finish.log"
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
p = {"job": sys.argv[2], "kind": "map", "task": 0, "attempt": int(sys.argv[3]), "ok": False, "error": "fake"}
s.sendall(json.dumps({"method": "org.mrkv.MapReduce.FinishTask", "parameters": p}).encode() + b"\0")
data = b""
while not data.endswith(b"\0"):
    d = s.recv(65536)
    if not d:
        break
    data += d
print(json.loads(data[:-1]).get("error", "accepted"))
EOF
    done
    [ "$(sort -u "$tmp/finish.out")" = org.mrkv.MapReduce.TaskNotAssigned ] ||
        fail "FinishTask of tasks never handed to A: $(sort "$tmp/finish.out" | uniq -c)"
    [ "$(job_state "$B" "$id")" = queued ] || fail "B's job is $(job_state "$B" "$id") after A's reports"
    ;;
bus-cancel)
    for tool in dbus-daemon busctl; do
        command -v $tool >/dev/null 2>&1 || { echo "$tool is not installed; skipping"; exit 77; }
    done
    # A private bus every user may connect to, with no policy of its own: the
    # coordinator decides.
    cat >"$tmp/bus.conf" <<EOF
<busconfig>
  <type>custom</type>
  <listen>unix:path=$tmp/run/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow send_type="signal"/>
    <allow receive_type="signal"/>
    <allow send_requested_reply="true"/>
    <allow receive_requested_reply="true"/>
  </policy>
</busconfig>
EOF
    dbus-daemon --config-file="$tmp/bus.conf" --nofork --nopidfile >"$tmp/dbus.log" 2>&1 &
    pids+=($!)
    wait_until 10 "the bus listens" test -S "$tmp/run/bus.sock"
    BUS=unix:path=$tmp/run/bus.sock
    as_bg "$S" "$tmp/coordinator.log" "$MRKV_COORDINATOR" --listen "unix:$SOCK" --state-directory "$tmp/state" \
        --bus-address="$BUS"
    bus() { # UID ARGS...
        local u=$1
        shift
        as "$u" timeout -k 2s 25s busctl --address="$BUS" --no-pager "$@"
    }
    wait_until 10 "the coordinator owns its name" bus "$S" status org.mrkv.MapReduce1 >/dev/null 2>&1
    user_dir "$B" 755 "$tmp/b-work"
    out=$(bus "$B" call org.mrkv.MapReduce1 /org/mrkv/MapReduce1 org.mrkv.MapReduce1 SubmitJob sasus \
          wc 1 "${INPUTS[0]}" 1 "$tmp/b-work") || fail "B's SubmitJob on the bus failed"
    read -r _ id path <<<"$out"
    path=${path//\"/}
    job_prop() { bus "$1" get-property org.mrkv.MapReduce1 "$path" org.mrkv.MapReduce1.Job "$2"; }
    [ "$(job_prop "$A" OwnerUID)" = "u $B" ] || fail "the job's OwnerUID is $(job_prop "$A" OwnerUID), not B's"
    [ "$(job_prop "$A" Files)" = "as 0" ] || fail "A reads B's Files: $(job_prop "$A" Files)"
    [ "$(job_prop "$A" Workdir)" = 's ""' ] || fail "A reads B's Workdir: $(job_prop "$A" Workdir)"
    [ "$(job_prop "$B" Files)" = "as 1 \"${INPUTS[0]}\"" ] || fail "B cannot read its Files: $(job_prop "$B" Files)"
    ! bus "$A" call org.mrkv.MapReduce1 "$path" org.mrkv.MapReduce1.Job Cancel 2>"$tmp/cancel.err" ||
        fail "A cancelled B's job over D-Bus"
    # The coordinator's refusal (busctl shows its name only), not the bus's.
    grep -q "Access denied" "$tmp/cancel.err" && ! grep -q "Rejected send" "$tmp/dbus.log" ||
        fail "unclear error: $(cat "$tmp/cancel.err")"
    ! bus "$A" call org.mrkv.MapReduce1 /org/mrkv/MapReduce1 org.mrkv.MapReduce1 CancelJob s "${id//\"/}" 2>/dev/null ||
        fail "A cancelled B's job with CancelJob"
    [ "$(job_prop "$B" State)" = 's "queued"' ] || fail "B's job is $(job_prop "$B" State)"
    bus "$B" call org.mrkv.MapReduce1 "$path" org.mrkv.MapReduce1.Job Cancel || fail "B could not cancel its job"
    [ "$(job_prop "$B" State)" = 's "cancelled"' ] || fail "B's job was not cancelled"
    ;;
*)
    fail "unknown case"
    ;;
esac
exit 0
