/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "siphash.h"
#include "store.h"

static Store *store;

static void setup(void) {
        ck_assert_int_eq(store_new(&store), 0);
        ck_assert_ptr_nonnull(store);
}

static void teardown(void) {
        store = store_free(store);
        ck_assert_ptr_null(store);
}

static void put_ok(const char *key, const char *value, uint64_t version, uint64_t expect_new) {
        uint64_t v = 0;

        ck_assert_int_eq(store_put(store, key, strlen(key), value, strlen(value), version, &v), 0);
        ck_assert_uint_eq(v, expect_new);
}

static void get_expect(const char *key, const char *value, uint64_t version) {
        const char *got;
        size_t size;
        uint64_t v;

        ck_assert_int_eq(store_get(store, key, strlen(key), &got, &size, &v), 0);
        ck_assert_uint_eq(size, strlen(value));
        ck_assert_mem_eq(got, value, size);
        ck_assert_int_eq(got[size], '\0');
        ck_assert_uint_eq(v, version);
}

START_TEST(test_new_empty) {
        ck_assert_uint_eq(store_n_keys(store), 0);
        ck_assert_uint_eq(store_data_bytes(store), 0);
        ck_assert_int_eq(store_get(store, "a", 1, NULL, NULL, NULL), -ENOENT);
        ck_assert_ptr_null(store_free(NULL));
}
END_TEST

START_TEST(test_create_and_versioned_put) {
        put_ok("k", "v1", 0, 1);
        get_expect("k", "v1", 1);
        put_ok("k", "v2", 1, 2);
        get_expect("k", "v2", 2);
        /* A longer and a shorter value: the entry is reallocated in place of the old. */
        put_ok("k", "a much longer value than before", 2, 3);
        get_expect("k", "a much longer value than before", 3);
        put_ok("k", "", 3, 4);
        get_expect("k", "", 4);
        ck_assert_uint_eq(store_n_keys(store), 1);
        ck_assert_uint_eq(store_data_bytes(store), 1);
}
END_TEST

START_TEST(test_mismatch) {
        put_ok("k", "v1", 0, 1);
        /* Creating an existing key is a mismatch too: version 0 is not its version. */
        ck_assert_int_eq(store_put(store, "k", 1, "x", 1, 0, NULL), -ESTALE);
        ck_assert_int_eq(store_put(store, "k", 1, "x", 1, 2, NULL), -ESTALE);
        ck_assert_int_eq(store_put(store, "k", 1, "x", 1, UINT64_MAX, NULL), -ESTALE);
        /* A refused Put changes nothing. */
        get_expect("k", "v1", 1);
        put_ok("k", "v2", 1, 2);
        ck_assert_int_eq(store_put(store, "k", 1, "x", 1, 1, NULL), -ESTALE);
        get_expect("k", "v2", 2);
}
END_TEST

START_TEST(test_missing_key) {
        ck_assert_int_eq(store_get(store, "nope", 4, NULL, NULL, NULL), -ENOENT);
        ck_assert_int_eq(store_put(store, "nope", 4, "x", 1, 1, NULL), -ENOENT);
        ck_assert_int_eq(store_put(store, "nope", 4, "x", 1, 42, NULL), -ENOENT);
        ck_assert_int_eq(store_get(store, "nope", 4, NULL, NULL, NULL), -ENOENT);
        ck_assert_uint_eq(store_n_keys(store), 0);
}
END_TEST

