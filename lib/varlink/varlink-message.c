/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <pthread.h>

#include <json-c/json_tokener.h>

#include "macro.h"
#include "varlink-message.h"

/* A strict RFC 8259 check run before json-c, whose "strict" mode still takes single
 * quotes, NaN and Infinity, raw control characters in strings, leading zeros,
 * overlong UTF-8 and surrogates, and saturates integers beyond 64 bits. */
typedef struct Scanner {
        const uint8_t *p, *end;
        unsigned depth;
} Scanner;

#define JSON_MAX_DEPTH 64U

static void skip_ws(Scanner *s) {
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
                s->p++;
}

/* One UTF-8 sequence, well-formed per RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF. */
static bool scan_utf8(Scanner *s) {
        const uint8_t *p = s->p;
        uint8_t c = *p;
        size_t n;
        uint8_t lo = 0x80, hi = 0xbf;

        if (c >= 0xc2 && c <= 0xdf)
                n = 1;
        else if (c >= 0xe0 && c <= 0xef) {
                n = 2;
                if (c == 0xe0)
                        lo = 0xa0;
                else if (c == 0xed)
                        hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 3;
                if (c == 0xf0)
                        lo = 0x90;
                else if (c == 0xf4)
                        hi = 0x8f;
        } else
                return false;

        if ((size_t) (s->end - p) < n + 1)
                return false;
        if (p[1] < lo || p[1] > hi)
                return false;
        for (size_t i = 2; i <= n; i++)
                if (p[i] < 0x80 || p[i] > 0xbf)
                        return false;
        s->p += n + 1;
        return true;
}

static bool scan_string(Scanner *s) {
        s->p++; /* the opening quote */
        while (s->p < s->end) {
                uint8_t c;

                /* Plain ASCII needs no look byte by byte. */
                s->p += json_plain_prefix((const char *) s->p, (size_t) (s->end - s->p), true);
                if (s->p >= s->end)
                        break;
                c = *s->p;

                if (c == '"') {
                        s->p++;
                        return true;
                }
                if (c < 0x20)
                        return false;
                if (c == '\\') {
                        if (s->end - s->p < 2)
                                return false;
                        c = s->p[1];
                        if (c == 'u') {
                                if (s->end - s->p < 6)
                                        return false;
                                for (int i = 2; i < 6; i++)
                                        if (!isxdigit(s->p[i]))
                                                return false;
                                s->p += 6;
                        } else if (strchr("\"\\/bfnrt", c) && c != '\0')
                                s->p += 2;
                        else
                                return false;
                } else if (c < 0x80)
                        s->p++;
                else if (!scan_utf8(s))
                        return false;
        }
        return false;
}

/* Whether the decimal digits [b, e) (no sign, no leading zero) are at most max. */
static bool digits_at_most(const uint8_t *b, const uint8_t *e, const char *max) {
        size_t n = (size_t) (e - b), m = strlen(max);
        return n < m || (n == m && memcmp(b, max, n) <= 0);
}

static bool scan_number(Scanner *s) {
        bool negative = false, integer = true;
        const uint8_t *digits;

        if (*s->p == '-') {
                negative = true;
                s->p++;
        }
        digits = s->p;
        if (s->p >= s->end || !isdigit(*s->p))
                return false;
        if (*s->p == '0')
                s->p++;
        else
                while (s->p < s->end && isdigit(*s->p))
                        s->p++;
        const uint8_t *digits_end = s->p;

        if (s->p < s->end && *s->p == '.') {
                integer = false;
                s->p++;
                if (s->p >= s->end || !isdigit(*s->p))
                        return false;
                while (s->p < s->end && isdigit(*s->p))
                        s->p++;
        }
        if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
                integer = false;
                s->p++;
                if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
                        s->p++;
                if (s->p >= s->end || !isdigit(*s->p))
                        return false;
                while (s->p < s->end && isdigit(*s->p))
                        s->p++;
        }

        /* json-c would clamp an integer outside int64/uint64 silently: refuse it. */
        if (integer)
                return negative ? digits_at_most(digits, digits_end, "9223372036854775808")
                                : digits_at_most(digits, digits_end, "18446744073709551615");
        return true;
}

