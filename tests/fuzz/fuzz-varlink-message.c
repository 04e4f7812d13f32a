/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A libFuzzer target for the code every byte from a Varlink peer passes through first
 * (lib/varlink/varlink-message.c): the input is a byte stream as read from a socket;
 * it is framed with VarlinkBuffer + varlink_buffer_next(), each frame is parsed with
 * varlink_message_parse(), and the message and its parameters are dispatched with
 * varlink_dispatch() against field tables of every type.
 *
 * Besides crashes and sanitizer reports, it aborts on broken invariants:
 *  - framing does not depend on how the bytes arrive: the stream appended whole (with
 *    the default size limit) and in small chunks (with a limit of 256 bytes) yields the
 *    same frames, the latter up to the first frame over its limit, and -EMSGSIZE exactly
 *    when a frame or the unterminated rest is over it;
 *  - results are what the headers promise (-EBADMSG without an object, -EINVAL with the
 *    offending field's name, values that match the JSON);
 *  - every string and key of an accepted message is well-formed UTF-8 (checked here by
 *    an implementation of its own), and no integer was clamped into an INT64 field;
 *  - a message read in place as a plain call (varlink-view.h) has the very members,
 *    strings and integers json-c reads in it;
 *  - whatever parses can be sent: varlink_buffer_append_message() frames it with exactly
 *    one NUL, it parses again, and serializes to the same text.
 *
 * Run the fuzzer (clang with its libFuzzer runtime; on Debian `apt-get install clang`):
 *   CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
 *   meson compile -C build-fuzz tests/fuzz/fuzz-varlink-message
 *   ./build-fuzz/tests/fuzz/fuzz-varlink-message tests/fuzz/fuzz-varlink-message/
 * libFuzzer adds the inputs it finds to the first directory it is given; to keep the
 * committed seeds as they are, put a scratch directory first:
 *   mkdir -p /tmp/fuzz-work
 *   UBSAN_OPTIONS=halt_on_error=1 ./build-fuzz/tests/fuzz/fuzz-varlink-message -max_total_time=60 \
 *           /tmp/fuzz-work tests/fuzz/fuzz-varlink-message/
 * (UBSan only prints its findings and goes on unless told to halt.)
 * A crash leaves crash-<sha1> in the working directory; replay it by passing the file.
 *
 * Every build with tests also runs this target over tests/fuzz/fuzz-varlink-message/, through
 * fuzz-replay.c (test "fuzz-varlink-message-corpus"). */
#include <stdio.h>

#include "fuzz.h"
#include "macro.h"
#include "varlink-message.h"
#include "varlink-view.h"

#define SMALL_LIMIT 256U
#define MAX_FRAMES 4096U

#define CHECK(cond)                                                                                   \
        do {                                                                                          \
                if (!(cond)) {                                                                        \
                        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
                        abort();                                                                      \
                }                                                                                     \
        } while (0)

static FuzzStats stats;

const FuzzStats *fuzz_stats(void) {
        return &stats;
}

/* The top level of calls and replies. */
typedef struct Envelope {
        const char *method, *error;
        json_object *parameters;
        bool more, oneway, upgrade, continues;
} Envelope;

static const VarlinkField envelope_fields[] = {
        { "method", VARLINK_STRING, offsetof(Envelope, method), false },
        { "error", VARLINK_STRING, offsetof(Envelope, error), false },
        { "parameters", VARLINK_OBJECT, offsetof(Envelope, parameters), false },
        { "more", VARLINK_BOOL, offsetof(Envelope, more), false },
        { "oneway", VARLINK_BOOL, offsetof(Envelope, oneway), false },
        { "upgrade", VARLINK_BOOL, offsetof(Envelope, upgrade), false },
        { "continues", VARLINK_BOOL, offsetof(Envelope, continues), false },
        {},
};

/* Parameters of every type, under short names and names the daemons use. */
typedef struct Params {
        const char *s, *key, *value, *job;
        uint64_t u, version;
        uint32_t w, attempt;
        int64_t i;
        bool b, ok;
        json_object *a, *o, *x, *files;
} Params;

static const VarlinkField param_fields[] = {
        { "s", VARLINK_STRING, offsetof(Params, s), false },
        { "key", VARLINK_STRING, offsetof(Params, key), false },
        { "value", VARLINK_STRING, offsetof(Params, value), false },
        { "job", VARLINK_STRING, offsetof(Params, job), false },
        { "u", VARLINK_UINT64, offsetof(Params, u), false },
        { "version", VARLINK_UINT64, offsetof(Params, version), false },
        { "w", VARLINK_UINT32, offsetof(Params, w), false },
        { "attempt", VARLINK_UINT32, offsetof(Params, attempt), false },
        { "i", VARLINK_INT64, offsetof(Params, i), false },
        { "b", VARLINK_BOOL, offsetof(Params, b), false },
        { "ok", VARLINK_BOOL, offsetof(Params, ok), false },
        { "a", VARLINK_ARRAY, offsetof(Params, a), false },
        { "files", VARLINK_ARRAY, offsetof(Params, files), false },
        { "o", VARLINK_OBJECT, offsetof(Params, o), false },
        { "x", VARLINK_ANY, offsetof(Params, x), true },
        {},
};

/* The result of a dispatch is one the header allows. */
static void check_dispatch_result(json_object *o, const VarlinkField *fields, int r, const char *bad) {
        if (r == 0) {
                CHECK(!bad);
                return;
        }
        CHECK(r == -EINVAL);
        CHECK(bad);
        for (const VarlinkField *f = fields; f->name; f++)
                if (streq(f->name, bad))
                        return;
        /* Not a field of the table: then an unknown key of the object. */
        CHECK(json_object_object_get_ex(o, bad, NULL));
}

static void check_string(json_object *o, const char *name, const char *s) {
        json_object *v;

        if (!json_object_object_get_ex(o, name, &v) || !v) {
                CHECK(!s);
                return;
        }
        CHECK(s == json_object_get_string(v));
        CHECK(strlen(s) == (size_t) json_object_get_string_len(v));
}

static json_object *value_of(json_object *o, const char *name) {
        json_object *v = NULL;
        return json_object_object_get_ex(o, name, &v) ? v : NULL;
}

static void dispatch_params(json_object *params) {
        /* Sentinels show which fields a successful dispatch set. */
        Params p = { .u = 7, .w = 7, .i = 7, .version = 7, .attempt = 7 };
        const char *bad = NULL;
        json_object *v;
        int r;

        r = varlink_dispatch(params, param_fields, &p, &bad);
        check_dispatch_result(params, param_fields, r, bad);
        if (r < 0) {
                stats.refused++;
                return;
        }
        stats.dispatched++;

        check_string(params, "s", p.s);
        check_string(params, "key", p.key);
        check_string(params, "value", p.value);
        check_string(params, "job", p.job);
        /* The mandatory field is there and not null. */
        CHECK(p.x && p.x == value_of(params, "x"));
        if ((v = value_of(params, "u"))) {
                CHECK(json_object_is_type(v, json_type_int));
                CHECK(p.u == json_object_get_uint64(v));
                CHECK(json_object_get_int64(v) >= 0);
        } else
                CHECK(p.u == 7);
        if ((v = value_of(params, "w"))) {
                CHECK(json_object_get_int64(v) >= 0 && json_object_get_int64(v) <= UINT32_MAX);
                CHECK(p.w == (uint32_t) json_object_get_int64(v));
        } else
                CHECK(p.w == 7);
        if ((v = value_of(params, "i"))) {
                CHECK(p.i == json_object_get_int64(v));
                /* json-c holds integers above INT64_MAX as unsigned; they do not fit. */
                CHECK(p.i < 0 || json_object_get_uint64(v) == (uint64_t) p.i);
        } else
                CHECK(p.i == 7);
        if ((v = value_of(params, "a")))
                CHECK(p.a == v && json_object_is_type(v, json_type_array));
        if ((v = value_of(params, "o")))
                CHECK(p.o == v && json_object_is_type(v, json_type_object));
        if ((v = value_of(params, "b")))
                CHECK(p.b == json_object_get_boolean(v) && json_object_is_type(v, json_type_boolean));
}

/* Well-formed UTF-8 (RFC 3629), decoded the long way round: no overlong forms, no
 * surrogates, nothing above U+10FFFF. Embedded NULs are fine here (escaped \u0000). */
static bool utf8_well_formed(const char *str, size_t len) {
        const uint8_t *p = (const uint8_t *) str;

        for (size_t i = 0; i < len;) {
                uint32_t cp;
                unsigned extra;

                if (p[i] < 0x80) {
                        i++;
                        continue;
                }
                if ((p[i] & 0xe0) == 0xc0)
                        cp = p[i] & 0x1f, extra = 1;
                else if ((p[i] & 0xf0) == 0xe0)
                        cp = p[i] & 0x0f, extra = 2;
                else if ((p[i] & 0xf8) == 0xf0)
                        cp = p[i] & 0x07, extra = 3;
                else
                        return false;
                if (len - i <= extra)
                        return false;
                for (unsigned k = 1; k <= extra; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (p[i + k] & 0x3f);
                }
                static const uint32_t min[] = { 0, 0x80, 0x800, 0x10000 };
                if (cp < min[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += extra + 1;
        }
        return true;
}

static void check_utf8_tree(json_object *v, unsigned depth) {
        CHECK(depth < 1000);
        switch (json_object_get_type(v)) {
        case json_type_string:
                CHECK(utf8_well_formed(json_object_get_string(v), (size_t) json_object_get_string_len(v)));
                break;
        case json_type_object: {
                json_object_object_foreach(v, key, value) {
                        CHECK(utf8_well_formed(key, strlen(key)));
                        check_utf8_tree(value, depth + 1);
                }
                break;
        }
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(v); i++)
                        check_utf8_tree(json_object_array_get_idx(v, i), depth + 1);
                break;
        default:
                break;
        }
}

/* Whatever was accepted can be sent back out, and reads back the same. */
static void check_round_trip(json_object *o) {
        _cleanup_(varlink_buffer_done) VarlinkBuffer out = {};
        _cleanup_json_ json_object *back = NULL;
        const char *data, *s1, *s2;
        size_t size, n1, n2;

        CHECK(varlink_buffer_append_message(&out, o) == 0);
        CHECK(varlink_buffer_next(&out, SIZE_MAX, &data, &size) == 1);
        CHECK(size + 1 == varlink_buffer_size(&out)); /* one NUL, at the end */
        CHECK(varlink_message_parse(data, size, &back) == 0);

        s1 = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n1);
        s2 = json_object_to_json_string_length(back, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                               &n2);
        CHECK(s1 && s2);
        CHECK(n1 == n2 && memcmp(s1, s2, n1) == 0);
}

static bool same_bytes(json_object *o, const char *p, size_t n) {
        return json_object_is_type(o, json_type_string) && (size_t) json_object_get_string_len(o) == n &&
                memcmp(json_object_get_string(o), p, n) == 0;
}

static bool is_ascii(const char *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) p[i] >= 0x80)
                        return false;
        return true;
}

