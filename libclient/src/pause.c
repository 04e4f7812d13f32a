/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <sys/random.h>
#include <time.h>

#include "macro.h"
#include "pause.h"

void jitter_seed(uint64_t *state) {
        uint64_t seed;

        assert(state);
        /* GRND_NONBLOCK: jitter needs no cryptographic quality, and must not block early at boot. */
        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t) sizeof(seed))
                seed = now_usec() ^ (uint64_t) (uintptr_t) state;
        *state = seed;
}

/* splitmix64: tiny, fast, and good enough to spread retries apart. */
static uint64_t random_next(uint64_t *state) {
        uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

uint64_t jitter(uint64_t *state, uint64_t usec) {
        if (usec == 0)
                return 0;
        return usec / 2 + random_next(state) % usec;
}

void pause_until(uint64_t usec, uint64_t deadline) {
        uint64_t end = MIN(usec_add(now_usec(), usec), deadline);
        struct timespec ts = {
                .tv_sec = (time_t) (end / USEC_PER_SEC),
                .tv_nsec = (long) ((end % USEC_PER_SEC) * NSEC_PER_USEC),
        };

        if (end == UINT64_MAX)
                return; /* "never" is not a time to sleep until; callers pass finite pauses */

        /* An absolute deadline, so that signals interrupting the sleep do not stretch it. */
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}