static bool scan_literal(Scanner *s, const char *word) {
        size_t n = strlen(word);
        if ((size_t) (s->end - s->p) < n || memcmp(s->p, word, n) != 0)
                return false;
        s->p += n;
        return true;
}

static bool scan_value(Scanner *s);

static bool scan_container(Scanner *s, uint8_t close, bool object) {
        if (++s->depth > JSON_MAX_DEPTH)
                return false;
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == close) {
                s->p++;
                s->depth--;
                return true;
        }
        for (;;) {
                if (object) {
                        if (s->p >= s->end || *s->p != '"' || !scan_string(s))
                                return false;
                        skip_ws(s);
                        if (s->p >= s->end || *s->p != ':')
                                return false;
                        s->p++;
                }
                if (!scan_value(s))
                        return false;
                skip_ws(s);
                if (s->p >= s->end)
                        return false;
                if (*s->p == close) {
                        s->p++;
                        s->depth--;
                        return true;
                }
                if (*s->p != ',')
                        return false;
                s->p++;
                skip_ws(s);
        }
}

static bool scan_value(Scanner *s) {
        skip_ws(s);
        if (s->p >= s->end)
                return false;
        switch (*s->p) {
        case '{':
                return scan_container(s, '}', true);
        case '[':
                return scan_container(s, ']', false);
        case '"':
                return scan_string(s);
        case 't':
                return scan_literal(s, "true");
        case 'f':
                return scan_literal(s, "false");
        case 'n':
                return scan_literal(s, "null");
        default:
                return scan_number(s);
        }
}

static bool json_is_strict(const char *data, size_t size) {
        Scanner s = { .p = (const uint8_t *) data, .end = (const uint8_t *) data + size };

        skip_ws(&s);
        if (s.p >= s.end || *s.p != '{' || !scan_value(&s))
                return false;
        skip_ws(&s);
        return s.p == s.end;
}

/* One tokener per thread, reset for each message: allocating one per message (with its
 * 64-deep stack, zeroed) cost as much as the parse itself. The key's destructor frees
 * it when a thread ends; the main thread's stays reachable until exit. */
static pthread_key_t tokener_key;
static bool tokener_key_ok = false;
static pthread_once_t tokener_once = PTHREAD_ONCE_INIT;

static void tokener_destroy(void *tok) {
        json_tokener_free(tok);
}

static void tokener_key_init(void) {
        tokener_key_ok = pthread_key_create(&tokener_key, tokener_destroy) == 0;
}

static json_tokener *tokener_new(void) {
        json_tokener *tok = json_tokener_new_ex(64);

        /* json_is_strict() has checked the UTF-8 already, more strictly than json-c
         * would; validating again cost a tenth of a Put's CPU. */
        if (tok)
                json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        return tok;
}

int varlink_message_check(const char *data, size_t size) {
        assert(data || size == 0);

        if (size == 0 || size > INT32_MAX || !json_is_strict(data, size))
                return -EBADMSG;
        return 0;
}

int varlink_message_parse(const char *data, size_t size, json_object **ret) {
        int r;

        r = varlink_message_check(data, size);
        if (r < 0)
                return r;
        return varlink_message_parse_checked(data, size, ret);
}