START_TEST(test_binary_keys) {
        /* Keys are byte strings: a prefix, an embedded NUL and the empty key are all distinct. */
        put_ok("", "empty", 0, 1);
        ck_assert_int_eq(store_put(store, "a\0b", 3, "nul", 3, 0, NULL), 0);
        ck_assert_int_eq(store_put(store, "a", 1, "a", 1, 0, NULL), 0);
        get_expect("", "empty", 1);
        get_expect("a", "a", 1);

        const char *v;
        size_t n;
        ck_assert_int_eq(store_get(store, "a\0b", 3, &v, &n, NULL), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_mem_eq(v, "nul", 3);
        ck_assert_int_eq(store_get(store, "a\0c", 3, NULL, NULL, NULL), -ENOENT);
        ck_assert_uint_eq(store_n_keys(store), 3);
}
END_TEST

START_TEST(test_big_values) {
        size_t big = 4 * 1024 * 1024;
        char *a = malloc(big), *b = malloc(big / 2);
        const char *got;
        size_t size;
        uint64_t v;

        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        for (size_t i = 0; i < big; i++)
                a[i] = (char) (i * 7 + 3);
        for (size_t i = 0; i < big / 2; i++)
                b[i] = (char) (i * 13 + 1);

        ck_assert_int_eq(store_put(store, "big", 3, a, big, 0, NULL), 0);
        ck_assert_int_eq(store_get(store, "big", 3, &got, &size, &v), 0);
        ck_assert_uint_eq(size, big);
        ck_assert_int_eq(memcmp(got, a, big), 0);
        ck_assert_uint_eq(store_data_bytes(store), 3 + big);

        ck_assert_int_eq(store_put(store, "big", 3, b, big / 2, 1, NULL), 0);
        ck_assert_int_eq(store_get(store, "big", 3, &got, &size, &v), 0);
        ck_assert_uint_eq(size, big / 2);
        ck_assert_uint_eq(v, 2);
        ck_assert_int_eq(memcmp(got, b, big / 2), 0);
        ck_assert_uint_eq(store_data_bytes(store), 3 + big / 2);

        free(a);
        free(b);
}
END_TEST

START_TEST(test_put_own_value_back) {
        /* Writing back (part of) what store_get() returned must work although the
         * entry moves when the size changes. */
        const char *got;
        size_t size;

        put_ok("k", "hello world", 0, 1);
        ck_assert_int_eq(store_get(store, "k", 1, &got, &size, NULL), 0);
        ck_assert_int_eq(store_put(store, "k", 1, got + 6, 5, 1, NULL), 0);
        get_expect("k", "world", 2);
        ck_assert_int_eq(store_get(store, "k", 1, &got, &size, NULL), 0);
        ck_assert_int_eq(store_put(store, "k", 1, got, size, 2, NULL), 0);
        get_expect("k", "world", 3);
}
END_TEST

/* store_find() and store_set_found(): the write lands where the lookup found the key,
 * or, when the store changed in between (inserts that grow the table, values that move
 * entries), where the key is now. */
START_TEST(test_find_then_set) {
        StoreFound found, stale;
        uint64_t version;
        uint32_t owner;
        size_t size;
        char key[32];

        ck_assert_int_eq(store_find(store, "a", 1, &found, &size, &version, &owner), -ENOENT);
        ck_assert_int_eq(store_set_found(store, &found, "a", 1, "one", 3, 1, 1000), 0);
        get_expect("a", "one", 1);

        ck_assert_int_eq(store_find(store, "a", 1, &found, &size, &version, &owner), 0);
        ck_assert_uint_eq(size, 3);
        ck_assert_uint_eq(version, 1);
        ck_assert_uint_eq(owner, 1000);
        ck_assert_int_eq(store_set_found(store, &found, "a", 1, "two", 3, 2, 1001), 0);
        get_expect("a", "two", 2);
        ck_assert_int_eq(store_get_owner(store, "a", 1, &owner), 0);
        ck_assert_uint_eq(owner, 1001);

        /* Found, then a thousand inserts (the table grows) and a value that moves "a". */
        ck_assert_int_eq(store_find(store, "a", 1, &stale, NULL, NULL, NULL), 0);
        ck_assert_int_eq(store_find(store, "b", 1, &found, NULL, NULL, NULL), -ENOENT);
        for (int i = 0; i < 1000; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                put_ok(key, "v", 0, 1);
        }
        ck_assert_int_eq(store_set(store, "a", 1, "a longer value", 14, 3, 0), 0);
        ck_assert_int_eq(store_set_found(store, &stale, "a", 1, "three", 5, 4, 0), 0);
        get_expect("a", "three", 4);
        ck_assert_int_eq(store_set_found(store, &found, "b", 1, "bee", 3, 1, 0), 0);
        get_expect("b", "bee", 1);
        ck_assert_uint_eq(store_n_keys(store), 1002);
        ck_assert_uint_eq(store_data_bytes(store), 1 + 5 + 1 + 3 + 1000 * 1 + 3890);
}
END_TEST

START_TEST(test_many_keys) {
        /* Enough keys for many doublings of the table; all must survive each rehash. */
        const unsigned n = 100000;
        char key[32], value[32];

        for (unsigned i = 0; i < n; i++) {
                int kl = snprintf(key, sizeof(key), "key-%u", i);
                int vl = snprintf(value, sizeof(value), "value-%u", i * 3);

                ck_assert_int_eq(store_put(store, key, (size_t) kl, value, (size_t) vl, 0, NULL), 0);
                ck_assert_uint_eq(store_n_keys(store), i + 1);
        }
        for (unsigned i = 0; i < n; i++) {
                snprintf(key, sizeof(key), "key-%u", i);
                snprintf(value, sizeof(value), "value-%u", i * 3);
                get_expect(key, value, 1);
        }
        for (unsigned i = 0; i < n; i += 7) {
                snprintf(key, sizeof(key), "key-%u", i);
                put_ok(key, "changed", 1, 2);
        }
        for (unsigned i = 0; i < n; i++) {
                snprintf(key, sizeof(key), "key-%u", i);
                snprintf(value, sizeof(value), "value-%u", i * 3);
                if (i % 7 == 0)
                        get_expect(key, "changed", 2);
                else
                        get_expect(key, value, 1);
        }
        ck_assert_int_eq(store_get(store, "key-100000", 10, NULL, NULL, NULL), -ENOENT);
        ck_assert_uint_eq(store_n_keys(store), n);
}
END_TEST

START_TEST(test_free_with_data) {
        /* Freeing a full store releases every entry (ASan/valgrind check the leaks). */
        for (unsigned i = 0; i < 1000; i++) {
                char key[16];
                int kl = snprintf(key, sizeof(key), "%u", i);
                ck_assert_int_eq(store_put(store, key, (size_t) kl, "v", 1, 0, NULL), 0);
        }
        store = store_free(store);
        ck_assert_ptr_null(store);
        ck_assert_int_eq(store_new(&store), 0);
        ck_assert_uint_eq(store_n_keys(store), 0);
}
END_TEST

START_TEST(test_siphash_vectors) {
        /* The first 16 SipHash-2-4 vectors of the reference implementation: key 00..0f,
         * message 00..len-1. They cover every tail length and the block loop. */
        static const uint64_t vectors[16] = {
                0x726fdb47dd0e0e31ULL,
                0x74f839c593dc67fdULL,
                0x0d6c8009d9a94f5aULL,
                0x85676696d7fb7e2dULL,
                0xcf2794e0277187b7ULL,
                0x18765564cd99a68dULL,
                0xcbc9466e58fee3ceULL,
                0xab0200f58b01d137ULL,
                0x93f5f5799a932462ULL,
                0x9e0082df0ba9e4b0ULL,
                0x7a5dbbc594ddb9f3ULL,
                0xf4b32f46226bada7ULL,
                0x751e8fbc860ee5fbULL,
                0x14ea5627c0843d90ULL,
                0xf723ca908e7af2eeULL,
                0xa129ca6149be45e5ULL,
        };
        uint8_t key[16], msg[16];

        for (unsigned i = 0; i < 16; i++)
                key[i] = msg[i] = (uint8_t) i;
        for (unsigned i = 0; i < 16; i++)
                ck_assert_uint_eq(siphash24(msg, i, key), vectors[i]);
        /* 1-3 shares the code but must differ from 2-4. */
        ck_assert_uint_ne(siphash13(msg, 8, key), siphash24(msg, 8, key));
}
END_TEST

static int sum_owners(const void *key, size_t key_size, const void *value, size_t value_size, uint64_t version,
                      uint32_t owner, void *userdata) {
        *(uint64_t *) userdata += owner;
        return 0;
}

START_TEST(test_owner) {
        uint32_t owner = 7;
        uint64_t sum = 0;

        ck_assert_int_eq(store_get_owner(store, "k", 1, &owner), -ENOENT);
        put_ok("k", "v", 0, 1);
        ck_assert_int_eq(store_get_owner(store, "k", 1, &owner), 0);
        ck_assert_uint_eq(owner, 0);
        ck_assert_int_eq(store_set(store, "k", 1, "longer value", 12, 2, 1000), 0);
        ck_assert_int_eq(store_set(store, "l", 1, "w", 1, 1, 2000), 0);
        ck_assert_int_eq(store_get_owner(store, "k", 1, &owner), 0);
        ck_assert_uint_eq(owner, 1000);
        get_expect("k", "longer value", 2);
        ck_assert_int_eq(store_foreach(store, sum_owners, &sum), 0);
        ck_assert_uint_eq(sum, 3000);
}
END_TEST

static Suite *store_suite(void) {
        Suite *s = suite_create("store");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_new_empty);
        tcase_add_test(tc, test_create_and_versioned_put);
        tcase_add_test(tc, test_mismatch);
        tcase_add_test(tc, test_missing_key);
        tcase_add_test(tc, test_binary_keys);
        tcase_add_test(tc, test_big_values);
        tcase_add_test(tc, test_put_own_value_back);
        tcase_add_test(tc, test_find_then_set);
        tcase_add_test(tc, test_many_keys);
        tcase_add_test(tc, test_free_with_data);
        tcase_add_test(tc, test_siphash_vectors);
        tcase_add_test(tc, test_owner);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(store_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
