#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# packaging/check-deb.sh OUTDIR
#
# Checks the packages packaging/build-deb put in OUTDIR: lintian (-EvIL +pedantic) must
# report no error and no warning, and the .debs must hold what an installed mrkv needs
# to run (programs, units, man pages, app plugins, sysusers.d, the D-Bus policy, the
# library, its symbols file and its development files) with maintainer scripts that
# create the user and enable the sockets only. Prints every problem and exits 1 if
# there is any; 77 (skip) when lintian or dpkg-deb is not installed.
set -euo pipefail

outdir=${1:?Usage: $0 OUTDIR}
for tool in dpkg-deb dpkg-architecture lintian nm; do
        command -v $tool >/dev/null ||
                { echo "$tool is not installed (Debian: dpkg-dev, lintian, binutils); skipping"; exit 77; }
done

problems=0
problem() {
        echo "PROBLEM: $*"
        problems=$((problems + 1))
}

shopt -s nullglob
changes=("$outdir"/mrkv_*.changes)
[ ${#changes[@]} -eq 1 ] || { echo "need exactly one mrkv_*.changes in $outdir, found ${#changes[@]}"; exit 1; }

deb() { # PACKAGE: the path of its .deb
        local f=("$outdir/$1"_*.deb)
        [ ${#f[@]} -eq 1 ] || { problem "no single $1_*.deb in $outdir"; return 1; }
        echo "${f[0]}"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mrkv-check-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- lintian -----------------------------------------------------------------------
# Info and pedantic tags are shown but do not fail: each new lintian release adds some,
# and the ones of bookworm's lintian are fixed or overridden with a reason.
run_lintian() { # FILE
        local rc=0
        echo "== lintian -EvIL +pedantic $(basename "$1")"
        lintian -EvIL +pedantic --fail-on error,warning "$1" > "$tmp/lintian.log" 2>&1 || rc=$?
        grep -v '^running with root privileges' "$tmp/lintian.log" || true
        [ $rc -eq 0 ] || problem "lintian reports errors or warnings on $(basename "$1") (above)"
}
run_lintian "${changes[0]}"
# A source package (build-deb --source) is not in a binary-only .changes.
for f in "$outdir"/mrkv_*.dsc; do
        grep -q '^Architecture:.*source' "${changes[0]}" || run_lintian "$f"
done

# --- contents ----------------------------------------------------------------------
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
declare -A contents
for p in mrkv libmrkv0 libmrkv-dev; do
        f=$(deb $p) || continue
        dpkg-deb -x "$f" "$tmp/$p"
        dpkg-deb -e "$f" "$tmp/$p/DEBIAN"
        # "./usr/bin/x" and "./lib/x -> y" become "usr/bin/x" and "lib/x".
        contents[$p]=$(dpkg-deb -c "$f" | awk '{ sub(/^\.\//, "", $6); print $6 }')
done

has() { # PACKAGE PATH...
        local p=$1 path
        shift
        for path in "$@"; do
                grep -qxF -- "$path" <<<"${contents[$p]:-}" || problem "$p does not ship /$path"
        done
}

programs=(mrkv-coordinator mrkv-worker mrkv-kvserver mrkvctl mrkv-sequential)
units=(mrkv-coordinator.socket mrkv-coordinator.service mrkv-kvserver.socket
       mrkv-kvserver.service mrkv-worker@.service)
apps=(wc indexer crash nocrash mtiming rtiming jobcount early_exit)

has mrkv "${programs[@]/#/usr/bin/}"
has mrkv "${units[@]/#/lib/systemd/system/}"
has mrkv "${units[@]/#/usr/lib/systemd/user/}"
has mrkv usr/lib/sysusers.d/mrkv.conf
has mrkv usr/share/dbus-1/system.d/org.mrkv.MapReduce1.conf usr/share/dbus-1/system.d/org.mrkv.KeyValue1.conf
for a in "${apps[@]}"; do
        has mrkv "usr/lib/$triplet/mrkv/apps/$a.so"
done
has mrkv usr/share/man/man1/mrkvctl.1.gz usr/share/man/man1/mrkv-sequential.1.gz \
        usr/share/man/man8/mrkv-coordinator.8.gz usr/share/man/man8/mrkv-worker.8.gz \
        usr/share/man/man8/mrkv-kvserver.8.gz
# Every program has a page, whichever section it is in.
for b in $(grep '^usr/bin/.' <<<"${contents[mrkv]:-}"); do
        b=${b#usr/bin/}
        grep -qE "^usr/share/man/man[18]/$b\.[18]\.gz\$" <<<"${contents[mrkv]}" ||
                problem "mrkv: /usr/bin/$b has no man page"
done

has libmrkv0 "usr/lib/$triplet/libmrkv.so.0" "usr/lib/$triplet/libmrkv.so.0.2.0"
has libmrkv-dev usr/include/mrkv/kv.h usr/include/mrkv/lock.h "usr/lib/$triplet/libmrkv.so" \
        "usr/lib/$triplet/pkgconfig/libmrkv.pc"
# The app plugin ABI belongs in libmrkv-dev, but only once libclient/meson.build installs it.
grep -qxF usr/include/mrkv/app.h <<<"${contents[libmrkv-dev]:-}" ||
        echo "NOTE: libmrkv-dev has no /usr/include/mrkv/app.h (libclient/meson.build does not install it)"

# --- the installed tree makes sense -------------------------------------------------
root=$tmp/mrkv
if [ -d "$root" ]; then
        # Units start programs this package ships, as the user sysusers.d creates.
        for u in "$root"/lib/systemd/system/*.service "$root"/usr/lib/systemd/user/*.service; do
                exe=$(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$u")
                [ -n "$exe" ] && [ -x "$root$exe" ] ||
                        problem "${u#"$root"}: ExecStart=$exe is not a program of the package"
                user=$(sed -n 's/^User=//p' "$u")
                [ -z "$user" ] || grep -qE "^u +$user " "$root/usr/lib/sysusers.d/mrkv.conf" ||
                        problem "${u#"$root"}: User=$user is not created by sysusers.d/mrkv.conf"
        done
        grep -rlF "obj-$triplet" "$root"/lib "$root"/usr/lib/systemd "$root"/usr/share/dbus-1 &&
                problem "files above name the build directory"

        # Maintainer scripts: the user first, then the sockets enabled and started, but
        # neither the services, the worker template nor the user units.
        postinst=$root/DEBIAN/postinst
        grep -q 'systemd-sysusers.* mrkv.conf' "$postinst" || problem "postinst does not run systemd-sysusers mrkv.conf"
        for s in mrkv-coordinator.socket mrkv-kvserver.socket; do
                grep -q "deb-systemd-helper enable '$s'" "$postinst" || problem "postinst does not enable $s"
        done
        grep -q "deb-systemd-invoke start 'mrkv-coordinator.socket' 'mrkv-kvserver.socket'" "$postinst" ||
                problem "postinst does not start the sockets"
        grep -E "deb-systemd-invoke start .*\.service|deb-systemd-helper (--user )?enable 'mrkv-worker|--user enable" \
                "$postinst" && problem "postinst enables or starts units it should not (above)"
        grep -q "try-restart 'mrkv-coordinator.service' 'mrkv-kvserver.service'" "$postinst" ||
                problem "postinst does not restart running services on upgrade"
        awk '/systemd-sysusers/ { u = NR } /deb-systemd-invoke start/ { s = NR } END { exit !(u && s && u < s) }' \
                "$postinst" || problem "postinst starts the sockets before it creates the mrkv user"
        grep -qE '(^|, )dbus(,|$| )' <<<"$(sed -n 's/^Depends: //p' "$root/DEBIAN/control")" ||
                problem "mrkv does not depend on dbus"
fi

# The symbols file lists exactly what libmrkv.so.0 exports.
lib=$tmp/libmrkv0/usr/lib/$triplet/libmrkv.so.0.2.0
if [ -f "$lib" ]; then
        if [ -f "$tmp/libmrkv0/DEBIAN/symbols" ]; then
                # nm shows a version node itself as a bare "LIBMRKV_0"; dpkg as LIBMRKV_0@LIBMRKV_0.
                nm -D --defined-only "$lib" |
                        awk '{ if ($3 !~ /@/) $3 = $3 "@" $3; sub(/@@/, "@", $3); print $3 }' | sort > "$tmp/exported"
                awk '/^ / { print $1 }' "$tmp/libmrkv0/DEBIAN/symbols" | sort > "$tmp/listed"
                diff -u "$tmp/listed" "$tmp/exported" ||
                        problem "the symbols file (-) and the exports of libmrkv.so.0 (+) differ"
                grep -vq '^mrkv_\|^LIBMRKV_[0-9.]*@' "$tmp/exported" && problem "libmrkv.so.0 exports more than mrkv_*"
                # Every function the public headers declare is exported.
                for f in $(sed -n 's/.*\b\(mrkv_[a-z0-9_]*\)(.*/\1/p' "$tmp"/libmrkv-dev/usr/include/mrkv/kv.h \
                                "$tmp"/libmrkv-dev/usr/include/mrkv/lock.h 2>/dev/null | sort -u); do
                        grep -qx "$f@LIBMRKV_[0-9.]*" "$tmp/exported" || problem "$f is declared in <mrkv/...> but not exported"
                done
        else
                problem "libmrkv0 has no symbols file"
        fi
fi

if [ $problems -gt 0 ]; then
        echo "check-deb: $problems problem(s)"
        exit 1
fi
echo "check-deb: OK"