int varlink_message_parse_checked(const char *data, size_t size, json_object **ret) {
        json_tokener *tok, *own = NULL;
        json_object *o;

        assert(data);
        assert(size > 0 && size <= INT32_MAX);
        assert(ret);

        (void) pthread_once(&tokener_once, tokener_key_init);
        tok = tokener_key_ok ? pthread_getspecific(tokener_key) : NULL;
        if (tok)
                json_tokener_reset(tok);
        else {
                tok = tokener_new();
                if (!tok)
                        return -ENOMEM;
                if (!tokener_key_ok || pthread_setspecific(tokener_key, tok) != 0)
                        own = tok; /* no cache: free it below */
        }

        o = json_tokener_parse_ex(tok, data, (int) size);
        /* Anything but one complete object, with nothing after it, is not a message. */
        if (!o || json_tokener_get_error(tok) != json_tokener_success ||
            json_tokener_get_parse_end(tok) != size || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                if (own)
                        json_tokener_free(own);
                return -EBADMSG;
        }

        if (own)
                json_tokener_free(own);
        *ret = o;
        return 0;
}

void varlink_buffer_done(VarlinkBuffer *b) {
        free(b->data);
        *b = (VarlinkBuffer) {};
}

char *varlink_buffer_reserve(VarlinkBuffer *b, size_t n) {
        if (b->data && b->allocated - b->end >= n)
                return b->data + b->end;

        /* Move the live bytes to the front before growing. */
        if (b->start > 0) {
                memmove(b->data, b->data + b->start, b->end - b->start);
                b->end -= b->start;
                b->start = 0;
                if (b->allocated - b->end >= n)
                        return b->data + b->end;
        }

        /* A small first block: a connection's buffers are freed when it closes, and a 4 KiB
         * one left a hole that the next long-lived allocations (a server's store entries)
         * were carved from, so the next connection's buffer no longer fit in it. Blocks
         * this small are reused as they are. */
        size_t want = MAX(b->end + n, MAX(b->allocated * 2, (size_t) 256));
        char *p = realloc(b->data, want);
        if (!p)
                return NULL;
        b->data = p;
        b->allocated = want;
        return b->data + b->end;
}

int varlink_buffer_append(VarlinkBuffer *b, const void *data, size_t n) {
        if (n == 0)
                return 0;
        char *p = varlink_buffer_reserve(b, n);
        if (!p)
                return -ENOMEM;
        memcpy(p, data, n);
        b->end += n;
        return 0;
}

int varlink_buffer_append_message(VarlinkBuffer *b, json_object *message) {
        const char *s;
        size_t n;
        char *p;

        s = json_object_to_json_string_length(message, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                              &n);
        if (!s)
                return -ENOMEM;
        p = varlink_buffer_reserve(b, n + 1);
        if (!p)
                return -ENOMEM;
        memcpy(p, s, n);
        p[n] = '\0';
        b->end += n + 1;
        return 0;
}

void varlink_buffer_consume(VarlinkBuffer *b, size_t n) {
        assert(n <= varlink_buffer_size(b));
        b->start += n;
        b->scanned = b->scanned > n ? b->scanned - n : 0;
        if (b->start == b->end)
                b->start = b->end = 0;
}

int varlink_buffer_next(VarlinkBuffer *b, size_t max, const char **ret_data, size_t *ret_size) {
        size_t avail = varlink_buffer_size(b);
        const char *begin, *nul;

        if (avail == 0)
                return 0; /* and b->data may be NULL */
        begin = b->data + b->start;
        assert(b->scanned <= avail);
        nul = memchr(begin + b->scanned, '\0', avail - b->scanned);
        if (!nul) {
                b->scanned = avail;
                return avail > max ? -EMSGSIZE : 0;
        }
        b->scanned = nul - begin;
        if ((size_t) (nul - begin) > max)
                return -EMSGSIZE;

        *ret_data = begin;
        *ret_size = nul - begin;
        return 1;
}

static int dispatch_string(json_object *v, const char **ret) {
        const char *s;

        if (!json_object_is_type(v, json_type_string))
                return -EINVAL;
        s = json_object_get_string(v);
        /* C strings cannot carry an embedded NUL: refuse rather than truncate. */
        if (strlen(s) != (size_t) json_object_get_string_len(v))
                return -EINVAL;
        *ret = s;
        return 0;
}

