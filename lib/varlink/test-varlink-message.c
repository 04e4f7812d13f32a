/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Varlink framing and typed parameter access (lib/varlink/varlink-message.c):
 * everything a peer sends passes through these three functions first. */
#include <check.h>
#include <inttypes.h>
#include <stddef.h>

#include "macro.h"
#include "tests.h"
#include "time-util.h"
#include "varlink-message.h"

/* Parses a literal, the terminating NUL of the C string not included. */
#define PARSE(lit, ret) varlink_message_parse((lit), sizeof(lit) - 1, (ret))

static void assert_rejected(const char *data, size_t size) {
        json_object *o = NULL;

        ck_assert_msg(varlink_message_parse(data, size, &o) == -EBADMSG, "accepted: %.*s", (int) size, data);
        /* A rejected message must not hand out an object. */
        ck_assert_ptr_null(o);
}
#define REJECT(lit) assert_rejected((lit), sizeof(lit) - 1)

START_TEST(test_parse_valid) {
        _cleanup_json_ json_object *o = NULL;
        json_object *v, *a;

        ck_assert_int_eq(PARSE("{\"method\":\"org.example.Call\",\"parameters\":{\"x\":[1,\"two\",{\"y\":null}],"
                               "\"t\":true,\"n\":-5,\"d\":1.5}}",
                               &o),
                         0);
        ck_assert(json_object_is_type(o, json_type_object));
        ck_assert(json_object_object_get_ex(o, "method", &v));
        ck_assert_str_eq(json_object_get_string(v), "org.example.Call");
        ck_assert(json_object_object_get_ex(o, "parameters", &v));
        ck_assert(json_object_object_get_ex(v, "x", &a));
        ck_assert_uint_eq(json_object_array_length(a), 3);
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(a, 1)), "two");
}
END_TEST

