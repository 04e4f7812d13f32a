/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The clerk against the real mrkv-kvserver (6.5840 lab 2, kvsrv1): Put semantics,
 * concurrent clients, and an unreliable network through mrkv-faultproxy. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv-harness.h"

START_TEST(test_reliable_put_semantics) {
        static const char tricky[] = "quotes \" backslash \\ newline \n tab \t unicode \xe2\x9c\x93 slash /";
        char *dir = test_dir_new(), *value = NULL;
        uint64_t version = 0;
        TestDaemon s;
        mrkv_clerk *c;

        test_kvserver_start(dir, &s);
        c = test_clerk_new(s.address, false);

        ck_assert_int_eq(mrkv_clerk_get(c, "k", &value, &version), MRKV_ERR_NO_KEY);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "a", 1), MRKV_ERR_NO_KEY);

        ck_assert_int_eq(mrkv_clerk_put(c, "k", "a", 0), MRKV_OK);
        ck_assert_int_eq(mrkv_clerk_get(c, "k", &value, &version), MRKV_OK);
        ck_assert_str_eq(value, "a");
        ck_assert_uint_eq(version, 1);
        free(value);

        ck_assert_int_eq(mrkv_clerk_put(c, "k", "b", 0), MRKV_ERR_VERSION);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "b", 2), MRKV_ERR_VERSION);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "b", 1), MRKV_OK);
        ck_assert_int_eq(mrkv_clerk_get(c, "k", &value, &version), MRKV_OK);
        ck_assert_str_eq(value, "b");
        ck_assert_uint_eq(version, 2);
        free(value);

        /* A rejected Put changed nothing. */
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "c", 7), MRKV_ERR_VERSION);
        ck_assert_int_eq(mrkv_clerk_get(c, "k", &value, &version), MRKV_OK);
        ck_assert_str_eq(value, "b");
        ck_assert_uint_eq(version, 2);
        free(value);

        /* Values survive JSON both ways; the empty value is a value. */
        ck_assert_int_eq(mrkv_clerk_put(c, "k", tricky, 2), MRKV_OK);
        ck_assert_int_eq(mrkv_clerk_get(c, "k", &value, NULL), MRKV_OK);
        ck_assert_str_eq(value, tricky);
        free(value);
        ck_assert_int_eq(mrkv_clerk_put(c, "empty", "", 0), MRKV_OK);
        ck_assert_int_eq(mrkv_clerk_get(c, "empty", &value, &version), MRKV_OK);
        ck_assert_str_eq(value, "");
        ck_assert_uint_eq(version, 1);
        free(value);

        /* Keys are independent. */
        ck_assert_int_eq(mrkv_clerk_get(c, "other", NULL, NULL), MRKV_ERR_NO_KEY);

        /* Nothing was lost on a reliable socket. */
        ck_assert_uint_eq(mrkv_clerk_get_resends(c), 0);

        mrkv_clerk_free(c);
        test_kvserver_stop(&s);
        free(dir);
}
END_TEST

/* A clerk whose connection the server closed as idle finds out before its next call and
 * connects again: that call never went out on the dead connection, so a Put refused for
 * its version is MRKV_ERR_VERSION, not MRKV_ERR_MAYBE. */
START_TEST(test_idle_connection_closed) {
        static const char *const extra[] = { "--idle-timeout", "0.2", NULL };
        char *dir = test_dir_new();
        TestDaemon s;
        mrkv_clerk *c;

        test_kvserver_start_with(dir, extra, &(TestDaemonOptions) { .watch_notify = true }, &s);
        c = test_clerk_new(s.address, false);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "a", 0), MRKV_OK);
        ck_assert(test_daemon_wait_notify(&s, "1 keys, 0 connections,", TEST_TIMEOUT_USEC));

        ck_assert_int_eq(mrkv_clerk_put(c, "k", "b", 0), MRKV_ERR_VERSION);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "b", 1), MRKV_OK);
        ck_assert_uint_eq(mrkv_clerk_get_resends(c), 0);

        mrkv_clerk_free(c);
        test_kvserver_stop(&s);
        free(dir);
}
END_TEST

