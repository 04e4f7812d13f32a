/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Plain calls read in place: which messages are plain, and their parts. */
#include <check.h>
#include <string.h>

#include "macro.h"
#include "tests.h"
#include "varlink-message.h"
#include "varlink-view.h"

static bool is_ascii(const char *text) {
        for (const char *p = text; *p; p++)
                if ((unsigned char) *p >= 0x80)
                        return false;
        return true;
}

/* The view of a strict message; unchecked, the same view, or none where it is not ASCII. */
static bool view(const char *text, VarlinkView *v) {
        VarlinkView u;
        bool plain, plain_unchecked;

        ck_assert_msg(varlink_message_check(text, strlen(text)) == 0, "not strict: %s", text);
        plain = varlink_view_parse(text, strlen(text), v);
        plain_unchecked = varlink_view_parse_unchecked(text, strlen(text), &u);
        ck_assert_msg(plain_unchecked == (plain && is_ascii(text)), "unchecked differs: %s", text);
        if (plain_unchecked) {
                ck_assert_ptr_eq(u.method, v->method);
                ck_assert_uint_eq(u.method_size, v->method_size);
                ck_assert_uint_eq(u.n_fields, v->n_fields);
                for (size_t i = 0; i < u.n_fields; i++) {
                        ck_assert_ptr_eq(u.fields[i].name, v->fields[i].name);
                        ck_assert_uint_eq(u.fields[i].name_size, v->fields[i].name_size);
                        ck_assert_ptr_eq(u.fields[i].value, v->fields[i].value);
                        ck_assert_uint_eq(u.fields[i].value_size, v->fields[i].value_size);
                        ck_assert(u.fields[i].string == v->fields[i].string);
                }
        }
        return plain;
}

static void assert_part(const char *p, size_t n, const char *want) {
        ck_assert_uint_eq(n, strlen(want));
        ck_assert_mem_eq(p, want, n);
}

START_TEST(test_plain) {
        static const char *const names[] = { "key", "value", "version" };
        static const bool string[] = { true, true, false };
        const VarlinkViewField *f[3];
        VarlinkView v;
        uint64_t version;

        ck_assert(view("{\"method\":\"org.mrkv.KV.Put\",\"parameters\":{\"key\":\"k\",\"value\":\"\",\"version\":12}}",
                       &v));
        assert_part(v.method, v.method_size, "org.mrkv.KV.Put");
        ck_assert_uint_eq(v.n_fields, 3);
        ck_assert(varlink_view_match(&v, names, string, 3, f));
        assert_part(f[0]->value, f[0]->value_size, "k");
        assert_part(f[1]->value, f[1]->value_size, "");
        ck_assert(varlink_view_uint64(f[2], &version));
        ck_assert_uint_eq(version, 12);
        ck_assert(!varlink_view_uint64(f[0], &version));
        ck_assert(!varlink_view_match(&v, names, string, 2, f));
        ck_assert(!varlink_view_match(&v, names, (const bool[]) { true, true, true }, 3, f));

        /* Any order, any spaces, no parameters or empty ones. */
        ck_assert(view(" {\n\"parameters\" : { \"key\" : \"\xc3\xa9\" } , \"method\" : \"a.b.C\" }\t", &v));
        assert_part(v.method, v.method_size, "a.b.C");
        assert_part(varlink_view_field(&v, "key")->value, 2, "\xc3\xa9");
        ck_assert_ptr_null(varlink_view_field(&v, "ke"));
        ck_assert(view("{\"method\":\"a.b.C\"}", &v));
        ck_assert_uint_eq(v.n_fields, 0);
        ck_assert(view("{\"method\":\"a.b.C\",\"parameters\":{}}", &v));
        ck_assert_uint_eq(v.n_fields, 0);

        ck_assert(view("{\"method\":\"a\",\"parameters\":{\"v\":18446744073709551615}}", &v));
        ck_assert(varlink_view_uint64(&v.fields[0], &version));
        ck_assert_uint_eq(version, UINT64_MAX);
        ck_assert(view("{\"method\":\"a\",\"parameters\":{\"v\":0}}", &v));
        ck_assert(varlink_view_uint64(&v.fields[0], &version));
        ck_assert_uint_eq(version, 0);
}
END_TEST

