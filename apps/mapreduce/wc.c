/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Word count, as the lab's mrapps/wc.go: map emits (word, "1") for every word; reduce
 * emits how many times its word occurred. */
#include "emit.h"
#include "mrkv/app.h"
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
        const char *v;
        size_t l;
        int64_t count = 0;
        int r;

        /* Every value is "1": counting them is all reduce needs, nothing is kept. */
        while ((r = host->next_value(values, &v, &l)) > 0)
                count++;
        if (r < 0)
                return r;

        return emit_number(host, out, key, key_len, count);
}

MRKV_APP_DEFINE("wc", "word count: occurrences of every word ([A-Za-z]+)", wc_map, wc_reduce)
