/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lock (6.5840 lab 2, lock): mutual exclusion checked through a guard key that
 * only the holder may touch, with 1 and 10 clients, on a reliable socket and through
 * the fault proxy. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mrkv/lock.h>

#include "kv-harness.h"

#define LOCK_NAME "l"
#define GUARD "guard"
#define RUN_USEC (2 * USEC_PER_SEC)
#define MAX_CLIENTS 10

typedef struct Client {
        const char *address;
        bool unreliable;
        uint64_t end;
        unsigned n_acquired;
        unsigned n_violations;
        char violation[256];
        int error;
} Client;

static void violation(Client *x, const char *what, int r) {
        if (x->n_violations++ == 0)
                snprintf(x->violation, sizeof(x->violation), "%s (%d: %s)", what, r, mrkv_result_to_string(r));
}

/* A Put of the guard by the holder. Nobody else may write the guard, so the Put must
 * apply; MAYBE is resolved by reading back. */
static void guard_put(Client *x, mrkv_clerk *c, const char *value, uint64_t version) {
        char *got = NULL;
        uint64_t after = 0;
        int r;

        r = mrkv_clerk_put(c, GUARD, value, version);
        if (r == MRKV_OK)
                return;
        if (r != MRKV_ERR_MAYBE) {
                violation(x, "guard put under the lock was not applied", r);
                return;
        }
        r = mrkv_clerk_get(c, GUARD, &got, &after);
        if (r != MRKV_OK || after != version + 1 || strcmp(got, value) != 0)
                violation(x, "guard put under the lock returned maybe and was not applied", r);
        free(got);
}

static void *client_run(void *userdata) {
        Client *x = userdata;
        mrkv_clerk *c = test_clerk_new(x->address, x->unreliable);
        mrkv_lock *l = NULL;
        int r;

        r = mrkv_lock_new(c, LOCK_NAME, &l);
        if (r < 0) {
                x->error = r;
                goto finish;
        }

        while (now_usec() < x->end) {
                char *value = NULL;
                uint64_t version = 0;

                r = mrkv_lock_acquire(l);
                if (r < 0) {
                        x->error = r;
                        break;
                }

                /* Free when we got the lock: nobody else is inside. */
                r = mrkv_clerk_get(c, GUARD, &value, &version);
                if (r != MRKV_OK || strcmp(value, "") != 0)
                        violation(x, "guard not empty on acquire", r);
                free(value);

                guard_put(x, c, mrkv_lock_get_id(l), version);
                guard_put(x, c, "", version + 1);

                r = mrkv_lock_release(l);
                if (r < 0) {
                        x->error = r;
                        break;
                }
                x->n_acquired++;
        }

finish:
        mrkv_lock_free(l);
        mrkv_clerk_free(c);
        return NULL;
}

static void run_clients(unsigned n, bool unreliable) {
        char *dir = test_dir_new();
        Client clients[MAX_CLIENTS] = {};
        pthread_t threads[MAX_CLIENTS];
        unsigned total = 0;
        char *value = NULL;
        TestDaemon s;
        TestProxy p = {};
        mrkv_clerk *c;
        uint64_t end;

        ck_assert_uint_le(n, MAX_CLIENTS);
        test_kvserver_start(dir, &s);
        if (unreliable)
                test_proxy_start(dir, s.address, 2, &p);

        c = test_clerk_new(s.address, false);
        ck_assert_int_eq(mrkv_clerk_put(c, GUARD, "", 0), MRKV_OK);

        end = now_usec() + RUN_USEC;
        for (unsigned i = 0; i < n; i++) {
                clients[i] = (Client) { .address = unreliable ? p.address : s.address, .unreliable = unreliable,
                                        .end = end };
                ck_assert_int_eq(pthread_create(&threads[i], NULL, client_run, &clients[i]), 0);
        }
        for (unsigned i = 0; i < n; i++) {
                ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
                ck_assert_msg(clients[i].error == 0, "client %u failed: %s", i,
                              mrkv_result_to_string(clients[i].error));
                ck_assert_msg(clients[i].n_violations == 0, "client %u: %u violations, first: %s", i,
                              clients[i].n_violations, clients[i].violation);
                total += clients[i].n_acquired;
        }
        fprintf(stderr, "%u clients, %s: %u acquisitions\n", n, unreliable ? "unreliable" : "reliable", total);
        ck_assert_uint_ge(total, 1);

        /* Everyone released: the lock and the guard are free. */
        ck_assert_int_eq(mrkv_clerk_get(c, LOCK_NAME, &value, NULL), MRKV_OK);
        ck_assert_str_eq(value, "");
        free(value);
        ck_assert_int_eq(mrkv_clerk_get(c, GUARD, &value, NULL), MRKV_OK);
        ck_assert_str_eq(value, "");
        free(value);

        mrkv_clerk_free(c);
        if (unreliable)
                test_proxy_stop(&p);
        test_kvserver_stop(&s);
        free(dir);
}

