# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the job server's tests (jobs/test-jobs.sh, identity/test-identity.sh), which
# define fail(), $tmp (their directory) and $pids (the processes they started).

# For the EXIT trap: kills the processes the script started, by their ids, and when it
# failed (STATUS not 0) shows the end of every log in $tmp.
stop_and_show_logs() { # STATUS
    [ ${#pids[@]} -gt 0 ] && kill -9 "${pids[@]}" 2>/dev/null
    wait 2>/dev/null
    if [ "$1" -ne 0 ]; then
        for log in "$tmp"/*.log; do
            [ -s "$log" ] && { echo "--- $log:"; tail -n 30 "$log"; } >&2
        done
    fi
    return 0
}

# Polls CONDITION (a command) every 50 ms until it holds or SEC seconds have passed.
wait_until() { # SEC DESCRIPTION COMMAND...
    local sec=$1 what=$2
    shift 2
    for _ in $(seq $((sec * 20))); do
        "$@" && return 0
        sleep 0.05
    done
    fail "timed out after ${sec}s waiting until $what"
}

json_field() { # FILE EXPRESSION (Python, on the parsed JSON as j)
    python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