START_TEST(test_parse_whitespace_and_utf8) {
        _cleanup_json_ json_object *o = NULL, *p = NULL, *q = NULL;
        json_object *v;

        /* RFC 8259 allows white space around the value. */
        ck_assert_int_eq(PARSE(" \n\t{ \"a\" : 1 }\r\n ", &o), 0);
        ck_assert_int_eq(PARSE("{}", &q), 0);
        ck_assert_int_eq(json_object_object_length(q), 0);

        /* Two, three and four byte sequences and an escaped surrogate pair survive intact. */
        ck_assert_int_eq(PARSE("{\"s\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"e\":\"\\ud83d\\ude00\"}", &p), 0);
        ck_assert(json_object_object_get_ex(p, "s", &v));
        ck_assert_str_eq(json_object_get_string(v), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
        ck_assert(json_object_object_get_ex(p, "e", &v));
        ck_assert_str_eq(json_object_get_string(v), "\xf0\x9f\x98\x80");
}
END_TEST

START_TEST(test_parse_not_an_object) {
        REJECT("[]");
        REJECT("[{}]");
        REJECT("\"string\"");
        REJECT("1");
        REJECT("-1.5");
        REJECT("true");
        REJECT("null");
}
END_TEST

START_TEST(test_parse_trailing_garbage) {
        REJECT("{}x");
        REJECT("{}{}");
        REJECT("{} {}");
        REJECT("{}]");
        REJECT("{\"a\":1}}");
        REJECT("{} 1");
}
END_TEST

START_TEST(test_parse_invalid_json) {
        REJECT("{");
        REJECT("}");
        REJECT("{\"a\"}");
        REJECT("{\"a\":}");
        REJECT("{\"a\":1,}");
        REJECT("{\"a\":[1,]}");
        REJECT("{a:1}");
        REJECT("{\"a\":tru}");
        REJECT("{\"a\":TRUE}");
        REJECT("{\"a\":\"unterminated}");
        REJECT("{\"a\":\"\\x41\"}");
        REJECT("{\"a\":/*comment*/1}");
        REJECT("{\"a\":+1}");
        REJECT("{\"a\":.5}");
        REJECT("{\"a\":0x10}");
        REJECT("{\"a\":nan}");
        REJECT("\xef\xbb\xbf{}"); /* a byte order mark is not JSON */
}
END_TEST

START_TEST(test_parse_invalid_utf8) {
        REJECT("{\"a\":\"\xff\"}");
        REJECT("{\"a\":\"\xfe\"}");
        REJECT("{\"a\":\"\x80\"}");             /* a continuation byte on its own */
        REJECT("{\"a\":\"x\xbfy\"}");
        REJECT("{\"a\":\"\xc3\"}");             /* a sequence cut short by the quote */
        REJECT("{\"a\":\"\xe2\x82\"}");
        REJECT("{\"a\":\"\xf0\x9f\x98\"}");
        REJECT("{\"a\":\"\xf8\x88\x80\x80\x80\"}"); /* five byte forms do not exist */
        REJECT("{\"\xff\":1}");                 /* keys too */
}
END_TEST

START_TEST(test_parse_empty_and_nul) {
        json_object *o = NULL;

        ck_assert_int_eq(varlink_message_parse(NULL, 0, &o), -EBADMSG);
        ck_assert_int_eq(varlink_message_parse("", 0, &o), -EBADMSG);
        ck_assert_ptr_null(o);
        REJECT(" ");
        /* A raw NUL is the frame end and can never be inside a message. */
        REJECT("{\"a\":\"\0\"}");
        REJECT("{}\0");
        REJECT("\0{}");
}
END_TEST

START_TEST(test_parse_deep_nesting) {
        char buf[4096];
        size_t n = 0;

        /* Nesting deeper than the tokener allows is an error, not a stack overflow. */
        n += (size_t) snprintf(buf + n, sizeof(buf) - n, "{\"a\":");
        for (int i = 0; i < 1000; i++)
                buf[n++] = '[';
        for (int i = 0; i < 1000; i++)
                buf[n++] = ']';
        buf[n++] = '}';
        assert_rejected(buf, n);
}
END_TEST

/* The byte-at-a-time case is how a slow or malicious peer delivers a message. */
START_TEST(test_buffer_byte_by_byte) {
        static const char msg[] = "{\"method\":\"org.example.Ping\",\"parameters\":{\"x\":\"\xc3\xa9\"}}";
        _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};
        _cleanup_json_ json_object *o = NULL;
        const char *data = NULL;
        size_t size = 0;

        for (size_t i = 0; i < sizeof(msg); i++) { /* sizeof includes the NUL frame end */
                ck_assert_int_eq(varlink_buffer_next(&b, VARLINK_DEFAULT_MAX_MESSAGE, &data, &size), 0);
                ck_assert_int_eq(varlink_buffer_append(&b, msg + i, 1), 0);
        }
        ck_assert_int_eq(varlink_buffer_next(&b, VARLINK_DEFAULT_MAX_MESSAGE, &data, &size), 1);
        ck_assert_uint_eq(size, sizeof(msg) - 1);
        ck_assert_mem_eq(data, msg, size);
        ck_assert_int_eq(varlink_message_parse(data, size, &o), 0);
        varlink_buffer_consume(&b, size + 1);
        ck_assert_uint_eq(varlink_buffer_size(&b), 0);
        ck_assert_int_eq(varlink_buffer_next(&b, VARLINK_DEFAULT_MAX_MESSAGE, &data, &size), 0);
}
END_TEST

START_TEST(test_buffer_merged_messages) {
        static const char stream[] = "{\"n\":0}\0{\"n\":1}\0{}\0{\"n\":3}\0{\"n\":";
        _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};
        const char *data;
        size_t size;
        int expect[] = { 0, 1, -1, 3 };

        ck_assert_int_eq(varlink_buffer_append(&b, stream, sizeof(stream) - 1), 0);
        for (size_t i = 0; i < ELEMENTSOF(expect); i++) {
                _cleanup_json_ json_object *o = NULL;
                json_object *v;

                ck_assert_int_eq(varlink_buffer_next(&b, 64, &data, &size), 1);
                ck_assert_int_eq(varlink_message_parse(data, size, &o), 0);
                if (expect[i] < 0)
                        ck_assert_int_eq(json_object_object_length(o), 0);
                else {
                        ck_assert(json_object_object_get_ex(o, "n", &v));
                        ck_assert_int_eq(json_object_get_int(v), expect[i]);
                }
                varlink_buffer_consume(&b, size + 1);
        }
        /* The partial fifth message stays buffered until its end arrives. */
        ck_assert_int_eq(varlink_buffer_next(&b, 64, &data, &size), 0);
        ck_assert_uint_eq(varlink_buffer_size(&b), strlen("{\"n\":"));
        ck_assert_int_eq(varlink_buffer_append(&b, "4}\0", 3), 0);
        ck_assert_int_eq(varlink_buffer_next(&b, 64, &data, &size), 1);
        ck_assert_uint_eq(size, strlen("{\"n\":4}"));
        ck_assert_mem_eq(data, "{\"n\":4}", size);
}
END_TEST

