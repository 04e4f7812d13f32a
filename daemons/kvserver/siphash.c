/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SipHash by Jean-Philippe Aumasson and Daniel J. Bernstein. */
#include <string.h>

#include "siphash.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

typedef struct SipState {
        uint64_t v0, v1, v2, v3;
} SipState;

static inline void sipround(SipState *s) {
        s->v0 += s->v1;
        s->v1 = ROTL(s->v1, 13);
        s->v1 ^= s->v0;
        s->v0 = ROTL(s->v0, 32);
        s->v2 += s->v3;
        s->v3 = ROTL(s->v3, 16);
        s->v3 ^= s->v2;
        s->v0 += s->v3;
        s->v3 = ROTL(s->v3, 21);
        s->v3 ^= s->v0;
        s->v2 += s->v1;
        s->v1 = ROTL(s->v1, 17);
        s->v1 ^= s->v2;
        s->v2 = ROTL(s->v2, 32);
}

static inline uint64_t load_le64(const uint8_t *p) {
        uint64_t v;

        memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        v = __builtin_bswap64(v);
#endif
        return v;
}

static inline uint64_t siphash(
        const void *data, size_t size, const uint8_t key[static 16], unsigned c_rounds, unsigned d_rounds) {
        const uint8_t *in = data, *end = in + (size & ~(size_t) 7);
        uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
        SipState s = {
                .v0 = 0x736f6d6570736575ULL ^ k0,
                .v1 = 0x646f72616e646f6dULL ^ k1,
                .v2 = 0x6c7967656e657261ULL ^ k0,
                .v3 = 0x7465646279746573ULL ^ k1,
        };
        uint64_t b = (uint64_t) size << 56;

        for (; in != end; in += 8) {
                uint64_t m = load_le64(in);

                s.v3 ^= m;
                for (unsigned i = 0; i < c_rounds; i++)
                        sipround(&s);
                s.v0 ^= m;
        }

        /* The last 0..7 bytes, little-endian, under the length byte. */
        for (unsigned i = 0; i < (size & 7); i++)
                b |= (uint64_t) in[i] << (8 * i);

        s.v3 ^= b;
        for (unsigned i = 0; i < c_rounds; i++)
                sipround(&s);
        s.v0 ^= b;

        s.v2 ^= 0xff;
        for (unsigned i = 0; i < d_rounds; i++)
                sipround(&s);

        return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

uint64_t siphash13(const void *data, size_t size, const uint8_t key[static 16]) {
        return siphash(data, size, key, 1, 3);
}

uint64_t siphash24(const void *data, size_t size, const uint8_t key[static 16]) {
        return siphash(data, size, key, 2, 4);
}
