/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <sys/random.h>
#include <time.h>

#include "random-util.h"

int random_below(uint32_t n, uint32_t *ret) {
        /* Values at or above the largest multiple of n are redrawn, so every result is
         * equally likely (a bare modulo would favour small numbers). */
        uint32_t limit, x;

        assert(n > 0);
        limit = UINT32_MAX - UINT32_MAX % n;
        for (;;) {
                ssize_t l = getrandom(&x, sizeof(x), 0);
                if (l < 0 && errno != EINTR)
                        return -errno;
                if (l == (ssize_t) sizeof(x) && x < limit)
                        break;
        }

        *ret = x % n;
        return 0;
}

void sleep_msec(uint64_t ms) {
        struct timespec ts = {
                .tv_sec = (time_t) (ms / 1000),
                .tv_nsec = (long) (ms % 1000) * 1000000L,
        };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}
