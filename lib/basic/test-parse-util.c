/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "macro.h"
#include "parse-util.h"
#include "time-util.h"
#include "tests.h"

static void size_ok(const char *s, uint64_t max, uint64_t expect) {
        uint64_t v = 0;

        ck_assert_msg(parse_size(s, max, &v) == 0, "parse_size(\"%s\") failed", s);
        ck_assert_uint_eq(v, expect);
}

static void size_fails(const char *s, uint64_t max, int error) {
        uint64_t v = 4711;

        ck_assert_int_eq(parse_size(s, max, &v), error);
        /* Nothing is stored on failure. */
        ck_assert_uint_eq(v, 4711);
}

START_TEST(test_size_plain) {
        size_ok("0", UINT64_MAX, 0);
        size_ok("1", UINT64_MAX, 1);
        size_ok("65536", UINT64_MAX, 65536);
        size_ok("007", UINT64_MAX, 7);
        size_ok("18446744073709551615", UINT64_MAX, UINT64_MAX);
}
END_TEST

START_TEST(test_size_suffixes) {
        size_ok("1K", UINT64_MAX, 1024);
        size_ok("1k", UINT64_MAX, 1024);
        size_ok("64KB", UINT64_MAX, 64 * 1024);
        size_ok("64KiB", UINT64_MAX, 64 * 1024);
        size_ok("3M", UINT64_MAX, 3 * 1024 * 1024);
        size_ok("3MiB", UINT64_MAX, 3 * 1024 * 1024);
        size_ok("2G", UINT64_MAX, (uint64_t) 2 * 1024 * 1024 * 1024);
        size_ok("2GB", UINT64_MAX, (uint64_t) 2 * 1024 * 1024 * 1024);
        size_ok("0K", UINT64_MAX, 0);
}
END_TEST

START_TEST(test_size_invalid) {
        size_fails("", UINT64_MAX, -EINVAL);
        size_fails("K", UINT64_MAX, -EINVAL);
        size_fails("-1", UINT64_MAX, -EINVAL);
        size_fails("+1", UINT64_MAX, -EINVAL);
        size_fails(" 1", UINT64_MAX, -EINVAL);
        size_fails("\t1", UINT64_MAX, -EINVAL);
        size_fails("1 ", UINT64_MAX, -EINVAL);
        size_fails("1B", UINT64_MAX, -EINVAL);
        size_fails("1T", UINT64_MAX, -EINVAL);
        size_fails("1m", UINT64_MAX, -EINVAL);
        size_fails("1Ki", UINT64_MAX, -EINVAL);
        size_fails("1KBB", UINT64_MAX, -EINVAL);
        size_fails("1KiBx", UINT64_MAX, -EINVAL);
        size_fails("0x10", UINT64_MAX, -EINVAL);
        size_fails("1.5K", UINT64_MAX, -EINVAL);
        /* Beyond 64 bits is invalid, not merely too large. */
        size_fails("18446744073709551616", UINT64_MAX, -EINVAL);
        ck_assert_int_eq(parse_size(NULL, UINT64_MAX, &(uint64_t){ 0 }), -EINVAL);
}
END_TEST

START_TEST(test_size_max) {
        size_ok("1024", 1024, 1024);
        size_fails("1025", 1024, -ERANGE);
        size_ok("1K", 1024, 1024);
        size_fails("2K", 1024, -ERANGE);
        size_ok("4294967295", UINT32_MAX, UINT32_MAX);
        size_fails("4294967296", UINT32_MAX, -ERANGE);
        size_fails("4M", UINT32_MAX / 1024, -ERANGE);
        /* The multiplication must not wrap around. */
        size_fails("17179869184G", UINT64_MAX, -ERANGE);
        size_ok("17179869183G", UINT64_MAX, (uint64_t) 17179869183 * 1024 * 1024 * 1024);
        size_fails("1", 0, -ERANGE);
        size_ok("0", 0, 0);
}
END_TEST

