/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lab's memory test (kvsrv1 TestMemPutManyClients): many short-lived clients must
 * cost the server nothing beyond the data they store, because at-most-once comes from
 * versions and not from a per-client table. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define DEFAULT_CLIENTS 100000
#define VALUE_SIZE 1000
/* What the lab allows a client beyond its key and value. */
#define OVERHEAD_PER_CLIENT 200

static unsigned n_clients(void) {
        const char *e = getenv("MRKV_TEST_MEMORY_CLIENTS");

        return e ? (unsigned) strtoul(e, NULL, 10) : DEFAULT_CLIENTS;
}

START_TEST(test_many_clients_memory) {
        char *dir = test_dir_new(), value[VALUE_SIZE + 1];
        unsigned n = n_clients();
        uint64_t before, after, key_bytes = 0, allowed;
        TestServer s;
        mrkv_clerk *c;

        ck_assert_uint_gt(n, 0);
        memset(value, 'x', VALUE_SIZE);
        value[VALUE_SIZE] = '\0';

        test_server_start(dir, &s);

        /* Warm the server up (first allocations, first connection) before measuring. */
        c = test_clerk_new(s.address, false);
        ck_assert_int_eq(mrkv_clerk_put(c, "warm-up", value, 0), MRKV_OK);
        mrkv_clerk_free(c);
        before = test_server_rss(&s);

        for (unsigned i = 0; i < n; i++) {
                char key[32];
                int r;

                snprintf(key, sizeof(key), "client-%u", i);
                key_bytes += strlen(key);
                /* A new clerk each time: a new connection, as a new lab client. */
                c = test_clerk_new(s.address, false);
                r = mrkv_clerk_put(c, key, value, 0);
                ck_assert_msg(r == MRKV_OK, "client %u: put returned %d (%s)", i, r, mrkv_result_to_string(r));
                mrkv_clerk_free(c);
        }

        /* Every Put was answered, so the server has handled them all. */
        after = test_server_rss(&s);
        allowed = (uint64_t) n * (VALUE_SIZE + OVERHEAD_PER_CLIENT) + key_bytes;
        fprintf(stderr, "%u clients: server RSS %" PRIu64 " -> %" PRIu64 " bytes, growth %" PRIu64
                        " (%.0f bytes per client; allowed %" PRIu64 ")\n",
                n, before, after, after - before, (double) (after - before) / n, allowed);
        ck_assert_msg(after <= before || after - before <= allowed,
                      "server grew by %" PRIu64 " bytes for %u clients; allowed %" PRIu64, after - before, n, allowed);

        test_server_stop(&s);
        free(dir);
}
END_TEST

int main(void) {
        /* Sanitizers pad and quarantine every block: RSS says nothing there. */
        if (getenv("MRKV_TEST_SANITIZED")) {
                fprintf(stderr, "Skipping the memory test in a sanitizer build.\n");
                return 77;
        }

        Suite *s = suite_create("kv-memory");
        TCase *tc = tcase_create("memory");

        tcase_set_timeout(tc, 600);
        tcase_add_test(tc, test_many_clients_memory);
        suite_add_tcase(s, tc);
        return harness_run(s);
}
