/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "json-util.h"

/* The key is a string literal: json-c neither copies it nor looks for an earlier member of
 * that name. */
#define LITERAL_KEY (JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_KEY_IS_CONSTANT)

int json_object_add(json_object *o, const char *key, json_object *value) {
        assert(o);
        assert(key);

        if (!value)
                return -ENOMEM;
        if (json_object_object_add(o, key, value) < 0) {
                json_object_put(value);
                return -ENOMEM;
        }
        return 0;
}

int json_array_append(json_object *a, json_object *value) {
        assert(a);

        if (!value)
                return -ENOMEM;
        if (json_object_array_add(a, value) < 0) {
                json_object_put(value);
                return -ENOMEM;
        }
        return 0;
}

int json_build_object_va(json_object **ret, va_list ap) {
        _cleanup_json_ json_object *o = NULL;
        const char *key;
        int r = 0;

        assert(ret);

        o = json_object_new_object();
        if (!o)
                r = -ENOMEM;

        /* After a failure the remaining pairs are still walked: their values are ours. */
        while ((key = va_arg(ap, const char *))) {
                json_object *value = va_arg(ap, json_object *);

                if (r < 0 || !value) {
                        json_object_put(value);
                        r = -ENOMEM;
                        continue;
                }
                if (json_object_object_add_ex(o, key, value, LITERAL_KEY) < 0) {
                        json_object_put(value);
                        r = -ENOMEM;
                }
        }
        if (r < 0)
                return r;

        *ret = TAKE_PTR(o);
        return 0;
}

int json_build_object(json_object **ret, ...) {
        va_list ap;
        int r;

        va_start(ap, ret);
        r = json_build_object_va(ret, ap);
        va_end(ap);
        return r;
}

/* The bytes a JSON string cannot hold as they are. */
static bool needs_escape(unsigned char c) {
        return c < 0x20 || c == '"' || c == '\\';
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Whether one of the 8 bytes of x is below n (n <= 128), or equals c: the bit tricks of
 * "Bit Twiddling Hacks" (has less, has zero byte). */
static uint64_t word_has_less(uint64_t x, uint8_t n) {
        return (x - ONES * n) & ~x & HIGHS;
}

static uint64_t word_has_byte(uint64_t x, uint8_t c) {
        return word_has_less(x ^ (ONES * c), 1);
}

size_t json_plain_prefix(const char *s, size_t n, bool ascii) {
        size_t i = 0;

#ifdef __SSE2__
        /* Sixteen bytes at a time (SSE2 is part of x86-64): the mask's lowest bit is the
         * first byte that needs a look. */
        const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), control = _mm_set1_epi8(0x1f);

        for (; i + 16 <= n; i += 16) {
                __m128i x = _mm_loadu_si128((const __m128i *) (s + i));
                __m128i look = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                                            _mm_cmpeq_epi8(_mm_min_epu8(x, control), x));
                unsigned m = (unsigned) _mm_movemask_epi8(look) | (ascii ? (unsigned) _mm_movemask_epi8(x) : 0);

                if (m != 0)
                        return i + (size_t) __builtin_ctz(m);
        }
#endif
        /* Eight bytes at a time while none of them needs a look, then one at a time. A
         * borrow only marks bytes above the first one that needs a look, so on a little
         * endian machine the lowest mark is that byte. */
        for (uint64_t x, m; i + 8 <= n; i += 8) {
                memcpy(&x, s + i, 8);
                m = word_has_less(x, 0x20) | word_has_byte(x, '"') | word_has_byte(x, '\\') |
                        (ascii ? x & HIGHS : 0);
                if (m != 0) {
#if __BYTE_ORDER == __LITTLE_ENDIAN
                        return i + (size_t) __builtin_ctzll(m) / 8;
#else
                        break;
#endif
                }
        }
        while (i < n && !needs_escape((unsigned char) s[i]) && (!ascii || (unsigned char) s[i] < 0x80))
                i++;
        return i;
}

static char *escape_byte(char *d, unsigned char c) {
        static const char hex[] = "0123456789abcdef";

        *d++ = '\\';
        switch (c) {
        case '"':
        case '\\':
                *d++ = (char) c;
                return d;
        case '\n':
                *d++ = 'n';
                return d;
        case '\t':
                *d++ = 't';
                return d;
        case '\r':
                *d++ = 'r';
                return d;
        default:
                memcpy(d, "u00", 3);
                d[3] = hex[c >> 4];
                d[4] = hex[c & 0xf];
                return d + 5;
        }
}

size_t json_escape(char *dst, const char *s, size_t n) {
        char *d = dst;
        size_t i = 0;

        *d++ = '"';
        while (i < n) {
                /* The bytes up to the next one to escape go in one copy. */
                size_t run = i + json_plain_prefix(s + i, n - i, false);

                d = mempcpy(d, s + i, run - i);
                if (run < n)
                        d = escape_byte(d, (unsigned char) s[run++]);
                i = run;
        }
        *d++ = '"';
        return (size_t) (d - dst);
}

json_object *json_string_array_new(char *const *v, size_t n) {
        json_object *a;

        if (n > INT_MAX)
                return NULL;
        a = json_object_new_array_ext((int) n);
        if (!a)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (json_array_append(a, json_object_new_string(v[i])) < 0) {
                        json_object_put(a);
                        return NULL;
                }
        return a;
}