START_TEST(test_parse_timeout) {
        uint64_t usec = 777;

        ck_assert_int_eq(parse_timeout("infinity", &usec), 0);
        ck_assert_uint_eq(usec, UINT64_MAX);
        ck_assert_int_eq(parse_timeout("30", &usec), 0);
        ck_assert_uint_eq(usec, 30 * USEC_PER_SEC);
        ck_assert_int_eq(parse_timeout("0.25", &usec), 0);
        ck_assert_uint_eq(usec, 250000);
        /* Under the resolution but above zero: still a limit. */
        ck_assert_int_eq(parse_timeout("0.0000001", &usec), 0);
        ck_assert_uint_eq(usec, 1);

        usec = 777;
        ck_assert_int_eq(parse_timeout("0", &usec), -ERANGE);
        ck_assert_int_eq(parse_timeout("0.000", &usec), -ERANGE);
        ck_assert_int_eq(parse_timeout("inf", &usec), -EINVAL);
        ck_assert_int_eq(parse_timeout("Infinity", &usec), -EINVAL);
        ck_assert_int_eq(parse_timeout("-1", &usec), -EINVAL);
        ck_assert_int_eq(parse_timeout("1e3", &usec), -EINVAL);
        ck_assert_int_eq(parse_timeout("", &usec), -EINVAL);
        ck_assert_int_eq(parse_timeout(NULL, &usec), -EINVAL);
        ck_assert_uint_eq(usec, 777);
}
END_TEST

START_TEST(test_parse_unsigned) {
        unsigned u = 12345;
        uint64_t v;

        ck_assert_int_eq(parse_unsigned("0", 0, 10, &u), 0);
        ck_assert_uint_eq(u, 0);
        ck_assert_int_eq(parse_unsigned("10", 0, 10, &u), 0);
        ck_assert_uint_eq(u, 10);
        ck_assert_int_eq(parse_unsigned("007", 0, 10, &u), 0); /* decimal, not octal */
        ck_assert_uint_eq(u, 7);
        ck_assert_int_eq(parse_unsigned("4294967295", 0, UINT32_MAX, &u), 0);
        ck_assert_uint_eq(u, UINT32_MAX);

        u = 12345;
        ck_assert_int_eq(parse_unsigned("11", 0, 10, &u), -ERANGE);
        ck_assert_int_eq(parse_unsigned("0", 1, 10, &u), -ERANGE);
        ck_assert_int_eq(parse_unsigned("4294967296", 0, UINT32_MAX, &u), -ERANGE);
        ck_assert_int_eq(parse_unsigned("18446744073709551616", 0, UINT32_MAX, &u), -ERANGE);
        ck_assert_int_eq(parse_unsigned("", 0, 10, &u), -EINVAL);
        ck_assert_int_eq(parse_unsigned("-1", 0, 10, &u), -EINVAL);
        ck_assert_int_eq(parse_unsigned("+1", 0, 10, &u), -EINVAL);
        ck_assert_int_eq(parse_unsigned(" 1", 0, 10, &u), -EINVAL);
        ck_assert_int_eq(parse_unsigned("1 ", 0, 10, &u), -EINVAL);
        ck_assert_int_eq(parse_unsigned("1x", 0, 10, &u), -EINVAL);
        ck_assert_int_eq(parse_unsigned("0x1", 0, 10, &u), -EINVAL);
        ck_assert_int_eq(parse_unsigned("1.0", 0, 10, &u), -EINVAL);
        ck_assert_int_eq(parse_unsigned(NULL, 0, 10, &u), -EINVAL);
        ck_assert_uint_eq(u, 12345); /* untouched on failure */

        ck_assert_int_eq(parse_uint64("18446744073709551615", &v), 0);
        ck_assert_uint_eq(v, UINT64_MAX);
        ck_assert_int_eq(parse_uint64("18446744073709551616", &v), -ERANGE);
        ck_assert_int_eq(parse_uint64("-0", &v), -EINVAL);
}
END_TEST