START_TEST(test_one_client_reliable) {
        run_clients(1, false);
}
END_TEST

START_TEST(test_many_clients_reliable) {
        run_clients(10, false);
}
END_TEST

START_TEST(test_one_client_unreliable) {
        run_clients(1, true);
}
END_TEST

START_TEST(test_many_clients_unreliable) {
        run_clients(10, true);
}
END_TEST

/* The API's edges, on a reliable server. */
START_TEST(test_lock_api) {
        char *dir = test_dir_new(), *value = NULL;
        mrkv_lock *a = NULL, *b = NULL;
        TestDaemon s;
        mrkv_clerk *ca, *cb;

        test_kvserver_start(dir, &s);
        ca = test_clerk_new(s.address, false);
        cb = test_clerk_new(s.address, false);

        ck_assert_int_eq(mrkv_lock_new(ca, "api", &a), 0);
        ck_assert_int_eq(mrkv_lock_new(cb, "api", &b), 0);
        ck_assert_uint_eq(strlen(mrkv_lock_get_id(a)), 16);
        ck_assert_uint_eq(strspn(mrkv_lock_get_id(a), "0123456789abcdef"), 16);
        ck_assert_str_ne(mrkv_lock_get_id(a), mrkv_lock_get_id(b));
        ck_assert_str_eq(mrkv_lock_get_name(a), "api");

        /* Releasing what one does not hold. */
        ck_assert_int_eq(mrkv_lock_release(a), -ENOLCK);

        /* A missing key is a free lock; the holder's id is the value. */
        ck_assert_int_eq(mrkv_lock_acquire(a), 0);
        ck_assert_int_eq(mrkv_clerk_get(ca, "api", &value, NULL), MRKV_OK);
        ck_assert_str_eq(value, mrkv_lock_get_id(a));
        free(value);
        ck_assert_int_eq(mrkv_lock_acquire(a), -EBUSY);

        /* Another waits; with a wait timeout it gives up without having taken it. */
        ck_assert_int_eq(mrkv_lock_set_wait_timeout(b, 200 * USEC_PER_MSEC), 0);
        ck_assert_int_eq(mrkv_lock_acquire(b), -ETIMEDOUT);
        ck_assert_int_eq(mrkv_clerk_get(ca, "api", &value, NULL), MRKV_OK);
        ck_assert_str_eq(value, mrkv_lock_get_id(a));
        free(value);

        ck_assert_int_eq(mrkv_lock_release(a), 0);
        ck_assert_int_eq(mrkv_lock_release(a), -ENOLCK);
        ck_assert_int_eq(mrkv_lock_acquire(b), 0);

        /* A holder whose key was overwritten behind its back has lost the lock. */
        {
                uint64_t version = 0;
                ck_assert_int_eq(mrkv_clerk_get(ca, "api", NULL, &version), MRKV_OK);
                ck_assert_int_eq(mrkv_clerk_put(ca, "api", "", version), MRKV_OK);
        }
        ck_assert_int_eq(mrkv_lock_release(b), -ENOLCK);

        /* An acquiring Put that was applied though its caller never learned it (here
         * written by hand) is recognized as ours, and released with its version. */
        {
                uint64_t version = 0;
                ck_assert_int_eq(mrkv_clerk_get(ca, "api", NULL, &version), MRKV_OK);
                ck_assert_int_eq(mrkv_clerk_put(ca, "api", mrkv_lock_get_id(a), version), MRKV_OK);
        }
        ck_assert_int_eq(mrkv_lock_acquire(a), 0);
        ck_assert_int_eq(mrkv_lock_release(a), 0);
        ck_assert_int_eq(mrkv_clerk_get(ca, "api", &value, NULL), MRKV_OK);
        ck_assert_str_eq(value, "");
        free(value);

        ck_assert_ptr_null(mrkv_lock_free(a));
        ck_assert_ptr_null(mrkv_lock_free(b));
        ck_assert_ptr_null(mrkv_lock_free(NULL));
        ck_assert_int_eq(mrkv_lock_new(NULL, "x", &a), -EINVAL);
        ck_assert_int_eq(mrkv_lock_new(ca, NULL, &a), -EINVAL);

        mrkv_clerk_free(ca);
        mrkv_clerk_free(cb);
        test_kvserver_stop(&s);
        free(dir);
}
END_TEST

int main(void) {
        Suite *s = suite_create("lock");
        TCase *tc = tcase_create("lock");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_lock_api);
        tcase_add_test(tc, test_one_client_reliable);
        tcase_add_test(tc, test_many_clients_reliable);
        tcase_add_test(tc, test_one_client_unreliable);
        tcase_add_test(tc, test_many_clients_unreliable);
        suite_add_tcase(s, tc);

        return test_run_suite(s);
}