/* A message of n bytes: {"p":"xxx...x"} */
static void make_message(char *buf, size_t n) {
        assert(n >= 8);
        memcpy(buf, "{\"p\":\"", 6);
        memset(buf + 6, 'x', n - 8);
        memcpy(buf + n - 2, "\"}", 2);
}

START_TEST(test_buffer_size_limit) {
        const size_t max = 100;
        char msg[256];
        const char *data;
        size_t size;

        /* Exactly max bytes before the NUL: accepted, and it is a valid message. */
        {
                _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};
                _cleanup_json_ json_object *o = NULL;

                make_message(msg, max);
                ck_assert_int_eq(varlink_buffer_append(&b, msg, max), 0);
                /* Incomplete but not yet over the limit: the NUL may come next. */
                ck_assert_int_eq(varlink_buffer_next(&b, max, &data, &size), 0);
                ck_assert_int_eq(varlink_buffer_append(&b, "", 1), 0);
                ck_assert_int_eq(varlink_buffer_next(&b, max, &data, &size), 1);
                ck_assert_uint_eq(size, max);
                ck_assert_int_eq(varlink_message_parse(data, size, &o), 0);
        }
        /* One byte more, complete: too large. */
        {
                _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};

                make_message(msg, max + 1);
                msg[max + 1] = '\0';
                ck_assert_int_eq(varlink_buffer_append(&b, msg, max + 2), 0);
                ck_assert_int_eq(varlink_buffer_next(&b, max, &data, &size), -EMSGSIZE);
        }
        /* Incomplete data already over the limit: no need to wait for its end. */
        {
                _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};

                memset(msg, 'x', sizeof(msg));
                ck_assert_int_eq(varlink_buffer_append(&b, msg, max), 0);
                ck_assert_int_eq(varlink_buffer_next(&b, max, &data, &size), 0);
                ck_assert_int_eq(varlink_buffer_append(&b, msg, 1), 0);
                ck_assert_int_eq(varlink_buffer_next(&b, max, &data, &size), -EMSGSIZE);
        }
        /* A small message before a large one is still delivered first. */
        {
                _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};

                ck_assert_int_eq(varlink_buffer_append(&b, "{}\0", 3), 0);
                memset(msg, 'x', sizeof(msg));
                ck_assert_int_eq(varlink_buffer_append(&b, msg, sizeof(msg)), 0);
                ck_assert_int_eq(varlink_buffer_next(&b, max, &data, &size), 1);
                ck_assert_uint_eq(size, 2);
                varlink_buffer_consume(&b, size + 1);
                ck_assert_int_eq(varlink_buffer_next(&b, max, &data, &size), -EMSGSIZE);
        }
}
END_TEST

START_TEST(test_buffer_compaction) {
        _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};
        char in[3000], *p;
        size_t allocated, want;

        for (size_t i = 0; i < sizeof(in); i++)
                in[i] = (char) ('a' + i % 26);
        ck_assert_int_eq(varlink_buffer_append(&b, in, sizeof(in)), 0);
        varlink_buffer_consume(&b, 2500);
        ck_assert_uint_eq(varlink_buffer_size(&b), 500);

        /* Room that exists only once the consumed front is reclaimed: the live bytes move
         * to the front, intact, and nothing is reallocated. */
        allocated = b.allocated;
        want = allocated - 500 - 100;
        ck_assert_uint_lt(allocated - b.end, want);
        p = varlink_buffer_reserve(&b, want);
        ck_assert_ptr_nonnull(p);
        ck_assert_ptr_eq(p, b.data + b.end);
        ck_assert_uint_eq(b.allocated, allocated);
        ck_assert_uint_eq(b.start, 0);
        ck_assert_uint_ge(b.allocated - b.end, want);
        ck_assert_uint_eq(varlink_buffer_size(&b), 500);
        ck_assert_mem_eq(b.data + b.start, in + 2500, 500);

        /* Consuming everything resets to the front. */
        varlink_buffer_consume(&b, 500);
        ck_assert_uint_eq(b.start, 0);
        ck_assert_uint_eq(b.end, 0);

        varlink_buffer_done(&b);
        ck_assert_ptr_null(b.data);
        ck_assert_uint_eq(b.allocated, 0);
}
END_TEST

