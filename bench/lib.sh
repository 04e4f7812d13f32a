# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by the benchmark scripts: their common command line, BUILD-DIR [--quick], and the
# check that the build has what they run. Sets build (absolute), quick (0 or 1) and root
# (the source tree).

bench_usage() {
        echo "usage: $0 BUILD-DIR [--quick]" >&2
        exit 2
}

bench_parse_args() {
        [ $# -ge 1 ] && [ $# -le 2 ] || bench_usage
        build=$1
        quick=0
        if [ $# = 2 ]; then
                [ "$2" = --quick ] || bench_usage
                quick=1
        fi
        root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
        case $build in /*) ;; *) build=$(cd "$build" && pwd) ;; esac
}

# Exits unless every FILE, a program or plugin of the build, is there.
bench_require_built() {
        local f
        for f in "$@"; do
                [ -x "$f" ] || { echo "missing $f: build first (meson compile -C $build)" >&2; exit 1; }
        done
}
