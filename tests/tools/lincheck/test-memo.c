/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the search memo and its windowed operation sets. */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck-memo.h"
#include "macro.h"

static uint64_t rng_next(uint64_t *s) {
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * UINT64_C(2685821657736338717);
}

/* Whether set holds exactly ref and keeps the window invariants the memo relies on
 * for a canonical form. Plain checks: a Check assertion per bit would be slow. */
static bool window_ok(const OpSet *set, const bool *ref, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (opset_contains(set, (uint32_t) i) != ref[i])
                        return false;
        for (size_t w = 0; w < set->lo; w++)
                if (set->words[w] != UINT64_MAX)
                        return false;
        if (set->lo < set->n_words && set->words[set->lo] == UINT64_MAX)
                return false;
        for (size_t w = set->hi; w < set->n_words; w++)
                if (set->words[w] != 0)
                        return false;
        return set->hi == 0 || set->words[set->hi - 1] != 0;
}

START_TEST(test_opset_window) {
        /* 300 bits: several words and a partial last one. */
        const size_t n = 300;
        _cleanup_(opset_done) OpSet set = {};
        bool ref[300] = {}, down_lo = false, down_hi = false;
        uint64_t rng = 99;

        ck_assert_int_eq(opset_init(&set, n), 0);
        ck_assert_uint_eq(set.n_words, 5);
        ck_assert(window_ok(&set, ref, n));

        for (unsigned step = 0; step < 200000; step++) {
                /* As in a search: a front sweeping up and down the set, bits well
                 * behind it set, well ahead of it cleared, random near it, so that
                 * whole words fill and empty and lo and hi move both ways. */
                unsigned phase = step % 20000;
                long front = (long) (phase < 10000 ? phase : 20000 - phase) * (long) (n + 40) / 10000 - 20;
                size_t lo = set.lo, hi = set.hi;
                uint64_t x = rng_next(&rng);
                long at = front - 40 + (long) ((x >> 40) % 60);
                uint32_t op = (uint32_t) (at < 0 ? 0 : at >= (long) n ? (long) n - 1 : at);
                bool add = (long) op < front - 20 || ((long) op <= front + 10 && (x & 1));

                if (add)
                        opset_add(&set, op);
                else
                        opset_remove(&set, op);
                ref[op] = add;
                if (!window_ok(&set, ref, n))
                        ck_abort_msg("step %u: lo %zu hi %zu", step, set.lo, set.hi);
                down_lo |= lo >= 3 && set.lo < lo;
                down_hi |= hi >= 3 && set.hi < hi;
        }
        /* The walk must have taken lo and hi across the words, and back. */
        ck_assert(down_lo && down_hi);

        /* Filling every bit leaves only the partial last word in the window. */
        for (uint32_t i = 0; i < n; i++) {
                opset_add(&set, i);
                ref[i] = true;
        }
        ck_assert(window_ok(&set, ref, n));
        ck_assert_uint_eq(set.lo, 4);
        ck_assert_uint_eq(set.hi, 5);
}
END_TEST

START_TEST(test_memo_same_set_other_path) {
        _cleanup_(opset_done) OpSet a = {}, b = {};
        Memo m;

        ck_assert_int_eq(opset_init(&a, 200), 0);
        ck_assert_int_eq(opset_init(&b, 200), 0);
        memo_init(&m, 0);

        /* a: add 0..129 in order; b: add 129..0 backwards and an extra it removes again. */
        for (uint32_t i = 0; i < 130; i++)
                opset_add(&a, i);
        opset_add(&b, 150);
        for (uint32_t i = 130; i-- > 0;)
                opset_add(&b, i);
        opset_remove(&b, 150);

        ck_assert_int_eq(memo_insert(&m, 42, 3, 7, &a), 1);
        ck_assert_int_eq(memo_insert(&m, 42, 3, 7, &b), 0);
        /* Same set, other state: new. */
        ck_assert_int_eq(memo_insert(&m, 42, 4, 7, &a), 1);
        ck_assert_int_eq(memo_insert(&m, 42, 3, 8, &a), 1);
        ck_assert_int_eq(memo_insert(&m, 42, 3, 8, &b), 0);

        /* Sets that differ only below the other's lo must not match. */
        opset_remove(&b, 5);
        ck_assert_int_eq(memo_insert(&m, 42, 3, 7, &b), 1);
        /* ... nor only above its hi. */
        opset_add(&b, 5);
        opset_add(&b, 199);
        ck_assert_int_eq(memo_insert(&m, 42, 3, 7, &b), 1);
        ck_assert_uint_eq(m.n_entries, 5);
        memo_done(&m);
}
END_TEST

START_TEST(test_memo_many) {
        _cleanup_(opset_done) OpSet set = {};
        Memo m;

        /* Each count of low bits is a different set; insert each twice, with
         * colliding hashes for half of them to exercise full comparisons. */
        ck_assert_int_eq(opset_init(&set, 100000), 0);
        memo_init(&m, 0);
        for (uint32_t i = 0; i < 100000; i++) {
                uint64_t hash = (i % 2) ? 7 : i * UINT64_C(0x9e3779b97f4a7c15);

                opset_add(&set, i);
                if (i % 2 && i > 2000)
                        continue; /* keep the colliding chain short enough to be quick */
                if (memo_insert(&m, hash, 1, 1, &set) != 1 || memo_insert(&m, hash, 1, 1, &set) != 0)
                        ck_abort_msg("set %u", i);
        }
        ck_assert_uint_eq(m.n_entries, 50000 + 1000);
        memo_done(&m);
}
END_TEST

START_TEST(test_memo_limit) {
        _cleanup_(opset_done) OpSet set = {};
        Memo m;
        int r = 0;
        uint32_t i;

        ck_assert_int_eq(opset_init(&set, 1 << 20), 0);
        memo_init(&m, 3 << 20);
        for (i = 0; i < (1 << 20); i++) {
                opset_add(&set, i);
                r = memo_insert(&m, i * UINT64_C(0x9e3779b97f4a7c15), 0, 0, &set);
                if (r != 1)
                        break;
        }
        ck_assert_int_eq(r, -ENOSPC);
        ck_assert_uint_le(m.bytes, 3 << 20);
        ck_assert_uint_gt(m.n_entries, 1000);
        memo_done(&m);
}
END_TEST

static Suite *memo_suite(void) {
        Suite *s = suite_create("lincheck-memo");
        TCase *tc = tcase_create("memo");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_opset_window);
        tcase_add_test(tc, test_memo_same_set_other_path);
        tcase_add_test(tc, test_memo_many);
        tcase_add_test(tc, test_memo_limit);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(memo_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
