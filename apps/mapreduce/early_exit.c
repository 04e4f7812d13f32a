/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lab's mrapps/early_exit.go: map emits (filename, "1"); the reduces of some keys
 * take 3 s, so a worker that exits before all reduces finish (or a coordinator that
 * declares the job done early) leaves output missing. */
#include <string.h>

#include "emit.h"
#include "mrkv/app.h"
#include "random-util.h"
#include "values.h"

static int early_exit_map(const mrkv_host *host, mrkv_emitter *out, const char *filename,
                          const char *contents, size_t size) {
        return emit_string(host, out, filename, "1");
}

static int early_exit_reduce(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                             mrkv_values *values) {
        if (memmem(key, key_len, "sherlock", strlen("sherlock")) || memmem(key, key_len, "tom", strlen("tom")))
                sleep_msec(3000);
        return emit_value_count(host, out, key, key_len, values);
}

MRKV_APP_DEFINE("early_exit", "test app: some reduces take 3 s (lab early_exit.go)", early_exit_map,
                early_exit_reduce)
