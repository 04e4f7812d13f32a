/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Word count, as the lab's mrapps/wc.go: map emits (word, "1") for every word; reduce
 * emits how many times its word occurred. combine sums a map task's counts of a word into
 * one, and reduce sums counts, so the output is the same with and without it. */
#include "mrkv/app.h"
#include "values.h"
#include "words.h"

static int wc_map(const mrkv_host *host, mrkv_emitter *out, const char *filename, const char *contents,
                  size_t size) {
        const char *w;
        size_t pos = 0, n;

        while ((n = word_next(contents, size, &pos, &w)) > 0) {
                int r = host->emit(out, w, n, "1", 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int wc_reduce(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                     mrkv_values *values) {
        /* A "1" from map or a partial sum from combine: nothing is kept. */
        return emit_value_sum(host, out, key, key_len, values);
}

static int wc_combine(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                      mrkv_values *values) {
        return emit_value_sum(host, out, key, key_len, values);
}

MRKV_APP_DEFINE_COMBINE("wc", "word count: occurrences of every word ([A-Za-z]+)", wc_map, wc_reduce, wc_combine)