/* A message that arrives a byte at a time after a large first part: each call of
 * varlink_buffer_next() searches only the bytes that came since the last (the scanned
 * mark), so the work is the message's length, not its square. The CPU time is printed for
 * comparison; what is asserted is the work counted from the mark. */
START_TEST(test_buffer_scan_incremental) {
        _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};
        static char part[1024 * 1024];
        const size_t drips = 20000;
        uint64_t work = 0, begin;
        const char *data;
        size_t size;

        memset(part, 'x', sizeof(part));
        part[0] = '"';
        begin = clock_usec(CLOCK_PROCESS_CPUTIME_ID);
        ck_assert_int_eq(varlink_buffer_append(&b, part, sizeof(part)), 0);
        for (size_t i = 0; i <= drips; i++) {
                size_t before = b.scanned;

                ck_assert_int_eq(varlink_buffer_next(&b, VARLINK_DEFAULT_MAX_MESSAGE, &data, &size), 0);
                ck_assert_uint_eq(b.scanned, varlink_buffer_size(&b));
                work += varlink_buffer_size(&b) - before;
                ck_assert_int_eq(varlink_buffer_append(&b, i < drips ? "x" : "\"", 1), 0);
        }
        ck_assert_uint_eq(work, sizeof(part) + drips);
        ck_assert_int_eq(varlink_buffer_append(&b, "\0{}\0{", 5), 0);
        ck_assert_int_eq(varlink_buffer_next(&b, VARLINK_DEFAULT_MAX_MESSAGE, &data, &size), 1);
        ck_assert_uint_eq(size, sizeof(part) + drips + 1);
        printf("%zu bytes, %zu of them one at a time: %" PRIu64 " bytes searched, %" PRIu64 " µs of CPU\n",
               size, drips, work, clock_usec(CLOCK_PROCESS_CPUTIME_ID) - begin);

        /* After a message the search starts afresh: the next one, then the partial rest. */
        varlink_buffer_consume(&b, size + 1);
        ck_assert_uint_eq(b.scanned, 0);
        ck_assert_int_eq(varlink_buffer_next(&b, VARLINK_DEFAULT_MAX_MESSAGE, &data, &size), 1);
        ck_assert_uint_eq(size, 2);
        ck_assert_mem_eq(data, "{}", 2);
        varlink_buffer_consume(&b, size + 1);
        ck_assert_int_eq(varlink_buffer_next(&b, VARLINK_DEFAULT_MAX_MESSAGE, &data, &size), 0);
        ck_assert_uint_eq(b.scanned, 1);
        /* The mark survives the compaction of the buffer's front. */
        ck_assert_ptr_nonnull(varlink_buffer_reserve(&b, b.allocated));
        ck_assert_int_eq(varlink_buffer_append(&b, "}\0", 2), 0);
        ck_assert_int_eq(varlink_buffer_next(&b, VARLINK_DEFAULT_MAX_MESSAGE, &data, &size), 1);
        ck_assert_mem_eq(data, "{}", 2);
}
END_TEST

START_TEST(test_buffer_append_message) {
        _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};
        _cleanup_json_ json_object *m = NULL, *back = NULL;
        const char *data;
        size_t size;

        ck_assert_int_eq(json_build_object(&m,
                                           "path", json_object_new_string("a/b"),
                                           /* An embedded NUL must go out escaped, or it
                                            * would end the frame early. */
                                           "nul", json_object_new_string_len("x\0y", 3),
                                           "u", json_object_new_uint64(UINT64_MAX),
                                           NULL),
                         0);

        ck_assert_int_eq(varlink_buffer_append_message(&b, m), 0);
        ck_assert_int_eq(varlink_buffer_next(&b, VARLINK_DEFAULT_MAX_MESSAGE, &data, &size), 1);
        ck_assert_uint_eq(size + 1, varlink_buffer_size(&b)); /* exactly one NUL, at the end */
        ck_assert_ptr_nonnull(memmem(data, size, "\"a/b\"", 5));
        ck_assert_int_eq(varlink_message_parse(data, size, &back), 0);
        ck_assert(json_object_equal(m, back));
}
END_TEST

/* A target struct covering every field type. */
typedef struct Params {
        const char *s;
        uint64_t u;
        uint32_t w;
        int64_t i;
        bool b;
        json_object *a, *o, *x;
} Params;

