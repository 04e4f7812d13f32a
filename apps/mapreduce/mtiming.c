/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lab's mrapps/mtiming.go: every map reports when it ran and how many maps ran at
 * the same time, to test that workers map in parallel. */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "mrkv/app.h"
#include "nparallel.h"
#include "values.h"

static int mtiming_map(const mrkv_host *host, mrkv_emitter *out, const char *filename, const char *contents,
                       size_t size) {
        char key[64], value[64];
        struct timespec now;
        int n, kl, vl, r;
        pid_t pid = getpid();

        if (clock_gettime(CLOCK_REALTIME, &now) < 0)
                return -errno;
        n = nparallel("map");
        if (n < 0)
                return n;

        kl = snprintf(key, sizeof(key), "times-%d", (int) pid);
        vl = snprintf(value, sizeof(value), "%.1f", (double) now.tv_sec + (double) now.tv_nsec / 1e9);
        r = host->emit(out, key, (size_t) kl, value, (size_t) vl);
        if (r < 0)
                return r;

        kl = snprintf(key, sizeof(key), "parallel-%d", (int) pid);
        vl = snprintf(value, sizeof(value), "%d", n);
        return host->emit(out, key, (size_t) kl, value, (size_t) vl);
}

static int mtiming_reduce(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                          mrkv_values *values) {
        return emit_sorted_values(host, out, key, key_len, values, false, " ");
}

MRKV_APP_DEFINE("mtiming", "test app: reports how many maps ran in parallel (lab mtiming.go)", mtiming_map,
                mtiming_reduce)
