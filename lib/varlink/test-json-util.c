/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The checked JSON builders of lib/varlink/json-util.c. Every value handed to them is
 * tagged with a delete callback, so that a test sees which ones were released. */
#include <check.h>

#include "json-util.h"
#include "macro.h"
#include "tests.h"

static unsigned n_released;

static void on_release(json_object *o, void *userdata) {
        n_released++;
}

/* A value whose release is counted. */
static json_object *tagged(json_object *o) {
        ck_assert_ptr_nonnull(o);
        json_object_set_userdata(o, NULL, on_release);
        return o;
}

static const char *plain(json_object *o) {
        return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
}

START_TEST(test_build_object) {
        _cleanup_json_ json_object *o = NULL, *e = NULL;

        ck_assert_int_eq(json_build_object(&o,
                                           "s", json_object_new_string("x"),
                                           "n", json_object_new_uint64(UINT64_MAX),
                                           "b", json_object_new_boolean(true),
                                           "a", json_object_new_array(),
                                           NULL),
                         0);
        /* In the order given. */
        ck_assert_str_eq(plain(o), "{\"s\":\"x\",\"n\":18446744073709551615,\"b\":true,\"a\":[]}");

        ck_assert_int_eq(json_build_object(&e, NULL), 0);
        ck_assert_str_eq(plain(e), "{}");
}
END_TEST

START_TEST(test_build_object_null_value) {
        json_object *o = (json_object *) &n_released; /* must stay untouched */

        /* A failed allocation in the middle: what came before and after is released. */
        n_released = 0;
        ck_assert_int_eq(json_build_object(&o,
                                           "a", tagged(json_object_new_string("a")),
                                           "b", tagged(json_object_new_int64(1)),
                                           "c", NULL,
                                           "d", tagged(json_object_new_string("d")),
                                           "e", tagged(json_object_new_object()),
                                           NULL),
                         -ENOMEM);
        ck_assert_uint_eq(n_released, 4);
        ck_assert_ptr_eq(o, (json_object *) &n_released);

        /* First and last. */
        n_released = 0;
        ck_assert_int_eq(json_build_object(&o, "a", NULL, "b", tagged(json_object_new_string("b")), NULL),
                         -ENOMEM);
        ck_assert_uint_eq(n_released, 1);
        n_released = 0;
        ck_assert_int_eq(json_build_object(&o, "a", tagged(json_object_new_string("a")), "b", NULL, NULL),
                         -ENOMEM);
        ck_assert_uint_eq(n_released, 1);
        ck_assert_ptr_eq(o, (json_object *) &n_released);
}
END_TEST

START_TEST(test_build_object_takes_references) {
        _cleanup_json_ json_object *shared = tagged(json_object_new_string("shared"));
        json_object *o = NULL;

        n_released = 0;
        ck_assert_int_eq(json_build_object(&o, "v", json_object_get(shared), NULL), 0);
        json_object_put(o);
        ck_assert_uint_eq(n_released, 0); /* ours is still held */
        ck_assert_int_eq(json_build_object(&o, "v", json_object_get(shared), "w", NULL, NULL), -ENOMEM);
        ck_assert_uint_eq(n_released, 0);
        ck_assert_str_eq(json_object_get_string(shared), "shared");
}
END_TEST

START_TEST(test_object_add) {
        _cleanup_json_ json_object *o = json_object_new_object();
        char key[8] = "k";

        ck_assert_int_eq(json_object_add(o, key, json_object_new_string("1")), 0);
        /* The key is copied, and a second value under it replaces the first. */
        key[0] = 'x';
        n_released = 0;
        ck_assert_int_eq(json_object_add(o, "k", tagged(json_object_new_string("2"))), 0);
        ck_assert_int_eq(json_object_add(o, "k", json_object_new_string("3")), 0);
        ck_assert_uint_eq(n_released, 1);
        ck_assert_str_eq(plain(o), "{\"k\":\"3\"}");

        /* A failed allocation is an error, not a null member. */
        ck_assert_int_eq(json_object_add(o, "n", NULL), -ENOMEM);
        ck_assert(!json_object_object_get_ex(o, "n", NULL));
        ck_assert_str_eq(plain(o), "{\"k\":\"3\"}");
}
END_TEST