/* A message read in place as a plain call says what json-c reads in it, member by member. */
static void check_view(const VarlinkView *view, json_object *o) {
        json_object *params = value_of(o, "parameters");
        const VarlinkView v = *view;

        CHECK(json_object_object_length(o) == (params ? 2 : 1));
        CHECK(same_bytes(value_of(o, "method"), v.method, v.method_size));
        CHECK(v.n_fields == (params ? (size_t) json_object_object_length(params) : 0));
        for (size_t i = 0; i < v.n_fields; i++) {
                const VarlinkViewField *f = &v.fields[i];
                _cleanup_free_ char *name = strndup(f->name, f->name_size);
                json_object *value;
                uint64_t u;

                CHECK(name && strlen(name) == f->name_size);
                value = value_of(params, name);
                if (f->string)
                        CHECK(same_bytes(value, f->value, f->value_size));
                else {
                        CHECK(varlink_view_uint64(f, &u));
                        CHECK(json_object_is_type(value, json_type_int) && json_object_get_uint64(value) == u);
                }
        }
}

static void process_frame(const char *data, size_t size) {
        _cleanup_json_ json_object *o = NULL;
        Envelope e = {};
        const char *bad = NULL;
        VarlinkView unchecked, checked;
        bool plain_unchecked;
        int r;

        /* What the server reads before any check must be what the check accepts (and
         * what json-c reads, below). */
        plain_unchecked = varlink_view_parse_unchecked(data, size, &unchecked);
        if (plain_unchecked)
                CHECK(varlink_message_check(data, size) == 0);

        r = varlink_message_parse(data, size, &o);
        if (r < 0) {
                CHECK(r == -EBADMSG);
                CHECK(!o);
                stats.rejected++;
                return;
        }
        CHECK(o && json_object_is_type(o, json_type_object));
        stats.parsed++;
        check_utf8_tree(o, 0);
        if (varlink_view_parse(data, size, &checked)) {
                stats.plain++;
                check_view(&checked, o);
        }
        if (plain_unchecked)
                check_view(&unchecked, o);
        else
                CHECK(!varlink_view_parse(data, size, &checked) || !is_ascii(data, size));

        r = varlink_dispatch(o, envelope_fields, &e, &bad);
        check_dispatch_result(o, envelope_fields, r, bad);
        if (r == 0) {
                check_string(o, "method", e.method);
                check_string(o, "error", e.error);
        }

        json_object *params = value_of(o, "parameters");
        if (params && json_object_is_type(params, json_type_object))
                dispatch_params(params);
        else if (params) {
                /* Parameters that are not an object are refused as a whole. */
                bad = NULL;
                CHECK(varlink_dispatch(params, param_fields, &(Params) {}, &bad) == -EINVAL);
                CHECK(bad && streq(bad, "parameters"));
        }

        check_round_trip(o);
}

