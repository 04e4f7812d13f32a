#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# LogControl1's LogTarget, as `systemctl service-log-target` sets it, on mrkv-kvserver
# (the same code serves the coordinator): console, null, journal and auto are taken and
# read back and change where messages go; unknown and unsupported targets are refused
# with org.freedesktop.DBus.Error.InvalidArgs. Where a private mount namespace can be
# made (root), the server runs in one whose /run/systemd/journal/socket is
# journal-recv.py's, and the fields the journal receives are checked too.
# Environment (set by meson): MRKV_KVSERVER.
set -u
: "${MRKV_KVSERVER:?}"
. "$(dirname "$0")/lib.sh"
LC=(org.mrkv.KeyValue1 /org/freedesktop/LogControl1 org.freedesktop.LogControl1)
bctl() { busctl --address="$BUS" --no-pager "$@"; }
target() { bctl get-property "${LC[@]}" LogTarget; }
set_target() { bctl set-property "${LC[@]}" LogTarget s "$1"; }
# in_log TEXT: the server's stderr has a line ending in TEXT.
in_log() { grep -q -- "$1\$" "$tmp/kvserver.log"; }
# journal_record MESSAGE: the fields of the message the journal received with MESSAGE.
journal_record() { awk -v RS= -v m="MESSAGE=$1" '{ for (i = 1; i <= NF; i++) if ($i == m) print }' FS='\n' "$tmp/journal.txt"; }

journal=
case $tmp in
/run/*) ;; # hidden by the tmpfs on /run
*) command -v python3 >/dev/null &&
        unshare -m sh -c 'mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal' 2>/dev/null && journal=yes ;;
esac

if [ -n "$journal" ]; then
    mkdir "$tmp/journal"
    : > "$tmp/journal.txt"
    python3 "$(dirname "$0")/journal-recv.py" "$tmp/journal/socket" "$tmp/journal.txt" &
    poll 10 test -S "$tmp/journal/socket" || fail "journal-recv.py did not bind its socket"
    # unshare, sh and the server are one process: the clean-up kills it.
    unshare -m sh -c 'mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal &&
                      mount --bind "$0" /run/systemd/journal && exec "$@"' "$tmp/journal" \
        "$MRKV_KVSERVER" --listen "unix:$tmp/kv.sock" --state-directory "$tmp/state" --bus-address "$BUS" 2> "$tmp/kvserver.log" &
else
    echo "no private mount namespace: the journal's fields are not checked"
    "$MRKV_KVSERVER" --listen "unix:$tmp/kv.sock" --state-directory "$tmp/state" --bus-address "$BUS" 2> "$tmp/kvserver.log" &
fi
poll 10 bctl status org.mrkv.KeyValue1 >/dev/null 2>&1 || fail "no bus name"

[ "$(target)" = 's "console"' ] || fail "LogTarget at start: $(target)"

# null: nothing anywhere, until console again.
set_target null || fail "LogTarget null"
[ "$(target)" = 's "null"' ] || fail "LogTarget after null: $(target)"
bctl set-property "${LC[@]}" LogLevel s info || fail "LogLevel info"
set_target console || fail "LogTarget console"
poll 10 in_log "Log target set to console." || fail "nothing on stderr after console"
in_log "Log level set to info." && fail "a message went to stderr under the null target"

set_target journal || fail "LogTarget journal"
[ "$(target)" = 's "journal"' ] || fail "LogTarget after journal: $(target)"
if [ -n "$journal" ]; then
    poll 10 sh -c "grep -qx 'MESSAGE=Log target set to journal.' '$tmp/journal.txt'" \
        || fail "the journal did not get the message"
    rec=$(journal_record "Log target set to journal.")
    for f in PRIORITY=6 SYSLOG_IDENTIFIER=mrkv-kvserver CODE_FILE=lib/daemon/bus-util.c \
             CODE_FUNC=property_set_log_target; do
        grep -qx "$f" <<< "$rec" || fail "no $f in the journal's fields:"$'\n'"$rec"
    done
    grep -qx 'CODE_LINE=[0-9]*' <<< "$rec" || fail "no CODE_LINE in:"$'\n'"$rec"
    grep -q '^ERRNO=' <<< "$rec" && fail "ERRNO without an error:"$'\n'"$rec"
    in_log "Log target set to journal." && fail "a message for the journal went to stderr"
fi

# Refused, with the error systemctl reports; the target stays.
for bad in bogus kmsg syslog ""; do
    set_target "$bad" 2>/dev/null && fail "LogTarget '$bad' was accepted"
    if command -v dbus-send >/dev/null; then
        err=$(dbus-send --bus="$BUS" --print-reply --dest=org.mrkv.KeyValue1 /org/freedesktop/LogControl1 \
              org.freedesktop.DBus.Properties.Set string:org.freedesktop.LogControl1 string:LogTarget \
              variant:string:"$bad" 2>&1) && fail "dbus-send: LogTarget '$bad' was accepted"
        grep -q 'org.freedesktop.DBus.Error.InvalidArgs' <<< "$err" || fail "LogTarget '$bad': $err"
    fi
done
[ "$(target)" = 's "journal"' ] || fail "LogTarget after refused ones: $(target)"

# auto: the server's stderr is a file, not the journal stream, so stderr.
set_target auto || fail "LogTarget auto"
[ "$(target)" = 's "auto"' ] || fail "LogTarget after auto: $(target)"
poll 10 in_log "Log target set to auto." || fail "auto did not choose stderr"
if [ -n "$journal" ]; then
    grep -q 'MESSAGE=Log target set to auto' "$tmp/journal.txt" && fail "auto chose the journal"
fi
echo PASS
