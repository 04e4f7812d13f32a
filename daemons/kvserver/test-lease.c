/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lease table (deadlines in order, key lists, ids) and the watcher registry (who gets
 * a change, in order, once; the queue bound). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lease.h"
#include "unit-test.h"
#include "watch.h"

#define SEC 1000000ULL

START_TEST(test_lease_order) {
        _cleanup_(leases_freep) Leases *l = NULL;
        Lease *a, *b, *c;

        ck_assert_int_eq(leases_new(&l), 0);
        ck_assert_ptr_null(leases_earliest(l));
        ck_assert_uint_eq(leases_next_id(l), 1);
        ck_assert_int_eq(leases_add(l, 1, 1000, 10, 0, &a), 0);
        ck_assert_int_eq(leases_add(l, 2, 1000, 5, 0, &b), 0);
        ck_assert_int_eq(leases_add(l, 3, 0, 20, 0, &c), 0);
        ck_assert_int_eq(leases_add(l, 3, 0, 20, 0, NULL), -EEXIST);
        ck_assert_uint_eq(leases_next_id(l), 4);
        ck_assert_ptr_eq(leases_earliest(l), b);
        ck_assert_uint_eq(b->deadline, 5 * SEC);

        /* Renewed, b ends last; ending, a has no deadline; back, it has a full ttl. */
        leases_renew(l, b, 100 * SEC);
        ck_assert_ptr_eq(leases_earliest(l), a);
        leases_set_ending(l, a, true, 0);
        ck_assert_ptr_eq(leases_earliest(l), c);
        leases_renew(l, a, 0);
        ck_assert_uint_eq(a->deadline, UINT64_MAX);
        leases_set_ending(l, a, false, 50 * SEC);
        ck_assert_uint_eq(a->deadline, 60 * SEC);
        ck_assert_ptr_eq(leases_earliest(l), c);
        leases_remove(l, c);
        ck_assert_ptr_eq(leases_earliest(l), a);
        ck_assert_ptr_null(leases_get(l, 3));
        ck_assert_ptr_eq(leases_get(l, 2), b);
        ck_assert_uint_eq(leases_size(l), 2);
        /* Ids are never reused, also across a load that saw higher ones. */
        leases_saw_id(l, 41);
        ck_assert_uint_eq(leases_next_id(l), 42);
}
END_TEST

START_TEST(test_lease_many) {
        _cleanup_(leases_freep) Leases *l = NULL;
        uint64_t last = 0;
        Lease *e;

        ck_assert_int_eq(leases_new(&l), 0);
        for (uint64_t i = 1; i <= 1000; i++)
                ck_assert_int_eq(leases_add(l, i, 0, 1 + (i * 7919) % 500, 0, NULL), 0);
        for (uint64_t i = 1; i <= 1000; i += 3)
                leases_remove(l, leases_get(l, i));
        /* They come out in deadline order. */
        while ((e = leases_earliest(l))) {
                ck_assert_uint_ge(e->deadline, last);
                last = e->deadline;
                leases_remove(l, e);
        }
        ck_assert_uint_eq(leases_size(l), 0);
}
END_TEST

START_TEST(test_lease_keys) {
        _cleanup_(leases_freep) Leases *l = NULL;
        Lease *a;

        ck_assert_int_eq(leases_new(&l), 0);
        ck_assert_int_eq(leases_add(l, 7, 0, 1, 0, &a), 0);
        ck_assert_int_eq(lease_attach(a, "x", 1), 0);
        ck_assert_int_eq(lease_attach(a, "x", 1), 0);
        ck_assert_int_eq(lease_attach(a, "", 0), 0);
        ck_assert_int_eq(lease_attach(a, "y\0z", 3), 0);
        ck_assert_uint_eq(a->n_keys, 3);
        ck_assert(lease_has_key(a, "y\0z", 3));
        ck_assert(!lease_has_key(a, "y", 1));
        lease_detach(a, "x", 1);
        lease_detach(a, "nope", 4);
        ck_assert_uint_eq(a->n_keys, 2);
        ck_assert(lease_has_key(a, "", 0));
}
END_TEST

typedef struct Ready {
        unsigned calls;
        Watcher *last;
} Ready;

static void on_ready(Watcher *w, void *userdata) {
        Ready *r = userdata;

        r->calls++;
        r->last = w;
}

