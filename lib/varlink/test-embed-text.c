/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The header embed-text.py makes of test-embed-text.varlink: the interface text, byte for
 * byte, its name, and the full name of each of its methods and errors. */
#include <check.h>
#include <stdio.h>

#include "macro.h"
#include "test-embed-text.varlink.h"
#include "tests.h"

START_TEST(test_text) {
        _cleanup_fclose_ FILE *f = fopen(TEST_VARLINK_PATH, "re");
        char buf[4096];
        size_t n;

        ck_assert_ptr_nonnull(f);
        n = fread(buf, 1, sizeof(buf), f);
        ck_assert_uint_lt(n, sizeof(buf));
        ck_assert_uint_eq(sizeof(test_interface) - 1, n);
        ck_assert(memcmp(test_interface, buf, n) == 0);
}
END_TEST

START_TEST(test_error_names) {
        ck_assert_str_eq(TEST_ERROR_NO_SUCH_THING, "org.example.EmbedTest.NoSuchThing");
        ck_assert_str_eq(TEST_ERROR_HTTP_ERROR, "org.example.EmbedTest.HTTPError");
        ck_assert_str_eq(TEST_ERROR_ERROR2_BIG, "org.example.EmbedTest.Error2Big");
        ck_assert_str_eq(TEST_ERROR_PLAIN, "org.example.EmbedTest.Plain");
#ifdef TEST_ERROR_COMMENTED
        ck_abort_msg("an error in a comment was taken for one");
#endif
}
END_TEST

START_TEST(test_method_names) {
        ck_assert_str_eq(TEST_INTERFACE, "org.example.EmbedTest");
        ck_assert_str_eq(TEST_METHOD_CALL, "org.example.EmbedTest.Call");
        ck_assert_str_eq(TEST_METHOD_GET_THING2, "org.example.EmbedTest.GetThing2");
#ifdef TEST_METHOD_COMMENTED
        ck_abort_msg("a method in a comment was taken for one");
#endif
}
END_TEST

static Suite *regular_suite(void) {
        Suite *s = suite_create("embed-text");
        TCase *tc = tcase_create("header");

        tcase_add_test(tc, test_text);
        tcase_add_test(tc, test_error_names);
        tcase_add_test(tc, test_method_names);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tests_run(regular_suite(), CK_FORK_GETENV);
}