START_TEST(test_not_plain) {
        static const char *const texts[] = {
                "{\"parameters\":{}}",                                          /* no method */
                "{\"method\":\"a\",\"more\":true}",                             /* flags */
                "{\"method\":\"a\",\"oneway\":false}",
                "{\"method\":\"a\",\"method\":\"b\"}",                          /* repeated */
                "{\"method\":\"a\",\"parameters\":{},\"parameters\":{}}",
                "{\"method\":\"a\",\"parameters\":{\"k\":\"x\",\"k\":\"y\"}}",
                "{\"method\":\"a\\u0062\"}",                                    /* escapes */
                "{\"method\":\"a\",\"parameters\":{\"k\":\"\\\"\"}}",
                "{\"method\":\"a\",\"parameters\":{\"k\\u0041\":\"x\"}}",
                "{\"method\":\"a\",\"parameters\":null}",                       /* other types */
                "{\"method\":5}",
                "{\"method\":\"a\",\"parameters\":{\"k\":null}}",
                "{\"method\":\"a\",\"parameters\":{\"k\":true}}",
                "{\"method\":\"a\",\"parameters\":{\"k\":-1}}",
                "{\"method\":\"a\",\"parameters\":{\"k\":1.5}}",
                "{\"method\":\"a\",\"parameters\":{\"k\":1e3}}",
                "{\"method\":\"a\",\"parameters\":{\"k\":[]}}",
                "{\"method\":\"a\",\"parameters\":{\"k\":{}}}",
                "{\"method\":\"a\",\"parameters\":{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5}}", /* too many */
        };
        VarlinkView v;

        for (size_t i = 0; i < ELEMENTSOF(texts); i++)
                ck_assert_msg(!view(texts[i], &v), "plain: %s", texts[i]);
}
END_TEST

/* Unchecked, the reader is the check for what it accepts: plain-looking messages that
 * are not strict JSON are declined (and the check refuses them). */
START_TEST(test_unchecked_refuses_what_the_check_refuses) {
        static const char *const texts[] = {
                "{\"method\":\"a\",\"parameters\":{\"v\":012}}",                /* leading zero */
                "{\"method\":\"a\",\"parameters\":{\"v\":00}}",
                "{\"method\":\"a\",\"parameters\":{\"v\":18446744073709551616}}", /* beyond 64 bits */
                "{\"method\":\"a\",\"parameters\":{\"v\":100000000000000000000}}",
                "{\"method\":\"a\tb\"}",                                         /* control characters */
                "{\"method\":\"a\",\"parameters\":{\"k\":\"\x01\"}}",
                "{\"method\":\"a\",\"parameters\":{\"k\":\"\x7f\xff\"}}",         /* not UTF-8 */
                "{\"method\":\"a\",\"parameters\":{\"k\":\"\xc0\xaf\"}}",         /* overlong */
                "{\"method\":\"a\"",                                             /* cut short */
                "{\"method\":\"a",
                "{\"method\":\"a\"}x",                                           /* trailing bytes */
                "{\"method\":\"a\"}{}",
                "{\"method\":\"a\",}",                                           /* structure */
                "{\"method\" \"a\"}",
                "{,\"method\":\"a\"}",
                "{\"method\":\"a\",\"parameters\":{\"v\":1,}}",
                "{\"method\":\"a\",\"parameters\":{\"v\":1 2}}",
                "{\"method\":\"a\"}\v",                                          /* not JSON whitespace */
                "",
        };
        static const char utf8[] = "{\"method\":\"\xc3\xa9\"}";
        VarlinkView v;

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                size_t n = strlen(texts[i]);

                ck_assert_msg(varlink_message_check(texts[i], n) < 0, "strict: %s", texts[i]);
                ck_assert_msg(!varlink_view_parse_unchecked(texts[i], n, &v), "plain: %s", texts[i]);
        }
        /* Plain, but not ASCII: for the reader after the check. */
        ck_assert(!varlink_view_parse_unchecked(utf8, strlen(utf8), &v));
        ck_assert(view(utf8, &v));
}
END_TEST

static Suite *view_suite(void) {
        Suite *s = suite_create("varlink-view");
        TCase *tc = tcase_create("view");

        tcase_add_test(tc, test_plain);
        tcase_add_test(tc, test_not_plain);
        tcase_add_test(tc, test_unchecked_refuses_what_the_check_refuses);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tests_run(view_suite(), CK_FORK_GETENV);
}