static const VarlinkField all_fields[] = {
        { "s", VARLINK_STRING, offsetof(Params, s), false },
        { "u", VARLINK_UINT64, offsetof(Params, u), false },
        { "w", VARLINK_UINT32, offsetof(Params, w), false },
        { "i", VARLINK_INT64, offsetof(Params, i), false },
        { "b", VARLINK_BOOL, offsetof(Params, b), false },
        { "a", VARLINK_ARRAY, offsetof(Params, a), false },
        { "o", VARLINK_OBJECT, offsetof(Params, o), false },
        { "x", VARLINK_ANY, offsetof(Params, x), false },
        {},
};

static const VarlinkField mandatory_fields[] = {
        { "s", VARLINK_STRING, offsetof(Params, s), true },
        { "u", VARLINK_UINT64, offsetof(Params, u), false },
        {},
};

/* Parses text and dispatches it into *p; returns the dispatch result. The name of an
 * unknown field points into the parameters, so it is copied before they are freed. */
static int dispatch_text(const char *text, const VarlinkField *fields, Params *p, const char **bad) {
        static char bad_copy[64];
        _cleanup_json_ json_object *o = NULL;
        int r;

        ck_assert_msg(varlink_message_parse(text, strlen(text), &o) == 0, "cannot parse %s", text);
        *bad = "(unset)";
        r = varlink_dispatch(o, fields, p, bad);
        if (*bad) {
                snprintf(bad_copy, sizeof(bad_copy), "%s", *bad);
                *bad = bad_copy;
        }
        /* Borrowed pointers into o die with it; the tests below only read scalars after this. */
        p->s = NULL;
        p->a = p->o = p->x = NULL;
        return r;
}

START_TEST(test_dispatch_all_types) {
        _cleanup_json_ json_object *o = NULL;
        json_object *v;
        Params p = {};
        const char *bad = "(unset)";

        ck_assert_int_eq(PARSE("{\"s\":\"h\xc3\xa9llo\",\"u\":18446744073709551615,\"w\":4294967295,"
                               "\"i\":-9223372036854775808,\"b\":true,\"a\":[1,2],\"o\":{\"k\":1},\"x\":\"any\"}",
                               &o),
                         0);
        ck_assert_int_eq(varlink_dispatch(o, all_fields, &p, &bad), 0);
        ck_assert_ptr_null(bad);
        ck_assert_str_eq(p.s, "h\xc3\xa9llo");
        ck_assert_uint_eq(p.u, UINT64_MAX);
        ck_assert_uint_eq(p.w, UINT32_MAX);
        ck_assert_int_eq(p.i, INT64_MIN);
        ck_assert(p.b);
        ck_assert(json_object_object_get_ex(o, "a", &v));
        ck_assert_ptr_eq(p.a, v); /* borrowed, not copied */
        ck_assert_uint_eq(json_object_array_length(p.a), 2);
        ck_assert(json_object_object_get_ex(o, "o", &v));
        ck_assert_ptr_eq(p.o, v);
        ck_assert(json_object_is_type(p.x, json_type_string));

        /* ANY takes any value, an array, an object or a number as well. */
        ck_assert_int_eq(dispatch_text("{\"x\":[1]}", all_fields, &p, &bad), 0);
        ck_assert_int_eq(dispatch_text("{\"x\":{}}", all_fields, &p, &bad), 0);
        ck_assert_int_eq(dispatch_text("{\"x\":1.5}", all_fields, &p, &bad), 0);

        /* Zero and small values at the other ends. */
        ck_assert_int_eq(dispatch_text("{\"u\":0,\"w\":0,\"i\":9223372036854775807,\"b\":false}", all_fields, &p,
                                       &bad),
                         0);
        ck_assert_uint_eq(p.u, 0);
        ck_assert_uint_eq(p.w, 0);
        ck_assert_int_eq(p.i, INT64_MAX);
        ck_assert(!p.b);
}
END_TEST

