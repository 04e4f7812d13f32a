#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs what the build needs (tools/deps.sh build: no test or packaging tools),
# builds mrkv, generates sample text and runs a word count with one coordinator and
# three workers, then prints the most frequent words and how long the job took.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

tools/deps.sh build
[ -d build/meson-info ] || meson setup build >/dev/null
meson compile -C build >/dev/null

demo=$top/build/demo
rm -rf "$demo"
mkdir -p "$demo/job"
build/tests/tools/gencorpus/mrkv-gencorpus --files 8 --size 400000 --prefix text- "$demo/in"
echo "Input: $(ls "$demo"/in | wc -l) files, $(du -sh "$demo/in" | cut -f1) of generated text in $demo/in"

export MRKV_COORDINATOR_ADDRESS=unix:$demo/coordinator.sock
export MRKV_APP_PATH=$top/build/apps/mapreduce
cd "$demo/job"

start=$(date +%s%N)
"$top/build/daemons/coordinator/mrkv-coordinator" ../in/*.txt &
coordinator=$!
for _ in $(seq 200); do [ -S "$demo/coordinator.sock" ] && break; sleep 0.02; done
for _ in 1 2 3; do "$top/build/daemons/worker/mrkv-worker" wc & done
wait $coordinator
end=$(date +%s%N)
wait

echo
echo "Most frequent words:"
sort -k2,2nr -k1,1 mr-out-* | head -n 10 | awk '{ printf "  %-12s %s\n", $1, $2 }'
echo
printf 'Word count over %s files with 3 workers took %d ms (output: %s/mr-out-*).\n' \
    "$(ls ../in | wc -l)" $(( (end - start) / 1000000 )) "$demo/job"