static void expect_event(Watcher *w, const char *key, uint64_t version, bool deleted) {
        WatchEvent *e = watcher_pop(w);

        ck_assert_ptr_nonnull(e);
        ck_assert_uint_eq(e->key_size, strlen(key));
        ck_assert_mem_eq(e->data, key, e->key_size);
        ck_assert_uint_eq(e->version, version);
        ck_assert_int_eq(e->deleted, deleted);
        watch_event_unref(e);
}

START_TEST(test_watch_routing) {
        _cleanup_(watchers_freep) Watchers *ws = NULL;
        Watcher *k, *k2, *prefix, *all;
        Ready ready = {};

        ck_assert_int_eq(watchers_new(3, 0, on_ready, &ready, &ws), 0);
        /* No watcher: nothing happens, nothing is allocated. */
        watchers_changed(ws, "k", 1, "v", 1, 1, false, 0);
        ck_assert_uint_eq(ready.calls, 0);

        ck_assert_int_eq(watcher_new(ws, "k", 1, false, 1, NULL, &k), 0);
        ck_assert_int_eq(watcher_new(ws, "k", 1, false, 0, NULL, &k2), 0);
        ck_assert_int_eq(watcher_new(ws, "k/", 2, true, 0, NULL, &prefix), 0);
        ck_assert_int_eq(watcher_new(ws, "", 0, true, 0, NULL, &all), -EUSERS);
        ck_assert_uint_eq(watchers_size(ws), 3);

        /* k's watcher from version 1 skips version 1; the prefix watcher gets k/ only. */
        watchers_changed(ws, "k", 1, "v", 1, 1, false, 0);
        watchers_changed(ws, "k/a", 3, "v", 1, 1, false, 0);
        watchers_changed(ws, "k", 1, "w", 1, 2, false, 0);
        watchers_changed(ws, "k", 1, NULL, 0, 3, true, 0);
        watchers_changed(ws, "j", 1, "v", 1, 1, false, 0);
        expect_event(k, "k", 2, false);
        expect_event(k, "k", 3, true);
        ck_assert_ptr_null(watcher_pop(k));
        expect_event(k2, "k", 1, false);
        expect_event(k2, "k", 2, false);
        expect_event(k2, "k", 3, true);
        expect_event(prefix, "k/a", 1, false);
        ck_assert_ptr_null(watcher_pop(prefix));
        /* A change at a version a key watcher has already queued is not queued again. */
        watchers_changed(ws, "k", 1, "v", 1, 2, false, 0);
        ck_assert_ptr_null(watcher_pop(k));

        watcher_free(k);
        watcher_free(k2);
        watcher_free(prefix);
        ck_assert_uint_eq(watchers_size(ws), 0);
}
END_TEST

START_TEST(test_watch_overflow) {
        _cleanup_(watchers_freep) Watchers *ws = NULL;
        char value[1000];
        Ready ready = {};
        Watcher *w, *reader;

        memset(value, 'v', sizeof(value));
        ck_assert_int_eq(watchers_new(0, 10000, on_ready, &ready, &ws), 0);
        ck_assert_int_eq(watcher_new(ws, "k", 1, false, 0, NULL, &w), 0);
        ck_assert_int_eq(watcher_new(ws, "k", 1, false, 0, NULL, &reader), 0);
        for (uint64_t v = 1; v <= 100; v++) {
                watchers_changed(ws, "k", 1, value, sizeof(value), v, false, 0);
                /* One reads everything as it comes, the other nothing. */
                expect_event(reader, "k", v, false);
        }
        ck_assert(w->overflowed);
        ck_assert_uint_eq(w->n_queued, 0);
        ck_assert(!reader->overflowed);
        watcher_free(w);
        watcher_free(reader);
}
END_TEST

int main(int argc, char *argv[]) {
        Suite *s = suite_create("lease");
        TCase *tc = tcase_create("lease");

        tcase_add_test(tc, test_lease_order);
        tcase_add_test(tc, test_lease_many);
        tcase_add_test(tc, test_lease_keys);
        tcase_add_test(tc, test_watch_routing);
        tcase_add_test(tc, test_watch_overflow);
        suite_add_tcase(s, tc);
        return unit_run("lease", s, NULL, argc, argv);
}
