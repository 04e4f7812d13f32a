/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkvctl against a real server: outputs and the documented exit codes. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <json-c/json.h>

#include "kv-harness.h"

static TestDaemon server;
static char *server_dir;

/* Runs mrkvctl with args (NULL-terminated) and returns its exit code; *ret_out gets its
 * standard output if non-NULL. */
static int ctl(char **ret_out, ...) {
        char *argv[32];
        size_t n = 0;
        va_list ap;
        int status;

        argv[n++] = (char *) test_program("MRKV_TEST_MRKVCTL");
        va_start(ap, ret_out);
        for (const char *a; (a = va_arg(ap, const char *));) {
                ck_assert_uint_lt(n, sizeof(argv) / sizeof(argv[0]) - 1);
                argv[n++] = (char *) a;
        }
        va_end(ap);
        argv[n] = NULL;

        status = test_run(argv, NULL, ret_out);
        ck_assert_msg(WIFEXITED(status), "mrkvctl died (status %#x)", status);
        return WEXITSTATUS(status);
}

static void setup(void) {
        server_dir = test_dir_new();
        test_kvserver_start(server_dir, &server);
}

static void teardown(void) {
        test_kvserver_stop(&server);
        free(server_dir);
}

START_TEST(test_get_put_exit_codes) {
        const char *a = server.address;
        char *out = NULL;

        ck_assert_int_eq(ctl(NULL, "--connect", a, "get", "k", NULL), 3);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "put", "k", "v", "--version", "1", NULL), 3);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "put", "k", "hello world", NULL), 0);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "put", "k", "again", NULL), 4);

        ck_assert_int_eq(ctl(&out, "--connect", a, "get", "k", NULL), 0);
        ck_assert_str_eq(out, "hello world\n");
        free(out);

        /* Options after the verb work too. */
        ck_assert_int_eq(ctl(NULL, "put", "k", "second", "--version", "1", "-c", a, NULL), 0);
        ck_assert_int_eq(ctl(&out, "get", "--connect", a, "k", NULL), 0);
        ck_assert_str_eq(out, "second\n");
        free(out);

        /* A value that looks like an option, after "--". */
        ck_assert_int_eq(ctl(NULL, "--connect", a, "put", "--version", "2", "--", "k", "--dashes", NULL), 0);
        ck_assert_int_eq(ctl(&out, "--connect", a, "get", "k", NULL), 0);
        ck_assert_str_eq(out, "--dashes\n");
        free(out);
}
END_TEST

START_TEST(test_get_json) {
        json_object *o, *v;
        char *out = NULL;

        ck_assert_int_eq(ctl(NULL, "--connect", server.address, "put", "j", "a \"quoted\" /path", NULL), 0);
        ck_assert_int_eq(ctl(&out, "--connect", server.address, "--json", "get", "j", NULL), 0);

        o = json_tokener_parse(out);
        ck_assert_msg(o, "not JSON: %s", out);
        ck_assert(json_object_object_get_ex(o, "value", &v));
        ck_assert_str_eq(json_object_get_string(v), "a \"quoted\" /path");
        ck_assert(json_object_object_get_ex(o, "version", &v));
        ck_assert(json_object_is_type(v, json_type_int));
        ck_assert_int_eq(json_object_get_int64(v), 1);
        json_object_put(o);
        free(out);
}
END_TEST

START_TEST(test_default_address_from_environment) {
        char *out = NULL;

        ck_assert_int_eq(setenv("MRKV_KV_ADDRESS", server.address, 1), 0);
        ck_assert_int_eq(ctl(NULL, "put", "e", "from env", NULL), 0);
        ck_assert_int_eq(ctl(&out, "get", "e", NULL), 0);
        ck_assert_str_eq(out, "from env\n");
        free(out);
        ck_assert_int_eq(unsetenv("MRKV_KV_ADDRESS"), 0);
}
END_TEST

START_TEST(test_usage_errors) {
        char *out = NULL;

        ck_assert_int_eq(ctl(NULL, NULL), 2);
        ck_assert_int_eq(ctl(NULL, "frobnicate", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "get", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "get", "a", "b", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "put", "a", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "put", "a", "b", "--version", "-1", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "put", "a", "b", "--version", "x", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "--timeout", "soon", "get", "a", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "--no-such-option", "get", "a", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "lock", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "lock", "name", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "lock", "name", "--", NULL), 2);

        ck_assert_int_eq(ctl(&out, "--help", NULL), 0);
        ck_assert_ptr_nonnull(strstr(out, "Exit status"));
        ck_assert_ptr_nonnull(strstr(out, "lock NAME") ?: strstr(out, "lock [--wait SEC] NAME"));
        free(out);
        ck_assert_int_eq(ctl(&out, "--version", NULL), 0);
        ck_assert_int_eq(strncmp(out, "mrkvctl ", 8), 0);
        free(out);
}
END_TEST

START_TEST(test_unreachable_server) {
        /* Retries until the timeout, then fails (1), not a usage error. */
        ck_assert_int_eq(ctl(NULL, "--connect", "unix:/nonexistent/mrkv/kv.sock", "--timeout", "0.3", "get", "k",
                             NULL),
                         1);
}
END_TEST

START_TEST(test_lock_runs_command) {
        const char *a = server.address;
        char *out = NULL;

        /* The command's status is mrkvctl's. */
        ck_assert_int_eq(ctl(NULL, "--connect", a, "lock", "l", "--", "sh", "-c", "exit 7", NULL), 7);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "lock", "l", "true", NULL), 0);

        /* The command runs while the key names a holder, and the lock is free after. */
        ck_assert_int_eq(ctl(&out, "--connect", a, "lock", "l", "--", "sh", "-c", "echo running", NULL), 0);
        ck_assert_str_eq(out, "running\n");
        free(out);
        ck_assert_int_eq(ctl(&out, "--connect", a, "lock", "l", "--", test_program("MRKV_TEST_MRKVCTL"),
                             "--connect", a, "get", "l", NULL),
                         0);
        ck_assert_uint_eq(strlen(out), 17); /* 16 hex digits and a newline */
        free(out);
        ck_assert_int_eq(ctl(&out, "--connect", a, "get", "l", NULL), 0);
        ck_assert_str_eq(out, "\n");
        free(out);

        /* Death by signal N is 128+N; a missing command is 127. */
        ck_assert_int_eq(ctl(NULL, "--connect", a, "lock", "l", "--", "sh", "-c", "kill -TERM $$", NULL), 128 + 15);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "lock", "l", "--", "/nonexistent/command", NULL), 127);

        /* A lock held by someone else: --wait gives up, with 1, without running anything. */
        ck_assert_int_eq(ctl(NULL, "--connect", a, "put", "held", "someone-else", NULL), 0);
        ck_assert_int_eq(ctl(&out, "--connect", a, "lock", "--wait", "0.2", "held", "--", "echo", "ran", NULL), 1);
        ck_assert_str_eq(out, "");
        free(out);
}
END_TEST

int main(void) {
        Suite *s = suite_create("mrkvctl");
        TCase *tc = tcase_create("mrkvctl");

        tcase_set_timeout(tc, 120);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_get_put_exit_codes);
        tcase_add_test(tc, test_get_json);
        tcase_add_test(tc, test_default_address_from_environment);
        tcase_add_test(tc, test_usage_errors);
        tcase_add_test(tc, test_unreachable_server);
        tcase_add_test(tc, test_lock_runs_command);
        suite_add_tcase(s, tc);

        return test_run_suite(s);
}