START_TEST(test_parse_seconds) {
        uint64_t usec = 777;

        ck_assert_int_eq(parse_seconds("10", &usec), 0);
        ck_assert_uint_eq(usec, 10 * USEC_PER_SEC);
        ck_assert_int_eq(parse_seconds("0", &usec), 0);
        ck_assert_uint_eq(usec, 0);
        ck_assert_int_eq(parse_seconds("0.5", &usec), 0);
        ck_assert_uint_eq(usec, 500000);
        ck_assert_int_eq(parse_seconds(".25", &usec), 0);
        ck_assert_uint_eq(usec, 250000);
        ck_assert_int_eq(parse_seconds("0.000001", &usec), 0);
        ck_assert_uint_eq(usec, 1);
        ck_assert_int_eq(parse_seconds("1000000000", &usec), 0); /* over 31 years is a typo */
        ck_assert_uint_eq(usec, 1000000000 * USEC_PER_SEC);
        ck_assert_int_eq(parse_seconds("5.", &usec), 0);
        ck_assert_uint_eq(usec, 5 * USEC_PER_SEC);
        /* Decimal fractions are exact, not binary approximations truncated. */
        ck_assert_int_eq(parse_seconds("1.005", &usec), 0);
        ck_assert_uint_eq(usec, 1005000);
        ck_assert_int_eq(parse_seconds("4.35", &usec), 0);
        ck_assert_uint_eq(usec, 4350000);
        /* Below the microsecond, rounded. */
        ck_assert_int_eq(parse_seconds("0.0000004", &usec), 0);
        ck_assert_uint_eq(usec, 0);
        ck_assert_int_eq(parse_seconds("0.0000005", &usec), 0);
        ck_assert_uint_eq(usec, 1);
        ck_assert_int_eq(parse_seconds("2.12345649999", &usec), 0);
        ck_assert_uint_eq(usec, 2123456);

        usec = 777;
        ck_assert_int_eq(parse_seconds("1000000001", &usec), -EINVAL);
        ck_assert_int_eq(parse_seconds("", &usec), -EINVAL);
        ck_assert_int_eq(parse_seconds(".", &usec), -EINVAL);
        ck_assert_int_eq(parse_seconds("-1", &usec), -EINVAL);
        ck_assert_int_eq(parse_seconds("+1", &usec), -EINVAL);
        ck_assert_int_eq(parse_seconds(" 1", &usec), -EINVAL);
        ck_assert_int_eq(parse_seconds("1 ", &usec), -EINVAL);
        ck_assert_int_eq(parse_seconds("1s", &usec), -EINVAL);
        ck_assert_int_eq(parse_seconds("inf", &usec), -EINVAL);
        ck_assert_int_eq(parse_seconds("nan", &usec), -EINVAL);
        ck_assert_int_eq(parse_seconds("1e999", &usec), -EINVAL);
        ck_assert_int_eq(parse_seconds("1e3", &usec), -EINVAL);
        ck_assert_int_eq(parse_seconds("0x10", &usec), -EINVAL);
        ck_assert_int_eq(parse_seconds("1.2.3", &usec), -EINVAL);
        ck_assert_int_eq(parse_seconds("10000000000", &usec), -EINVAL);
        ck_assert_int_lt(parse_seconds("99999999999999999999999", &usec), 0);
        ck_assert_int_eq(parse_seconds(NULL, &usec), -EINVAL);
        ck_assert_uint_eq(usec, 777);
}
END_TEST

static Suite *parse_util_suite(void) {
        Suite *s = suite_create("parse-util");
        TCase *tc = tcase_create("parse_size");

        tcase_add_test(tc, test_size_plain);
        tcase_add_test(tc, test_size_suffixes);
        tcase_add_test(tc, test_size_invalid);
        tcase_add_test(tc, test_size_max);
        suite_add_tcase(s, tc);

        tc = tcase_create("numbers");
        tcase_add_test(tc, test_parse_unsigned);
        tcase_add_test(tc, test_parse_seconds);
        tcase_add_test(tc, test_parse_timeout);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tests_run(parse_util_suite(), CK_FORK_GETENV);
}
