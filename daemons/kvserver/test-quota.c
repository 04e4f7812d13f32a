/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "quota.h"
#include "unit-test.h"

static void assert_account(const Quota *q, uint32_t uid, uint64_t keys, uint64_t bytes) {
        uint64_t k, b;

        quota_get(q, uid, &k, &b);
        ck_assert_uint_eq(k, keys);
        ck_assert_uint_eq(b, bytes);
}

/* A Put of a new key: checked, then prepared and applied as kv-state does. */
static int put(Quota *q, QuotaMove m) {
        int r = quota_check_move(q, &m);

        if (r < 0)
                return r;
        ck_assert_int_eq(quota_prepare_move(q, &m), 0);
        quota_move(q, &m, false);
        return 0;
}

START_TEST(test_bounds) {
        _cleanup_(quota_freep) Quota *q = NULL;

        ck_assert_int_eq(quota_new(&(QuotaLimits) { .keys = 3, .bytes = 100 }, &q), 0);
        for (unsigned i = 0; i < 3; i++)
                ck_assert_int_eq(put(q, (QuotaMove) { .uid = 1000, .bytes = 10 }), 0);
        ck_assert_int_eq(put(q, (QuotaMove) { .uid = 1000, .bytes = 10 }), -EDQUOT);
        assert_account(q, 1000, 3, 30);
        /* Another uid has an account of its own; root has no bound. */
        ck_assert_int_eq(put(q, (QuotaMove) { .uid = 1001, .bytes = 100 }), 0);
        ck_assert_int_eq(put(q, (QuotaMove) { .uid = 1001, .bytes = 1 }), -EDQUOT);
        for (unsigned i = 0; i < 5; i++)
                ck_assert_int_eq(put(q, (QuotaMove) { .uid = 0, .bytes = 1000 }), 0);
        assert_account(q, 0, 5, 5000);
        ck_assert_uint_eq(quota_n_uids(q), 3);

        /* An overwrite of one's own key adds no key: allowed at the key bound, and on
         * bytes only if it stays within them. */
        ck_assert_int_eq(put(q, (QuotaMove) { .uid = 1000, .bytes = 80, .existed = true, .old_uid = 1000,
                                              .old_bytes = 10 }), 0);
        assert_account(q, 1000, 3, 100);
        ck_assert_int_eq(put(q, (QuotaMove) { .uid = 1000, .bytes = 81, .existed = true, .old_uid = 1000,
                                              .old_bytes = 80 }), -EDQUOT);
        ck_assert_int_eq(put(q, (QuotaMove) { .uid = 1000, .bytes = 5, .existed = true, .old_uid = 1000,
                                              .old_bytes = 80 }), 0);
        assert_account(q, 1000, 3, 25);
}
END_TEST

START_TEST(test_move_and_undo) {
        _cleanup_(quota_freep) Quota *q = NULL;
        QuotaMove take = { .uid = 2000, .bytes = 7, .existed = true, .old_uid = 1000, .old_bytes = 10 };

        ck_assert_int_eq(quota_new(&(QuotaLimits) { .keys = 1, .bytes = 0 }, &q), 0);
        ck_assert_int_eq(put(q, (QuotaMove) { .uid = 1000, .bytes = 10 }), 0);

        /* 2000 writes over 1000's key: the key is charged to 2000 now. */
        ck_assert_int_eq(put(q, take), 0);
        assert_account(q, 1000, 0, 0);
        assert_account(q, 2000, 1, 7);
        ck_assert_uint_eq(quota_n_uids(q), 1);
        ck_assert_int_eq(put(q, (QuotaMove) { .uid = 1000, .bytes = 10 }), 0);

        /* A failed write is taken back. */
        quota_move(q, &take, true);
        assert_account(q, 1000, 2, 20);
        assert_account(q, 2000, 0, 0);
}
END_TEST

int main(int argc, char *argv[]) {
        Suite *s = suite_create("quota");
        TCase *tc = tcase_create("quota");

        tcase_add_test(tc, test_bounds);
        tcase_add_test(tc, test_move_and_undo);
        suite_add_tcase(s, tc);
        return unit_run("quota", s, NULL, argc, argv);
}