START_TEST(test_dispatch_wrong_types) {
        static const struct {
                const char *text, *bad;
        } cases[] = {
                { "{\"s\":1}", "s" },
                { "{\"s\":[\"x\"]}", "s" },
                { "{\"u\":\"1\"}", "u" },
                { "{\"u\":1.0}", "u" },
                { "{\"u\":true}", "u" },
                { "{\"w\":\"1\"}", "w" },
                { "{\"w\":2.5}", "w" },
                { "{\"i\":\"-1\"}", "i" },
                { "{\"i\":1.5}", "i" },
                { "{\"b\":0}", "b" },
                { "{\"b\":\"true\"}", "b" },
                { "{\"a\":{}}", "a" },
                { "{\"a\":\"[]\"}", "a" },
                { "{\"o\":[]}", "o" },
                { "{\"o\":1}", "o" },
                /* The first bad field is named, even after good ones. */
                { "{\"s\":\"ok\",\"u\":1,\"b\":1}", "b" },
        };
        Params p = {};
        const char *bad;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ck_assert_msg(dispatch_text(cases[i].text, all_fields, &p, &bad) == -EINVAL, "accepted %s",
                              cases[i].text);
                ck_assert_msg(bad && streq(bad, cases[i].bad), "%s: bad field %s, expected %s", cases[i].text,
                              bad ?: "(null)", cases[i].bad);
        }
}
END_TEST

START_TEST(test_dispatch_mandatory_unknown_null) {
        Params p = {};
        const char *bad;

        ck_assert_int_eq(dispatch_text("{\"u\":1}", mandatory_fields, &p, &bad), -EINVAL);
        ck_assert_str_eq(bad, "s");
        ck_assert_int_eq(dispatch_text("{}", mandatory_fields, &p, &bad), -EINVAL);
        ck_assert_str_eq(bad, "s");
        ck_assert_int_eq(dispatch_text("{\"s\":\"x\"}", mandatory_fields, &p, &bad), 0);
        ck_assert_ptr_null(bad);

        /* No parameters at all is the same as {}. */
        bad = NULL;
        ck_assert_int_eq(varlink_dispatch(NULL, mandatory_fields, &p, &bad), -EINVAL);
        ck_assert_str_eq(bad, "s");
        ck_assert_int_eq(varlink_dispatch(NULL, all_fields, &p, &bad), 0);
        ck_assert_ptr_null(bad);

        /* Unknown fields are refused, not ignored: a misspelt option must not pass silently. */
        ck_assert_int_eq(dispatch_text("{\"s\":\"x\",\"zzz\":1}", mandatory_fields, &p, &bad), -EINVAL);
        ck_assert_str_eq(bad, "zzz");
        ck_assert_int_eq(dispatch_text("{\"S\":\"x\"}", all_fields, &p, &bad), -EINVAL);
        ck_assert_str_eq(bad, "S");

        /* null is absence: the target keeps its value, and a mandatory field is missing. */
        p = (Params) { .u = 42, .b = true };
        ck_assert_int_eq(dispatch_text("{\"u\":null,\"b\":null,\"s\":null}", all_fields, &p, &bad), 0);
        ck_assert_uint_eq(p.u, 42);
        ck_assert(p.b);
        ck_assert_int_eq(dispatch_text("{\"s\":null}", mandatory_fields, &p, &bad), -EINVAL);
        ck_assert_str_eq(bad, "s");

        /* The parameters themselves must be an object. */
        {
                _cleanup_json_ json_object *arr = json_object_new_array();
                ck_assert_int_eq(varlink_dispatch(arr, all_fields, &p, &bad), -EINVAL);
                ck_assert_str_eq(bad, "parameters");
        }

        /* ret_bad_field is optional. */
        {
                _cleanup_json_ json_object *o = NULL;
                ck_assert_int_eq(PARSE("{\"zzz\":1}", &o), 0);
                ck_assert_int_eq(varlink_dispatch(o, all_fields, &p, NULL), -EINVAL);
        }
}
END_TEST

