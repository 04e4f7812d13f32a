/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* The faults the proxy injects, and the random numbers that pick them. The generator is
 * our own (xoshiro256**) rather than random(3), so that a --seed gives the same faults on
 * every libc and is not disturbed by anything else in the process drawing numbers. */

typedef struct Rng {
        uint64_t s[4];
} Rng;

/* Seeds r from (seed, stream): different streams of one seed are independent sequences,
 * so each connection's faults depend on the seed and its number, not on what other
 * connections did meanwhile. */
void rng_init(Rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_next(Rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t rng_below(Rng *r, uint64_t n);
/* True with probability percent / 100: never at 0, always at 100. */
bool rng_chance(Rng *r, double percent);

typedef struct FaultPolicy {
        double drop_request_percent;
        double drop_reply_percent;
        uint64_t delay_min_usec, delay_max_usec; /* of each forwarded request */
} FaultPolicy;

#define FAULT_DEFAULT_DROP_REQUEST 10.0
#define FAULT_DEFAULT_DROP_REPLY 10.0
#define FAULT_DEFAULT_DELAY_MIN_MSEC 0U
#define FAULT_DEFAULT_DELAY_MAX_MSEC 27U

/* A delay uniform in [delay_min_usec, delay_max_usec]. */
uint64_t fault_pick_delay(const FaultPolicy *p, Rng *r);
