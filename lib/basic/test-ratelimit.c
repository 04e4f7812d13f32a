/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>

#include "macro.h"
#include "ratelimit.h"
#include "tests.h"

START_TEST(test_ratelimit) {
        RateLimit rl = RATELIMIT_INIT(10 * USEC_PER_SEC, 2);
        uint64_t t = 5 * USEC_PER_SEC;
        unsigned dropped = 99;

        ck_assert(ratelimit_below(&rl, t, &dropped));
        ck_assert_uint_eq(dropped, 0);
        ck_assert(ratelimit_below(&rl, t + 1, NULL));
        /* The burst is spent: refused until the interval is over, and counted. */
        for (unsigned i = 0; i < 1000; i++)
                ck_assert(!ratelimit_below(&rl, t + 2 + i, NULL));
        ck_assert(!ratelimit_below(&rl, t + 10 * USEC_PER_SEC - 1, NULL));
        ck_assert(ratelimit_below(&rl, t + 10 * USEC_PER_SEC, &dropped));
        ck_assert_uint_eq(dropped, 1001);
        ck_assert(ratelimit_below(&rl, t + 10 * USEC_PER_SEC, &dropped));
        ck_assert_uint_eq(dropped, 0);
        ck_assert(!ratelimit_below(&rl, t + 11 * USEC_PER_SEC, NULL));
        /* A clock that went back starts a new interval rather than refusing for ever. */
        ck_assert(ratelimit_below(&rl, 1, &dropped));
        ck_assert_uint_eq(dropped, 1);
}
END_TEST

int main(void) {
        Suite *s = suite_create("ratelimit");
        TCase *tc = tcase_create("ratelimit");

        tcase_add_test(tc, test_ratelimit);
        suite_add_tcase(s, tc);
        return tests_run(s, CK_FORK_GETENV);
}
