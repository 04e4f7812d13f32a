/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lab's memory test (kvsrv1 TestMemPutManyClients): 100,000 clients connect one
 * after another, each Puts a 1000-byte value under its own key and leaves. The server's
 * resident memory may grow by the data plus at most 200 bytes per client: at-most-once
 * comes from versions and not from a per-client table, per-key overhead must be small,
 * and nothing may stay behind per closed connection. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv-harness.h"

#define DEFAULT_CLIENTS 100000
#define WARM_UP_KEYS 100
#define VALUE_SIZE 1000
/* What the lab allows a client beyond its key and value. */
#define OVERHEAD_PER_CLIENT 200

static unsigned n_clients(void) {
        const char *e = getenv("MRKV_TEST_MEMORY_CLIENTS");

        return e ? (unsigned) strtoul(e, NULL, 10) : DEFAULT_CLIENTS;
}

/* A new clerk each time: a new connection, as a new lab client. */
static void put_as_new_client(const char *address, const char *key, const char *value) {
        mrkv_clerk *c = test_clerk_new(address, false);
        int r = mrkv_clerk_put(c, key, value, 0);

        ck_assert_msg(r == MRKV_OK, "put %s returned %d (%s)", key, r, mrkv_result_to_string(r));
        mrkv_clerk_free(c);
}

START_TEST(test_many_clients_memory) {
        char *dir = test_dir_new(), value[VALUE_SIZE + 1], key[32], want[64];
        unsigned n = n_clients();
        uint64_t before, after, data = 0, allowed;
        TestDaemon s;

        ck_assert_uint_gt(n, 0);
        memset(value, 'x', VALUE_SIZE);
        value[VALUE_SIZE] = '\0';

        /* Its STATUS= says when it has seen every hang-up (see below). Memory is measured
         * here, not durability: without syncs 100,000 one-Put clients take seconds, not
         * minutes, and without snapshots no fork's copy-on-write pages are counted. The
         * log's buffers are in the growth all the same. */
        test_kvserver_start_with(dir, (const char *const[]) { "--sync=none", "--snapshot-log-size=0", NULL },
                                 &(TestDaemonOptions) { .watch_notify = true }, &s);

        /* Let the server allocate what any first connections need before measuring. */
        for (unsigned i = 0; i < WARM_UP_KEYS; i++) {
                snprintf(key, sizeof(key), "warm-up-%u", i);
                put_as_new_client(s.address, key, value);
        }
        before = test_rss(s.pid);

        for (unsigned i = 0; i < n; i++) {
                data += (uint64_t) snprintf(key, sizeof(key), "client-%u", i) + VALUE_SIZE;
                put_as_new_client(s.address, key, value);
                /* A full notification queue would block the server. */
                if (i % 100 == 0)
                        test_daemon_drain_notify(&s);
        }

        /* Every Put was answered; the server has also seen every hang-up once its status
         * says that no connection is left. */
        snprintf(want, sizeof(want), "STATUS=%u keys, 0 connections,", n + WARM_UP_KEYS);
        ck_assert_msg(test_daemon_wait_notify(&s, want, TEST_TIMEOUT_USEC), "the status never reached '%s'; last: %s",
                      want, s.last_status);
        after = test_rss(s.pid);

        allowed = data + (uint64_t) n * OVERHEAD_PER_CLIENT;
        fprintf(stderr,
                "%u clients: server RSS %" PRIu64 " -> %" PRIu64 " KiB, %.1f bytes per client beyond the %" PRIu64
                " bytes of data (allowed %d)\n",
                n, before / 1024, after / 1024, ((double) after - (double) before - (double) data) / n, data,
                OVERHEAD_PER_CLIENT);
        ck_assert_msg(after <= before || after - before <= allowed,
                      "server grew by %" PRIu64 " bytes for %u clients; allowed %" PRIu64, after - before, n, allowed);

        test_kvserver_stop(&s);
        free(dir);
}
END_TEST

int main(void) {
        /* Sanitizers pad and quarantine every block: the numbers would measure them. 77
         * tells meson the test was skipped. */
        if (getenv("MRKV_TEST_SANITIZED")) {
                fprintf(stderr, "Skipping the memory test in a sanitizer build.\n");
                return 77;
        }

        Suite *s = suite_create("kv-memory");
        TCase *tc = tcase_create("memory");

        tcase_set_timeout(tc, 600);
        tcase_add_test(tc, test_many_clients_memory);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
