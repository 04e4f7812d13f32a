/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The server's memory stays lean: 100,000 clients connect one after another, each Puts
 * a 1000-byte value under its own key and leaves. The server's resident memory may grow
 * by the data plus at most 200 bytes per client: per-key overhead must be small and
 * nothing may stay behind per closed connection. */
#include <check.h>
#include <limits.h>

#include "kvserver-test-util.h"
#include "macro.h"
#include "varlink-client.h"

#define N_CLIENTS 100000
#define VALUE_SIZE 1000
#define OVERHEAD_PER_CLIENT 200

static const char *kvserver_binary;

/* Resident memory of pid in bytes, from /proc. */
static uint64_t rss_bytes(pid_t pid) {
        char path[64], line[256];
        uint64_t kb = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %" SCNu64 " kB", &kb) == 1)
                        break;
        fclose(f);
        ck_assert_uint_gt(kb, 0);
        return kb * 1024;
}

static void put_new(const char *address, const char *key, json_object *value) {
        _cleanup_json_ json_object *p = NULL, *reply = NULL;
        VarlinkClient *c = NULL;
        const char *error = NULL;

        ck_assert_int_eq(json_build_object(&p,
                                           "key", json_object_new_string(key),
                                           "value", json_object_get(value),
                                           "version", json_object_new_uint64(0),
                                           NULL),
                         0);
        ck_assert_int_eq(varlink_client_connect(address, &c), 0);
        ck_assert_int_eq(varlink_client_call(c, "org.mrkv.KV.Put", p, 5 * USEC_PER_SEC, &reply, &error), 0);
        ck_assert_msg(!error, "Put %s: %s", key, error);
        varlink_client_free(c);
}

START_TEST(test_memory_per_client) {
        char tmpdir[PATH_MAX], key[32], want[64], cmd[PATH_MAX + 16];
        _cleanup_json_ json_object *value = NULL;
        uint64_t before, after, data = 0, allowed;
        char buf[VALUE_SIZE + 1];
        TestServer server;

        snprintf(tmpdir, sizeof(tmpdir), "%s/mrkv-kvmem-XXXXXX", getenv("TMPDIR") ?: "/tmp");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
        ck_assert_int_eq(test_server_start(&server, kvserver_binary, tmpdir, NULL), 0);

        memset(buf, 'v', VALUE_SIZE);
        buf[VALUE_SIZE] = '\0';
        value = json_object_new_string(buf);

        /* Let the server allocate what any first connection needs before measuring. */
        for (int i = 0; i < 100; i++) {
                snprintf(key, sizeof(key), "warmup-%d", i);
                put_new(server.address, key, value);
        }
        before = rss_bytes(server.pid);

        for (int i = 0; i < N_CLIENTS; i++) {
                int n = snprintf(key, sizeof(key), "client-%d", i);

                put_new(server.address, key, value);
                data += (uint64_t) n + VALUE_SIZE;
                if (i % 1000 == 0)
                        test_server_drain_notify(&server);
        }

        /* The server has seen every hang-up once its status says no connection is left. */
        snprintf(want, sizeof(want), "%d keys, 0 connections", N_CLIENTS + 100);
        ck_assert_msg(test_server_wait_notify(&server, want, 30 * TEST_USEC_PER_SEC) == 1,
                "status never reached '%s', last: %s", want, server.last_status);
        after = rss_bytes(server.pid);

        allowed = data + (uint64_t) N_CLIENTS * OVERHEAD_PER_CLIENT;
        printf("RSS before %" PRIu64 " KiB, after %" PRIu64 " KiB: growth %" PRIu64 " bytes for %" PRIu64
               " bytes of data, %.1f bytes per client beyond the data (allowed %d)\n",
                before / 1024, after / 1024, after - before, data,
                ((double) after - (double) before - (double) data) / N_CLIENTS, OVERHEAD_PER_CLIENT);
        ck_assert_uint_le(after - before, allowed);

        ck_assert_int_eq(test_server_stop(&server), 0);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
                fprintf(stderr, "Could not remove %s.\n", tmpdir);
}
END_TEST

int main(int argc, char *argv[]) {
        SRunner *sr;
        Suite *s;
        TCase *tc;
        int failed;

        if (argc != 2) {
                fprintf(stderr, "Usage: %s PATH-TO-MRKV-KVSERVER\n", argv[0]);
                return EXIT_FAILURE;
        }
        /* Sanitizers and valgrind pad and quarantine every block: the numbers would
         * measure them, not us. 77 tells meson the test was skipped. */
        if (getenv("MRKV_TEST_SANITIZED"))
                return 77;
        kvserver_binary = argv[1];

        s = suite_create("kvserver-memory");
        tc = tcase_create("memory");
        tcase_set_timeout(tc, 240);
        tcase_add_test(tc, test_memory_per_client);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