/* The clerk reconnects to a restarted server by itself, and the restarted server has
 * the keys of the old one. */
START_TEST(test_server_restart) {
        char *dir = test_dir_new();
        TestDaemon s;
        mrkv_clerk *c;

        test_kvserver_start(dir, &s);
        c = test_clerk_new(s.address, false);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "a", 0), MRKV_OK);

        /* The clerk's connection goes with the old server; the key stays, in the state
         * directory the new server loads. */
        test_kvserver_stop(&s);
        test_kvserver_start(dir, &s);

        /* It sees its connection closed before the call and connects again: no resend. */
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "b", 1), MRKV_OK);
        ck_assert_uint_eq(mrkv_clerk_get_resends(c), 0);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "c", 1), MRKV_ERR_VERSION);
        mrkv_clerk_free(c);
        test_kvserver_stop(&s);
        free(dir);
}
END_TEST

#define RACE_CLIENTS 10
#define RACE_USEC (1 * USEC_PER_SEC)

typedef struct Racer {
        const char *address;
        int id;
        uint64_t end;
        TestHistory history;
        unsigned n_ok, n_unexpected;
        int last_error;
} Racer;

static void *race(void *userdata) {
        Racer *x = userdata;
        mrkv_clerk *c = NULL;

        if (mrkv_clerk_new(x->address, &c) < 0 || mrkv_clerk_set_deadline(c, TEST_CALL_DEADLINE_USEC) < 0) {
                x->last_error = -1;
                return NULL;
        }

        for (unsigned n = 0; now_usec() < x->end; n++) {
                char value[64];
                uint64_t version = 0;
                int r;

                r = test_get(c, &x->history, x->id, "k", NULL, &version);
                if (r == MRKV_ERR_NO_KEY)
                        version = 0;
                else if (r != MRKV_OK) {
                        x->n_unexpected++, x->last_error = r;
                        continue;
                }

                snprintf(value, sizeof(value), "client %d put %u", x->id, n);
                r = test_put(c, &x->history, x->id, "k", value, version);
                if (r == MRKV_OK)
                        x->n_ok++;
                else if (r != MRKV_ERR_VERSION) /* a reliable network never says maybe */
                        x->n_unexpected++, x->last_error = r;
        }

        mrkv_clerk_free(c);
        return NULL;
}

