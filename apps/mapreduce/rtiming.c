/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lab's mrapps/rtiming.go: map emits ten keys, a to j; every reduce reports how many
 * reduces ran at the same time, to test that workers reduce in parallel. */
#include "emit.h"
#include "mrkv/app.h"
#include "nparallel.h"

static int rtiming_map(const mrkv_host *host, mrkv_emitter *out, const char *filename, const char *contents,
                       size_t size) {
        for (char k = 'a'; k <= 'j'; k++) {
                int r = host->emit(out, &k, 1, "1", 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int rtiming_reduce(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                          mrkv_values *values) {
        int n = nparallel("reduce");

        if (n < 0)
                return n;
        return emit_number(host, out, key, key_len, n);
}

MRKV_APP_DEFINE("rtiming", "test app: reports how many reduces ran in parallel (lab rtiming.go)", rtiming_map,
                rtiming_reduce)