START_TEST(test_dispatch_integer_ranges) {
        Params p = {};
        const char *bad;

        ck_assert_int_eq(dispatch_text("{\"u\":-1}", all_fields, &p, &bad), -EINVAL);
        ck_assert_str_eq(bad, "u");
        ck_assert_int_eq(dispatch_text("{\"u\":-9223372036854775808}", all_fields, &p, &bad), -EINVAL);
        ck_assert_str_eq(bad, "u");
        ck_assert_int_eq(dispatch_text("{\"u\":18446744073709551615}", all_fields, &p, &bad), 0);
        ck_assert_uint_eq(p.u, UINT64_MAX);
        ck_assert_int_eq(dispatch_text("{\"u\":9223372036854775808}", all_fields, &p, &bad), 0);
        ck_assert_uint_eq(p.u, (uint64_t) INT64_MAX + 1);

        ck_assert_int_eq(dispatch_text("{\"w\":4294967295}", all_fields, &p, &bad), 0);
        ck_assert_uint_eq(p.w, UINT32_MAX);
        ck_assert_int_eq(dispatch_text("{\"w\":4294967296}", all_fields, &p, &bad), -EINVAL);
        ck_assert_str_eq(bad, "w");
        ck_assert_int_eq(dispatch_text("{\"w\":18446744073709551615}", all_fields, &p, &bad), -EINVAL);
        ck_assert_str_eq(bad, "w");
        ck_assert_int_eq(dispatch_text("{\"w\":-1}", all_fields, &p, &bad), -EINVAL);
        ck_assert_str_eq(bad, "w");

        ck_assert_int_eq(dispatch_text("{\"i\":-1}", all_fields, &p, &bad), 0);
        ck_assert_int_eq(p.i, -1);
}
END_TEST

START_TEST(test_dispatch_embedded_nul) {
        Params p = {};
        const char *bad;

        ck_assert_int_eq(dispatch_text("{\"s\":\"a\\u0000b\"}", all_fields, &p, &bad), -EINVAL);
        ck_assert_str_eq(bad, "s");
        ck_assert_int_eq(dispatch_text("{\"s\":\"\\u0000\"}", all_fields, &p, &bad), -EINVAL);
        ck_assert_str_eq(bad, "s");
        /* Other escaped control characters are fine in a C string. */
        ck_assert_int_eq(dispatch_text("{\"s\":\"a\\u0001\\n\"}", all_fields, &p, &bad), 0);
        ck_assert_int_eq(dispatch_text("{\"s\":\"\"}", all_fields, &p, &bad), 0);
}
END_TEST

/* json-c's UTF-8 check only counts continuation bytes: overlong forms, UTF-16 surrogates
 * and code points above U+10FFFF would pass it. */
START_TEST(test_parse_utf8_overlong) {
        REJECT("{\"a\":\"\xc0\xaf\"}");         /* '/' in two bytes */
        REJECT("{\"a\":\"\xc1\xbf\"}");
        REJECT("{\"a\":\"\xe0\x80\xaf\"}");     /* '/' in three bytes */
        REJECT("{\"a\":\"\xf0\x80\x80\xaf\"}"); /* '/' in four bytes */
        REJECT("{\"a\":\"\xc0\x80\"}");         /* NUL in two bytes, past the strlen() check */
        REJECT("{\"a\":\"\xed\xa0\x80\"}");     /* U+D800, a surrogate */
        REJECT("{\"a\":\"\xed\xbf\xbf\"}");     /* U+DFFF */
        REJECT("{\"a\":\"\xf4\x90\x80\x80\"}"); /* U+110000 */
        REJECT("{\"a\":\"\xf5\x80\x80\x80\"}");
        /* The edges of what is valid stay valid. */
        {
                _cleanup_json_ json_object *o = NULL;
                ck_assert_int_eq(PARSE("{\"a\":\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"
                                       "\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"}",
                                       &o),
                                 0);
        }
}
END_TEST

/* json-c saturates integers out of the 64-bit range instead of failing, and would
 * clamp UINT64 values above INT64_MAX into INT64 fields. */
START_TEST(test_dispatch_integer_saturation) {
        static const char *const cases[] = {
                "{\"u\":18446744073709551616}",
                "{\"u\":99999999999999999999999}",
                "{\"i\":9223372036854775808}",
                "{\"i\":18446744073709551615}",
                "{\"i\":-9223372036854775809}",
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_ json_object *o = NULL;
                Params p = {};
                const char *bad = NULL;
                int r;

                r = varlink_message_parse(cases[i], strlen(cases[i]), &o);
                if (r == 0)
                        r = varlink_dispatch(o, all_fields, &p, &bad);
                ck_assert_msg(r < 0, "%s accepted as u=%" PRIu64 " i=%" PRIi64, cases[i], p.u, p.i);
        }
}
END_TEST

/* JSON_TOKENER_STRICT of json-c 0.16 still takes these, which RFC 8259 and strict Varlink
 * peers (sd-json) do not; NaN would even be sent back out as invalid JSON. */