START_TEST(test_array_append) {
        _cleanup_json_ json_object *a = json_object_new_array();

        ck_assert_int_eq(json_array_append(a, json_object_new_string("x")), 0);
        ck_assert_int_eq(json_array_append(a, NULL), -ENOMEM);
        ck_assert_int_eq(json_array_append(a, json_object_new_int64(2)), 0);
        ck_assert_str_eq(plain(a), "[\"x\",2]");
}
END_TEST

START_TEST(test_escape) {
        char in[128 + 4], out[JSON_ESCAPED_MAX(sizeof(in))];
        _cleanup_json_ json_object *o = NULL;
        size_t n;

        /* Every ASCII byte, NUL included, and a two-byte UTF-8 sequence, back as they were. */
        for (size_t i = 0; i < 128; i++)
                in[i] = (char) i;
        memcpy(in + 128, "\xc3\xa9xy", 4);
        n = json_escape(out, in, sizeof(in));
        ck_assert_uint_le(n, JSON_ESCAPED_MAX(sizeof(in)));
        o = json_tokener_parse(strndupa(out, n));
        ck_assert_ptr_nonnull(o);
        ck_assert_int_eq(json_object_get_string_len(o), (int) sizeof(in));
        ck_assert_mem_eq(json_object_get_string(o), in, sizeof(in));

        ck_assert_uint_eq(json_escape(out, "", 0), 2);
        ck_assert_mem_eq(out, "\"\"", 2);
        n = json_escape(out, "a\"b\\\n\x1f", 6);
        ck_assert_mem_eq(out, "\"a\\\"b\\\\\\n\\u001f\"", n);
}
END_TEST

/* The bytes on both sides of each class (control characters, quote, backslash, DEL, the
 * bytes from 0x80) at every offset of strings up to 40 bytes long, at three alignments:
 * the prefix ends at the first byte that needs a look, whichever of the 16-, 8- and
 * 1-byte steps reaches it. */
START_TEST(test_plain_prefix) {
        static const unsigned char bytes[] = { 0x00, 0x1f, 0x20, '!', '"', '#', '[', '\\', ']', 0x7f, 0x80, 0xff };
        char buf[64];

        for (size_t align = 0; align < 8; align += 3)
                for (size_t n = 0; n <= 40; n++)
                        for (size_t at = 0; at <= n; at++)
                                for (size_t b = 0; b < ELEMENTSOF(bytes); b++) {
                                        unsigned char c = bytes[b];
                                        char *s = buf + align;
                                        bool look = c < 0x20 || c == '"' || c == '\\';

                                        memset(s, 'a', n);
                                        if (at < n)
                                                s[at] = (char) c;
                                        ck_assert_uint_eq(json_plain_prefix(s, n, false),
                                                          at < n && look ? at : n);
                                        ck_assert_uint_eq(json_plain_prefix(s, n, true),
                                                          at < n && (look || c >= 0x80) ? at : n);
                                }
}
END_TEST

START_TEST(test_string_array_new) {
        char *v[] = { "a", "b/c", NULL };
        _cleanup_json_ json_object *a = json_string_array_new(v, 2), *e = json_string_array_new(v, 0);

        ck_assert_str_eq(plain(a), "[\"a\",\"b\\/c\"]");
        ck_assert_str_eq(plain(e), "[]");
}
END_TEST

static Suite *regular_suite(void) {
        Suite *s = suite_create("json-util");
        TCase *tc = tcase_create("build");

        tcase_add_test(tc, test_build_object);
        tcase_add_test(tc, test_build_object_null_value);
        tcase_add_test(tc, test_build_object_takes_references);
        tcase_add_test(tc, test_object_add);
        tcase_add_test(tc, test_array_append);
        tcase_add_test(tc, test_escape);
        tcase_add_test(tc, test_plain_prefix);
        tcase_add_test(tc, test_string_array_new);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tests_run(regular_suite(), CK_FORK_GETENV);
}