START_TEST(test_reliable_concurrent_clients) {
        char *dir = test_dir_new(), *path = NULL;
        Racer racers[RACE_CLIENTS] = {};
        TestHistory histories[RACE_CLIENTS];
        pthread_t threads[RACE_CLIENTS];
        uint64_t end, version = 0;
        unsigned n_ok = 0;
        TestDaemon s;
        mrkv_clerk *c;

        test_kvserver_start(dir, &s);

        end = now_usec() + RACE_USEC;
        for (int i = 0; i < RACE_CLIENTS; i++) {
                racers[i] = (Racer) { .address = s.address, .id = i, .end = end };
                ck_assert_int_eq(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
        }
        for (int i = 0; i < RACE_CLIENTS; i++) {
                ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
                ck_assert_msg(racers[i].n_unexpected == 0, "client %d: %u unexpected results, last %d (%s)", i,
                              racers[i].n_unexpected, racers[i].last_error,
                              mrkv_result_to_string(racers[i].last_error));
                n_ok += racers[i].n_ok;
                histories[i] = racers[i].history;
        }

        /* Every OK Put moved the version by one, and no other Put did. */
        c = test_clerk_new(s.address, false);
        ck_assert_int_eq(mrkv_clerk_get(c, "k", NULL, &version), MRKV_OK);
        ck_assert_uint_gt(n_ok, 0);
        ck_assert_uint_eq(version, n_ok);
        mrkv_clerk_free(c);
        test_kvserver_stop(&s);

        ck_assert_int_ge(asprintf(&path, "%s/history.jsonl", dir), 0);
        test_history_write(histories, RACE_CLIENTS, path);
        for (int i = 0; i < RACE_CLIENTS; i++)
                test_history_done(&histories[i]);
        test_assert_linearizable(path);
        free(path);
        free(dir);
}
END_TEST

#define UNRELIABLE_TRIES 100

/* One client through the fault proxy: each try reads the version and then puts at it
 * until the Put is known to have been applied (OK, or MAYBE confirmed by a read). */
START_TEST(test_unreliable_one_client) {
        char *dir = test_dir_new(), *path = NULL;
        uint64_t initial = 0, final = 0;
        unsigned n_maybe = 0;
        TestHistory h = {};
        TestDaemon s;
        TestProxy p;
        mrkv_clerk *c;

        test_kvserver_start(dir, &s);
        test_proxy_start(dir, s.address, 1, &p);
        c = test_clerk_new(p.address, true);

        for (unsigned try = 0; try < UNRELIABLE_TRIES; try++) {
                char value[32], *got = NULL;
                uint64_t version = 0, after = 0;
                int r;

                r = test_get(c, &h, 0, "k", NULL, &version);
                ck_assert(r == MRKV_OK || (r == MRKV_ERR_NO_KEY && try == 0));
                if (try == 0)
                        initial = version;
                ck_assert_uint_eq(version, initial + try);

                snprintf(value, sizeof(value), "try %u", try);
                for (;;) {
                        r = test_put(c, &h, 0, "k", value, version);
                        /* Alone on the key, the first attempt of a Put cannot mismatch. */
                        ck_assert_msg(r == MRKV_OK || r == MRKV_ERR_MAYBE, "try %u: put returned %d (%s)", try, r,
                                      mrkv_result_to_string(r));
                        if (r == MRKV_OK)
                                break;

                        n_maybe++;
                        r = test_get(c, &h, 0, "k", &got, &after);
                        ck_assert_int_eq(r, MRKV_OK);
                        if (after == version + 1) {
                                /* Applied by the attempt whose reply was lost. */
                                ck_assert_str_eq(got, value);
                                free(got);
                                break;
                        }
                        /* Nobody else writes: a MAYBE that was not applied leaves the version. */
                        ck_assert_uint_eq(after, version);
                        free(got);
                }
        }

        /* Each try was applied exactly once. */
        ck_assert_int_eq(test_get(c, &h, 0, "k", NULL, &final), MRKV_OK);
        ck_assert_uint_eq(final, initial + UNRELIABLE_TRIES);
        ck_assert_msg(n_maybe > 0, "the clerk never returned MRKV_ERR_MAYBE through the fault proxy");
        ck_assert_uint_gt(mrkv_clerk_get_resends(c), 0);
        fprintf(stderr, "unreliable: %u maybe, %" PRIu64 " resends\n", n_maybe, mrkv_clerk_get_resends(c));

        mrkv_clerk_free(c);
        test_proxy_stop(&p);
        test_kvserver_stop(&s);

        ck_assert_int_ge(asprintf(&path, "%s/history.jsonl", dir), 0);
        test_history_write(&h, 1, path);
        test_history_done(&h);
        test_assert_linearizable(path);
        free(path);
        free(dir);
}
END_TEST

int main(void) {
        Suite *s = suite_create("kvsrv");
        TCase *tc = tcase_create("kvsrv");

        tcase_set_timeout(tc, 240);
        tcase_add_test(tc, test_reliable_put_semantics);
        tcase_add_test(tc, test_server_restart);
        tcase_add_test(tc, test_idle_connection_closed);
        tcase_add_test(tc, test_reliable_concurrent_clients);
        tcase_add_test(tc, test_unreliable_one_client);
        suite_add_tcase(s, tc);

        return test_run_suite(s);
}
