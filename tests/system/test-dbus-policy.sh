#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The system bus policies of units/dbus/, on a private dbus-daemon with the default
# policy of Debian's system.conf. mrkv-test-bus-echo owns both names and answers
# every call, so a call that fails was refused by the policy.
#  - only user mrkv may own org.mrkv.MapReduce1 and org.mrkv.KeyValue1;
#  - everyone may introspect, ping, read properties and list the objects;
#  - only root and group mrkv may submit or cancel jobs, snapshot, or set properties
#    (LogControl1's LogLevel).
# Stand-ins, as the test must not add users to the host: user and group "daemon" for
# mrkv; user "nobody" with and without group "daemon" for a member and an outsider.
set -eu
. "$(dirname "$0")/lib.sh"
require_root dbus-daemon busctl setpriv
: "${MRKV_UNITS_SRC:?}" "${MRKV_TEST_BUS_ECHO:?}"
D=$(dirname "$0")
for id in daemon nobody; do id -u "$id" >/dev/null 2>&1 || skip "no user $id"; done
getent group daemon >/dev/null || skip "no group daemon"
NOBODY_GID=$(id -g nobody)

make_tmpdir T
chmod 755 "$T"
mkdir "$T/policy"
for f in "$MRKV_UNITS_SRC"/dbus/*.conf; do
        sed -e 's/user="mrkv"/user="daemon"/g' -e 's/group="mrkv"/group="daemon"/g' "$f" >"$T/policy/${f##*/}"
        grep -q 'user="daemon"' "$T/policy/${f##*/}" || fail "${f##*/}: no policy for user mrkv"
done
cat >"$T/bus.conf" <<EOF2
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
        "https://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
        <type>system</type>
        <listen>unix:tmpdir=/tmp</listen>
        <auth>EXTERNAL</auth>
        <policy context="default">
                <allow user="*"/>
                <deny own="*"/>
                <deny send_type="method_call"/>
                <allow send_type="signal"/>
                <allow send_requested_reply="true" send_type="method_return"/>
                <allow send_requested_reply="true" send_type="error"/>
                <allow receive_type="method_call"/>
                <allow receive_type="method_return"/>
                <allow receive_type="error"/>
                <allow receive_type="signal"/>
                <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
                <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
        </policy>
        <includedir>$T/policy</includedir>
</busconfig>
EOF2

cat >"$T/check.sh" <<'EOF2'
set -eu
. "$LIB"
A=$MRKV_TEST_BUS_ADDRESS
T=$1
owner=(setpriv --reuid=daemon --regid=daemon --clear-groups)
member=(setpriv --reuid=nobody --regid="$NOBODY_GID" --groups=daemon)
outsider=(setpriv --reuid=nobody --regid="$NOBODY_GID" --clear-groups)

# An outsider may not own the names.
for name in org.mrkv.MapReduce1 org.mrkv.KeyValue1; do
        rc=0
        timeout 10 "${outsider[@]}" "$MRKV_TEST_BUS_ECHO" "$A" "$name" >/dev/null 2>"$T/own.err" || rc=$?
        [ $rc -eq 3 ] || fail "an outsider owning $name: exit $rc, expected 3 (refused): $(cat "$T/own.err")"
done

# One connection per name, as the two daemons have: dbus-daemon matches send_destination=
# against every name the receiving connection owns, so one owning both would have
# each file's rules apply to the other's calls.
for name in org.mrkv.MapReduce1 org.mrkv.KeyValue1; do
        "${owner[@]}" "$MRKV_TEST_BUS_ECHO" "$A" $name >"$T/$name.out" 2>"$T/$name.err" &
        track_pid $!
        wait_for 10 "$name owned by the stand-in for mrkv" grep -qx ready "$T/$name.out"
done

MR=(org.mrkv.MapReduce1 /org/mrkv/MapReduce1)
JOB=(org.mrkv.MapReduce1 /org/mrkv/MapReduce1/job/1)
KV=(org.mrkv.KeyValue1 /org/mrkv/KeyValue1)
P=org.freedesktop.DBus.Properties
n=0
# expect WHO allow|deny DEST PATH INTERFACE MEMBER [SIGNATURE ARG...]
expect() {
        local who=$1 want=$2 rc=0 out
        shift 2
        local -n as=$who
        out=$(timeout 10 "${as[@]}" busctl --address="$A" --timeout=5 call "$@" 2>&1) || rc=$?
        if [ "$want" = allow ]; then
                [ $rc -eq 0 ] || fail "$who: $* refused: $out"
        else
                [ $rc -ne 0 ] && [[ $out == *"Rejected send message"* || $out == *"ccess denied"* ]] ||
                        fail "$who: $* was not refused by the policy (exit $rc): $out"
        fi
        n=$((n + 1))
}

root=(env)
for who in root owner member outsider; do
        for obj in MR KV; do
                declare -n o=$obj
                expect $who allow "${o[@]}" org.freedesktop.DBus.Introspectable Introspect
                expect $who allow "${o[@]}" org.freedesktop.DBus.Peer Ping
                expect $who allow "${o[@]}" $P Get ss org.freedesktop.LogControl1 LogLevel
                expect $who allow "${o[@]}" $P GetAll s org.freedesktop.LogControl1
                unset -n o
        done
        expect $who allow "${MR[@]}" org.freedesktop.DBus.ObjectManager GetManagedObjects
        expect $who allow "${MR[@]}" $P Get ss org.mrkv.MapReduce1 Jobs
        expect $who allow "${JOB[@]}" $P GetAll s org.mrkv.MapReduce1.Job

        [ $who = outsider ] && control=deny || control=allow
        expect $who $control "${MR[@]}" org.mrkv.MapReduce1 SubmitJob
        expect $who $control "${MR[@]}" org.mrkv.MapReduce1 CancelJob s 1
        expect $who $control "${JOB[@]}" org.mrkv.MapReduce1.Job Cancel
        expect $who $control "${MR[@]}" $P Set ssv org.freedesktop.LogControl1 LogLevel s debug
        expect $who $control "${KV[@]}" $P Set ssv org.freedesktop.LogControl1 LogLevel s debug
        expect $who $control "${KV[@]}" org.mrkv.KeyValue1 Snapshot
        # Not named in the policy: refused to outsiders until someone allows it.
        expect $who $control "${MR[@]}" org.mrkv.MapReduce1 SomeFutureMethod
done
echo "OK: $n calls as root, mrkv, a member of group mrkv and an outsider; names owned by mrkv only"
EOF2

LIB="$D/lib.sh" NOBODY_GID=$NOBODY_GID "$D/with-dbus-daemon.sh" --config-file "$T/bus.conf" bash "$T/check.sh" "$T"
