/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "varlink-view.h"

/* After varlink_message_check() the input is strict JSON already: the reader only tells
 * plain calls from the rest. Unchecked, it validates what it reads as the check would
 * (strings of printable ASCII, integers without leading zeros that fit 64 bits), and
 * declines the rest: the check then decides. */
typedef struct Reader {
        const char *p, *end;
        bool parameters;        /* seen */
        bool unchecked;
} Reader;

static void skip_ws(Reader *r) {
        while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
                r->p++;
}

static bool take(Reader *r, char c) {
        skip_ws(r);
        if (r->p >= r->end || *r->p != c)
                return false;
        r->p++;
        return true;
}

/* A string without escapes: then its first quote ends it. */
static bool read_string(Reader *r, const char **ret, size_t *ret_size) {
        const char *b, *e;

        if (!take(r, '"'))
                return false;
        b = r->p;
        /* Checked strings hold no control characters: a quote or a backslash stops it.
         * Unchecked, anything but printable ASCII also does, and declines. */
        e = b + json_plain_prefix(b, (size_t) (r->end - b), r->unchecked);
        if (e >= r->end || *e != '"')
                return false;
        *ret = b;
        *ret_size = (size_t) (e - b);
        r->p = e + 1;
        return true;
}

/* An unsigned integer: digits, and no fraction or exponent after them. */
static bool read_digits(Reader *r, const char **ret, size_t *ret_size) {
        const char *b = r->p;

        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
                r->p++;
        if (r->p == b || (r->p < r->end && (*r->p == '.' || *r->p == 'e' || *r->p == 'E')))
                return false;
        /* What the check refuses: a leading zero, and more than json-c reads without
         * clamping it. */
        if (r->unchecked && ((*b == '0' && r->p - b > 1) || r->p - b > 20 ||
                             (r->p - b == 20 && memcmp(b, "18446744073709551615", 20) > 0)))
                return false;
        *ret = b;
        *ret_size = (size_t) (r->p - b);
        return true;
}

static bool read_field(Reader *r, VarlinkView *v) {
        VarlinkViewField f = {};

        if (v->n_fields >= VARLINK_VIEW_FIELDS_MAX || !read_string(r, &f.name, &f.name_size) || !take(r, ':'))
                return false;
        skip_ws(r);
        f.string = r->p < r->end && *r->p == '"';
        if (!(f.string ? read_string(r, &f.value, &f.value_size) : read_digits(r, &f.value, &f.value_size)))
                return false;
        for (size_t i = 0; i < v->n_fields; i++)
                if (v->fields[i].name_size == f.name_size && memcmp(v->fields[i].name, f.name, f.name_size) == 0)
                        return false; /* json-c keeps the last of a repeated name; leave that to it */
        v->fields[v->n_fields++] = f;
        return true;
}

/* Reads "{" member ("," member)* "}" or "{}", calling member for each. */
static bool read_object(Reader *r, bool (*member)(Reader *r, VarlinkView *v), VarlinkView *v) {
        if (!take(r, '{'))
                return false;
        if (take(r, '}'))
                return true;
        do {
                if (!member(r, v))
                        return false;
        } while (take(r, ','));
        return take(r, '}');
}

static bool read_member(Reader *r, VarlinkView *v) {
        const char *name;
        size_t size;

        if (!read_string(r, &name, &size) || !take(r, ':'))
                return false;
        if (size == 6 && memcmp(name, "method", 6) == 0 && !v->method)
                return read_string(r, &v->method, &v->method_size);
        if (size == 10 && memcmp(name, "parameters", 10) == 0 && !r->parameters) {
                r->parameters = true;
                skip_ws(r);
                if (r->p < r->end && *r->p != '{')
                        return false;
                return read_object(r, read_field, v);
        }
        return false; /* "more", "oneway", a repeated member: the general path */
}

static bool view_parse(const char *data, size_t size, bool unchecked, VarlinkView *ret) {
        Reader r = { .p = data, .end = data + size, .unchecked = unchecked };

        *ret = (VarlinkView) {};
        if (!read_object(&r, read_member, ret) || !ret->method)
                return false;
        skip_ws(&r);
        return r.p == r.end;
}

bool varlink_view_parse(const char *data, size_t size, VarlinkView *ret) {
        return view_parse(data, size, false, ret);
}

bool varlink_view_parse_unchecked(const char *data, size_t size, VarlinkView *ret) {
        return size > 0 && size <= INT32_MAX && view_parse(data, size, true, ret);
}

const VarlinkViewField *varlink_view_field(const VarlinkView *v, const char *name) {
        size_t n = strlen(name);

        for (size_t i = 0; i < v->n_fields; i++)
                if (v->fields[i].name_size == n && memcmp(v->fields[i].name, name, n) == 0)
                        return &v->fields[i];
        return NULL;
}

bool varlink_view_match(const VarlinkView *v, const char *const names[], const bool string[], size_t n,
                        const VarlinkViewField *ret[]) {
        if (v->n_fields != n)
                return false;
        for (size_t i = 0; i < n; i++) {
                ret[i] = varlink_view_field(v, names[i]);
                if (!ret[i] || ret[i]->string != string[i])
                        return false;
        }
        return true;
}

bool varlink_view_uint64(const VarlinkViewField *f, uint64_t *ret) {
        uint64_t v = 0;

        if (f->string)
                return false;
        for (size_t i = 0; i < f->value_size; i++) {
                unsigned d = (unsigned) (f->value[i] - '0');

                if (v > (UINT64_MAX - d) / 10)
                        return false;
                v = v * 10 + d;
        }
        *ret = v;
        return true;
}