START_TEST(test_parse_strict_json) {
        REJECT("{'a':1}");
        REJECT("{\"a\":'x'}");
        REJECT("{\"a\":NaN}");
        REJECT("{\"a\":Infinity}");
        REJECT("{\"a\":-Infinity}");
        REJECT("{\"a\":\"\x01\"}"); /* control characters must be escaped */
        REJECT("{\"a\":\"\t\"}");
        REJECT("{\"a\":\"\n\"}");
        REJECT("{\"a\":00}");
        REJECT("{\"a\":-01}");
        REJECT("{\"a\":1.}");
        REJECT("{\"a\":1e}");
        REJECT("{\"a\":-}");
        REJECT("{\"a\":18446744073709551616}");
        REJECT("{\"a\":-9223372036854775809}");
        REJECT("{\"a\":\"\\u12\"}");
        REJECT("{\"a\":\"\\U0041\"}");
        REJECT("{\"a\":[1 2]}");
        REJECT("{\"a\" 1}");

        /* What RFC 8259 allows still passes. */
        static const char *const valid[] = {
                "{\"a\":-0}",
                "{\"a\":0.5e-3,\"b\":1E+2,\"c\":-1.25}",
                "{\"a\":18446744073709551615,\"b\":-9223372036854775808}",
                "{\"a\":\"\\/\\b\\f\\n\\r\\t\\\"\\\\\\u00e9\"}",
                "{\"a\":[true,false,null,{},[]]}",
                "{ \"a\" : [ 1 , 2 ] }",
        };
        for (size_t i = 0; i < ELEMENTSOF(valid); i++) {
                _cleanup_json_ json_object *o = NULL;
                ck_assert_msg(varlink_message_parse(valid[i], strlen(valid[i]), &o) == 0, "rejected %s", valid[i]);
        }
}
END_TEST

/* Appending nothing to a buffer never grown is no allocation failure. */
START_TEST(test_buffer_append_empty) {
        _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};

        ck_assert_int_eq(varlink_buffer_append(&b, "", 0), 0);
        ck_assert_uint_eq(varlink_buffer_size(&b), 0);
}
END_TEST

/* Reserving nothing on a buffer never grown must not compute NULL + 0 (undefined, and
 * NULL reads as an allocation failure); varlink_buffer_next() on a fresh buffer neither. */
START_TEST(test_buffer_reserve_zero) {
        _cleanup_(varlink_buffer_done) VarlinkBuffer b = {};

        const char *data;
        size_t size;

        ck_assert_int_eq(varlink_buffer_next(&b, 100, &data, &size), 0);
        ck_assert_ptr_nonnull(varlink_buffer_reserve(&b, 0));
}
END_TEST

static Suite *regular_suite(void) {
        Suite *s = suite_create("varlink-message");
        TCase *tc;

        tc = tcase_create("parse");
        tcase_add_test(tc, test_parse_valid);
        tcase_add_test(tc, test_parse_whitespace_and_utf8);
        tcase_add_test(tc, test_parse_not_an_object);
        tcase_add_test(tc, test_parse_trailing_garbage);
        tcase_add_test(tc, test_parse_invalid_json);
        tcase_add_test(tc, test_parse_invalid_utf8);
        tcase_add_test(tc, test_parse_empty_and_nul);
        tcase_add_test(tc, test_parse_deep_nesting);
        tcase_add_test(tc, test_parse_utf8_overlong);
        tcase_add_test(tc, test_parse_strict_json);
        suite_add_tcase(s, tc);

        tc = tcase_create("buffer");
        tcase_add_test(tc, test_buffer_byte_by_byte);
        tcase_add_test(tc, test_buffer_merged_messages);
        tcase_add_test(tc, test_buffer_size_limit);
        tcase_add_test(tc, test_buffer_compaction);
        tcase_add_test(tc, test_buffer_scan_incremental);
        tcase_add_test(tc, test_buffer_append_message);
        tcase_add_test(tc, test_buffer_append_empty);
        tcase_add_test(tc, test_buffer_reserve_zero);
        suite_add_tcase(s, tc);

        tc = tcase_create("dispatch");
        tcase_add_test(tc, test_dispatch_all_types);
        tcase_add_test(tc, test_dispatch_wrong_types);
        tcase_add_test(tc, test_dispatch_mandatory_unknown_null);
        tcase_add_test(tc, test_dispatch_integer_ranges);
        tcase_add_test(tc, test_dispatch_embedded_nul);
        tcase_add_test(tc, test_dispatch_integer_saturation);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tests_run(regular_suite(), CK_FORK_GETENV);
}
