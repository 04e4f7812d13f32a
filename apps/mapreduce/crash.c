/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lab's mrapps/crash.go: nocrash's map and reduce, but every call first maybe exits
 * the whole worker (a third of calls) or stalls it for up to 10 s (another third), to
 * test that the coordinator reassigns tasks and the output stays correct. */
#include <stdlib.h>

#include "crashtest.h"
#include "mrkv/app.h"
#include "random-util.h"

static void maybe_crash(void) {
        uint32_t r, ms;

        /* Without randomness the test loses its crashes, not its correctness: carry on. */
        if (random_below(1000, &r) < 0)
                return;
        if (r < 330)
                exit(1);
        if (r < 660 && random_below(10 * 1000, &ms) >= 0)
                sleep_msec(ms);
}

static int crash_map(const mrkv_host *host, mrkv_emitter *out, const char *filename, const char *contents,
                     size_t size) {
        maybe_crash();
        return crashtest_map(host, out, filename, contents, size);
}

static int crash_reduce(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                        mrkv_values *values) {
        maybe_crash();
        return crashtest_reduce(host, out, key, key_len, values);
}

MRKV_APP_DEFINE("crash", "test app: exits or stalls the worker at random (lab crash.go)", crash_map,
                crash_reduce)