typedef struct Frame {
        size_t offset, size;
} Frame;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static Frame frames[MAX_FRAMES];
        size_t n_frames = 0, consumed = 0, chunk, fed, k = 0;
        const char *p;
        size_t n;
        int r;

        stats.inputs++;

        /* Pass A: the whole stream at once, under the default limit. */
        {
                _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};

                CHECK(varlink_buffer_append(&b, data, size) == 0);
                while ((r = varlink_buffer_next(&b, VARLINK_DEFAULT_MAX_MESSAGE, &p, &n)) > 0) {
                        CHECK(p == (const char *) b.data + b.start);
                        CHECK(n < varlink_buffer_size(&b) && p[n] == '\0' && !memchr(p, 0, n));
                        CHECK(memcmp(p, data + consumed, n) == 0);
                        if (n_frames < MAX_FRAMES)
                                frames[n_frames++] = (Frame) { consumed, n };
                        stats.messages++;
                        process_frame(p, n);
                        varlink_buffer_consume(&b, n + 1);
                        consumed += n + 1;
                }
                CHECK(r == 0); /* fuzz inputs stay far below 16 MiB */
                CHECK(consumed + varlink_buffer_size(&b) == size);
                CHECK(!memchr(data + consumed, 0, size - consumed));
        }
        if (n_frames == MAX_FRAMES)
                return 0; /* too many to compare; pass A was still checked */

        /* Pass B: the same bytes in small chunks, under a small limit. */
        {
                _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};
                size_t first_over = n_frames;
                bool expect_emsgsize;

                for (size_t i = 0; i < n_frames; i++)
                        if (frames[i].size > SMALL_LIMIT) {
                                first_over = i;
                                break;
                        }
                expect_emsgsize = first_over < n_frames || size - consumed > SMALL_LIMIT;

                chunk = size > 0 ? 1 + data[size / 2] % 16 : 1;
                r = 0;
                for (fed = 0; fed < size && r >= 0;) {
                        size_t m = MIN(chunk, size - fed);
                        CHECK(varlink_buffer_append(&b, data + fed, m) == 0);
                        fed += m;
                        while ((r = varlink_buffer_next(&b, SMALL_LIMIT, &p, &n)) > 0) {
                                CHECK(k < first_over);
                                CHECK(n == frames[k].size);
                                CHECK(memcmp(p, data + frames[k].offset, n) == 0);
                                varlink_buffer_consume(&b, n + 1);
                                k++;
                        }
                }
                if (r == -EMSGSIZE)
                        stats.oversize++;
                CHECK(r == 0 || r == -EMSGSIZE);
                CHECK((r == -EMSGSIZE) == expect_emsgsize);
                CHECK(k == first_over);
        }
        return 0;
}
