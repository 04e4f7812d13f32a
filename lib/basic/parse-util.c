/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>

#include "macro.h"
#include "parse-util.h"

int parse_uint64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v = 0;

        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        /* Constants, not -errno: the compiler then sees that every error return is negative
         * (else, at -O3, it warns that parse_unsigned() may read v unset). */
        if (errno != 0)
                return errno == ERANGE ? -ERANGE : -EINVAL;
        if (*end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret) {
        uint64_t v;
        int r;

        r = parse_uint64(s, &v);
        if (r < 0)
                return r;
        if (v < min || v > max)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

int parse_seconds(const char *s, uint64_t *ret_usec) {
        const char *dot;
        uint64_t whole = 0, frac = 0, scale = USEC_PER_SEC;
        int r;

        /* Plain decimal only: strtod() would also take "0x10", "1e3" and "inf". */
        if (!s || s[0] == '\0' || strspn(s, "0123456789.") != strlen(s))
                return -EINVAL;
        dot = strchr(s, '.');
        if (dot && (strchr(dot + 1, '.') || (dot == s && dot[1] == '\0')))
                return -EINVAL;

        if (dot != s) {
                _cleanup_free_ char *w = strndup(s, dot ? (size_t) (dot - s) : strlen(s));
                if (!w)
                        return -ENOMEM;
                r = parse_uint64(w, &whole);
                if (r < 0)
                        return r;
        }
        if (whole > 1000000000) /* over 31 years is a typo, not a time-out */
                return -EINVAL;
        if (dot)
                /* Microseconds are the resolution; further digits are rounded. */
                for (const char *p = dot + 1; *p; p++) {
                        scale /= 10;
                        if (scale > 0)
                                frac += (uint64_t) (*p - '0') * scale;
                        else {
                                if (*p >= '5' && p == dot + 7)
                                        frac++;
                                break;
                        }
                }
        *ret_usec = whole * USEC_PER_SEC + frac;
        return 0;
}

int parse_size(const char *s, uint64_t max, uint64_t *ret) {
        unsigned long long v;
        uint64_t factor = 1;
        char *end;

        /* Digits first: strtoull() would also take a sign and leading white space. */
        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -EINVAL;
        if (*end) {
                switch (*end) {
                case 'K':
                case 'k':
                        factor = 1024;
                        break;
                case 'M':
                        factor = 1024 * 1024;
                        break;
                case 'G':
                        factor = 1024 * 1024 * 1024;
                        break;
                default:
                        return -EINVAL;
                }
                end++;
                if (*end == 'i' && end[1] == 'B')
                        end += 2;
                else if (*end == 'B')
                        end++;
                if (*end)
                        return -EINVAL;
        }
        if (v > max / factor)
                return -ERANGE;
        *ret = v * factor;
        return 0;
}

int parse_timeout(const char *s, uint64_t *ret_usec) {
        uint64_t usec;
        int r;

        if (s && streq(s, "infinity")) {
                *ret_usec = UINT64_MAX;
                return 0;
        }
        r = parse_seconds(s, &usec);
        if (r < 0)
                return r;
        if (usec == 0) {
                /* Rounded down to nothing, but not nothing: a limit still. */
                if (!strpbrk(s, "123456789"))
                        return -ERANGE;
                usec = 1;
        }
        *ret_usec = usec;
        return 0;
}
