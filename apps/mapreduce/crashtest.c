/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "crashtest.h"
#include "emit.h"
#include "values.h"

int crashtest_map(const mrkv_host *host, mrkv_emitter *out, const char *filename, const char *contents,
                  size_t size) {
        int r;

        r = emit_string(host, out, "a", filename);
        if (r < 0)
                return r;
        r = emit_number(host, out, "b", 1, (int64_t) strlen(filename));
        if (r < 0)
                return r;
        r = emit_number(host, out, "c", 1, (int64_t) size);
        if (r < 0)
                return r;
        return emit_string(host, out, "d", "xyzzy");
}

int crashtest_reduce(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                     mrkv_values *values) {
        /* Sorted, so that every run, crashed and retried or not, writes the same output. */
        return emit_sorted_values(host, out, key, key_len, values, false, " ");
}
