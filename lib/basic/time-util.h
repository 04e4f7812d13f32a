/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <time.h>

#include "macro.h"

/* A clock in microseconds. */
static inline uint64_t clock_usec(clockid_t clock) {
        struct timespec ts;

        if (clock_gettime(clock, &ts) < 0)
                return 0; /* only with an invalid clock id */
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* CLOCK_MONOTONIC in microseconds: what time-outs and deadlines are measured on. */
static inline uint64_t now_usec(void) {
        return clock_usec(CLOCK_MONOTONIC);
}

/* a + b, saturating at UINT64_MAX (which means "never"). */
static inline uint64_t usec_add(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}
