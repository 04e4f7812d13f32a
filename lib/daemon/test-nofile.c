/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nofile.h"
#include "tests.h"

/* The cases that lower limits run in a child (tests_in_child()): they go down for good. */

START_TEST(test_connections_max) {
        ck_assert_uint_eq(nofile_connections_max(RLIM_INFINITY, 4096), 4096);
        ck_assert_uint_eq(nofile_connections_max(1048576, 4096), 4096);
        ck_assert_uint_eq(nofile_connections_max(4096 + NOFILE_RESERVE, 4096), 4096);
        ck_assert_uint_eq(nofile_connections_max(4096 + NOFILE_RESERVE - 1, 4096), 4095);
        ck_assert_uint_eq(nofile_connections_max(1024, 4096), 1024 - NOFILE_RESERVE);
        /* A tiny limit still leaves a few... */
        ck_assert_uint_eq(nofile_connections_max(2 * NOFILE_RESERVE + 1, 4096), NOFILE_RESERVE + 1);
        ck_assert_uint_eq(nofile_connections_max(2 * NOFILE_RESERVE, 4096), NOFILE_RESERVE);
        ck_assert_uint_eq(nofile_connections_max(20, 4096), NOFILE_RESERVE);
        /* ...but never more than asked for. */
        ck_assert_uint_eq(nofile_connections_max(100, 50), 50);
        ck_assert_uint_eq(nofile_connections_max(100, 3), 3);
}
END_TEST

START_TEST(test_raise) {
        struct rlimit rl;

        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        if (rl.rlim_max < 2 * NOFILE_RESERVE)
                return;
        /* Lowering the soft limit can be undone, unlike lowering the hard one. */
        rl.rlim_cur = NOFILE_RESERVE;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        ck_assert_int_eq(nofile_raise(), 0);
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        ck_assert(rl.rlim_cur == rl.rlim_max);
        /* At the hard limit already, nothing to do. */
        ck_assert_int_eq(nofile_raise(), 0);
}
END_TEST

static int fit_under_low_hard_limit(void) {
        struct rlimit rl = { .rlim_cur = 150, .rlim_max = 200 };

        CHILD_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
        /* Raised to 200 first: room for 200 - NOFILE_RESERVE. */
        CHILD_CHECK(nofile_fit_connections(4096) == 200 - NOFILE_RESERVE);
        CHILD_CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
        CHILD_CHECK(rl.rlim_cur == 200);
        CHILD_CHECK(nofile_fit_connections(100) == 100);
        CHILD_CHECK(nofile_fit_connections(137) == 200 - NOFILE_RESERVE);
        return 0;
}

START_TEST(test_fit) {
        struct rlimit rl;

        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        /* Valgrind keeps the hard limit for itself: a program under it cannot lower it. */
        if (rl.rlim_max < 200 || getenv("MRKV_TEST_VALGRIND"))
                return;
        ck_assert_int_eq(tests_in_child(fit_under_low_hard_limit), 0);
}
END_TEST

static Suite *nofile_suite(void) {
        Suite *s = suite_create("nofile");
        TCase *tc = tcase_create("nofile");

        tcase_add_test(tc, test_connections_max);
        tcase_add_test(tc, test_raise);
        tcase_add_test(tc, test_fit);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tests_run(nofile_suite(), CK_FORK_GETENV);
}
