/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* At most burst events per interval, as systemd's ratelimit_below(): for a log line that
 * a peer can trigger at will (a connection storm, a flood of bad messages), so that it
 * is said once in a while with a count of the times it was not. */
typedef struct RateLimit {
        uint64_t interval; /* µs */
        unsigned burst;
        uint64_t begin;    /* the current interval's start */
        unsigned num;      /* events in it */
        unsigned dropped;  /* events refused since the last one let through */
} RateLimit;

#define RATELIMIT_INIT(interval_usec, n) ((RateLimit) { .interval = (interval_usec), .burst = (n) })

/* Whether the event at now (µs on one clock) may go ahead. When it may, *ret_dropped is
 * set to the number refused since the last one that went ahead, and the count restarts. */
static inline bool ratelimit_below(RateLimit *rl, uint64_t now, unsigned *ret_dropped) {
        if (rl->begin == 0 || now < rl->begin || now - rl->begin >= rl->interval) {
                rl->begin = now ? now : 1;
                rl->num = 0;
        }
        if (rl->num >= rl->burst) {
                rl->dropped++;
                return false;
        }
        rl->num++;
        if (ret_dropped)
                *ret_dropped = rl->dropped;
        rl->dropped = 0;
        return true;
}