static int dispatch_unsigned(json_object *v, uint64_t max, uint64_t *ret) {
        uint64_t u;

        if (!json_object_is_type(v, json_type_int))
                return -EINVAL;
        /* json-c keeps integers above INT64_MAX as unsigned; below zero means negative. */
        if (json_object_get_int64(v) < 0 && json_object_get_uint64(v) == 0)
                return -EINVAL;
        errno = 0;
        u = json_object_get_uint64(v);
        if (errno != 0 || u > max)
                return -EINVAL;
        *ret = u;
        return 0;
}

static int dispatch_int64(json_object *v, int64_t *ret) {
        int64_t i;

        if (!json_object_is_type(v, json_type_int))
                return -EINVAL;
        errno = 0;
        i = json_object_get_int64(v);
        if (errno != 0)
                return -EINVAL;
        /* json-c keeps values above INT64_MAX as unsigned and clamps them here. */
        if (i == INT64_MAX && json_object_get_uint64(v) != (uint64_t) INT64_MAX)
                return -EINVAL;
        *ret = i;
        return 0;
}

/* Arrays and objects are borrowed from the parameters as they are. */
static int dispatch_json(json_object *v, json_type type, json_object **ret) {
        if (!json_object_is_type(v, type))
                return -EINVAL;
        *ret = v;
        return 0;
}

static int dispatch_one(json_object *v, const VarlinkField *f, void *target) {
        void *p = (uint8_t *) target + f->offset;
        uint64_t u;
        int r;

        switch (f->type) {
        case VARLINK_STRING:
                return dispatch_string(v, (const char **) p);
        case VARLINK_UINT64:
                return dispatch_unsigned(v, UINT64_MAX, (uint64_t *) p);
        case VARLINK_UINT32:
                r = dispatch_unsigned(v, UINT32_MAX, &u);
                if (r >= 0)
                        *(uint32_t *) p = (uint32_t) u;
                return r;
        case VARLINK_INT64:
                return dispatch_int64(v, (int64_t *) p);
        case VARLINK_BOOL:
                if (!json_object_is_type(v, json_type_boolean))
                        return -EINVAL;
                *(bool *) p = json_object_get_boolean(v);
                return 0;
        case VARLINK_ARRAY:
                return dispatch_json(v, json_type_array, (json_object **) p);
        case VARLINK_OBJECT:
                return dispatch_json(v, json_type_object, (json_object **) p);
        case VARLINK_ANY:
                *(json_object **) p = v;
                return 0;
        }
        return -EINVAL;
}

int varlink_dispatch(json_object *parameters, const VarlinkField fields[], void *target,
                     const char **ret_bad_field) {
        const char *bad = NULL;
        int r = 0;

        if (parameters && !json_object_is_type(parameters, json_type_object)) {
                if (ret_bad_field)
                        *ret_bad_field = "parameters";
                return -EINVAL;
        }

        if (parameters) {
                json_object_object_foreach(parameters, key, value) {
                        const VarlinkField *f;

                        for (f = fields; f->name; f++)
                                if (streq(f->name, key))
                                        break;
                        if (!f->name) {
                                bad = key;
                                r = -EINVAL;
                                goto finish;
                        }
                        if (!value) /* null counts as absent */
                                continue;
                        r = dispatch_one(value, f, target);
                        if (r < 0) {
                                bad = f->name;
                                goto finish;
                        }
                }
        }

        for (const VarlinkField *f = fields; f->name; f++) {
                json_object *v = NULL;
                if (f->mandatory && (!parameters || !json_object_object_get_ex(parameters, f->name, &v) || !v)) {
                        bad = f->name;
                        r = -EINVAL;
                        goto finish;
                }
        }

finish:
        if (ret_bad_field)
                *ret_bad_field = bad;
        return r;
}
