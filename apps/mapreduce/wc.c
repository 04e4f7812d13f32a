/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Word count, as the lab's mrapps/wc.go: map emits (word, "1") for every word; reduce
 * emits how many times its word occurred. */
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
        /* Every value is "1": counting them is all reduce needs, nothing is kept. */
        return emit_value_count(host, out, key, key_len, values);
}

MRKV_APP_DEFINE("wc", "word count: occurrences of every word ([A-Za-z]+)", wc_map, wc_reduce)
