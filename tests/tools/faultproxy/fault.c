/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>

#include "fault.h"

/* splitmix64, the seeding function the xoshiro authors recommend: it turns any seed,
 * even 0 or small consecutive numbers, into well-mixed state. */
static uint64_t splitmix64(uint64_t *x) {
        uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

void rng_init(Rng *r, uint64_t seed, uint64_t stream) {
        /* Mix the stream number in first so that (seed, stream) pairs do not collide the way
         * seed + stream would. */
        uint64_t x = seed, y = stream;
        x ^= splitmix64(&y);
        for (unsigned i = 0; i < 4; i++)
                r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t v, int k) {
        return (v << k) | (v >> (64 - k));
}

uint64_t rng_next(Rng *r) {
        uint64_t *s = r->s;
        uint64_t result = rotl(s[1] * 5, 7) * 9;
        uint64_t t = s[1] << 17;

        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return result;
}

uint64_t rng_below(Rng *r, uint64_t n) {
        uint64_t limit, x;

        assert(n > 0);
        /* Reject the top partial block so that every residue is equally likely. */
        limit = UINT64_MAX - UINT64_MAX % n;
        do
                x = rng_next(r);
        while (x >= limit);
        return x % n;
}

bool rng_chance(Rng *r, double percent) {
        /* 53 random bits make a double uniform in [0, 1): "< 1.0" always holds, "< 0.0" never. */
        double u = (double) (rng_next(r) >> 11) * 0x1.0p-53;
        return u < percent / 100.0;
}

uint64_t fault_pick_delay(const FaultPolicy *p, Rng *r) {
        assert(p->delay_min_usec <= p->delay_max_usec);
        if (p->delay_min_usec == p->delay_max_usec)
                return p->delay_min_usec;
        return p->delay_min_usec + rng_below(r, p->delay_max_usec - p->delay_min_usec + 1);
}
