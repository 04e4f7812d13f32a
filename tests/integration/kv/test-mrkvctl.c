/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkvctl against a real server: outputs and the documented exit codes. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Reads one line from fd within 30 s; the caller frees it. */
static char *read_line(int fd) {
        char buf[512];
        size_t n = 0;

        while (n < sizeof(buf) - 1) {
                ck_assert_msg(poll(&(struct pollfd) { .fd = fd, .events = POLLIN }, 1, 30 * 1000) == 1,
                              "no line within 30 s (so far: %.*s)", (int) n, buf);
                ck_assert_int_eq(read(fd, buf + n, 1), 1);
                if (buf[n++] == '\n')
                        break;
        }
        buf[n] = '\0';
        return strdup(buf);
}

/* mrkvctl started in the background, its standard output on a pipe. */
static pid_t ctl_spawn(int *ret_out, const char *const *args) {
        char *argv[32];
        size_t n = 0;
        int p[2];
        pid_t pid;

        argv[n++] = (char *) test_program("MRKV_TEST_MRKVCTL");
        for (size_t i = 0; args[i]; i++)
                argv[n++] = (char *) args[i];
        argv[n] = NULL;
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = test_spawn(argv, &(TestSpawn) { .stdout_fd = p[1] });
        close(p[1]);
        *ret_out = p[0];
        return pid;
}

static int wait_exit(pid_t pid) {
        int status;

        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status), "mrkvctl died (status %#x)", status);
        return WEXITSTATUS(status);
}

START_TEST(test_del_ls_watch) {
        const char *a = server.address;
        char *out = NULL, *line;
        int fd;
        pid_t pid;

        ck_assert_int_eq(ctl(NULL, "--connect", a, "put", "b", "2", NULL), 0);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "put", "a", "1", NULL), 0);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "put", "c/x", "3", NULL), 0);
        ck_assert_int_eq(ctl(&out, "--connect", a, "ls", NULL), 0);
        ck_assert_str_eq(out, "a\nb\nc/x\n");
        free(out);
        ck_assert_int_eq(ctl(&out, "--connect", a, "ls", "c/", "--values", NULL), 0);
        ck_assert_str_eq(out, "c/x\t3\n");
        free(out);
        ck_assert_int_eq(ctl(&out, "--connect", a, "ls", "--json", "--page-size", "1", "b", NULL), 0);
        ck_assert_str_eq(out, "{\"key\":\"b\",\"version\":1}\n");
        free(out);

        ck_assert_int_eq(ctl(NULL, "--connect", a, "del", "b", "--version", "7", NULL), 4);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "del", "b", NULL), 0);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "del", "b", NULL), 3);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "get", "b", NULL), 3);

        /* A watch from version 1 of a: the current state at once (which shows the watch is
         * in place), then each change. */
        ck_assert_int_eq(ctl(NULL, "--connect", a, "put", "a", "one", "--version", "1", NULL), 0);
        pid = ctl_spawn(&fd, (const char *const[]) { "--connect", a, "watch", "a", "--version", "1", "--count", "3", NULL });
        line = read_line(fd);
        ck_assert_str_eq(line, "PUT a 2 one\n");
        free(line);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "put", "a", "two words", "--version", "2", NULL), 0);
        line = read_line(fd);
        ck_assert_str_eq(line, "PUT a 3 two words\n");
        free(line);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "del", "a", NULL), 0);
        line = read_line(fd);
        ck_assert_str_eq(line, "DELETE a 4\n");
        free(line);
        ck_assert_int_eq(wait_exit(pid), 0);
        close(fd);

        /* A prefix watch after version 1 gets at once the keys past it. */
        ck_assert_int_eq(ctl(NULL, "--connect", a, "put", "c/x", "4", "--version", "1", NULL), 0);
        ck_assert_int_eq(ctl(&out, "--connect", a, "--json", "watch", "--prefix", "c/", "--version", "1", "--count",
                             "1", NULL),
                         0);
        ck_assert_str_eq(out, "{\"key\":\"c/x\",\"version\":2,\"value\":\"4\",\"deleted\":false}\n");
        free(out);

        ck_assert_int_eq(ctl(NULL, "watch", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "watch", "k", "--prefix", "p", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "ls", "a", "b", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "del", NULL), 2);
}
END_TEST

START_TEST(test_lease_verbs) {
        const char *a = server.address;
        char *out = NULL, *id;

        ck_assert_int_eq(ctl(&out, "--connect", a, "lease", "grant", "30", NULL), 0);
        id = strndup(out, strcspn(out, "\n"));
        ck_assert_uint_gt(strtoull(id, NULL, 10), 0);
        free(out);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "put", "leased", "v", "--lease", id, NULL), 0);
        ck_assert_int_eq(ctl(&out, "--connect", a, "lease", "keepalive", id, "--once", NULL), 0);
        ck_assert_str_eq(out, "30\n");
        free(out);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "lease", "revoke", id, NULL), 0);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "get", "leased", NULL), 3);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "lease", "revoke", id, NULL), 9);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "lease", "keepalive", id, NULL), 9);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "put", "leased", "v", "--lease", id, NULL), 9);
        free(id);

        ck_assert_int_eq(ctl(NULL, "lease", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "lease", "grant", "0", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "lease", "grant", "1.5", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "lease", "renew", "1", NULL), 2);
        ck_assert_int_eq(ctl(NULL, "put", "k", "v", "--lease", "0", NULL), 2);
}
END_TEST

/* Two loops of mrkvctl lock around a read-increment-write of a counter file: no two
 * critical sections overlap (a marker file created with noclobber would fail), the
 * counter ends at the total, and the tokens the commands saw only go up. */
START_TEST(test_lock_counter_loops) {
        char *dir = test_dir_new(), *script = NULL, *out = NULL;
        pid_t pids[2];
        int fds[2];

        ck_assert_int_ge(asprintf(&script,
                                  "cd '%s' && echo 0 > count && i=0 && while [ $i -lt 25 ]; do "
                                  "\"$0\" --connect '%s' lock counter -- sh -c '"
                                  "set -C; : > inside || exit 99; n=$(cat count); echo $((n + 1)) > count.new; "
                                  "mv -f count.new count; echo $MRKV_LOCK_TOKEN >> tokens; rm inside' || exit 1; "
                                  "i=$((i + 1)); done",
                                  dir, server.address),
                         0);
        for (int i = 0; i < 2; i++) {
                char *argv[] = { (char *) "/bin/sh", (char *) "-c", script, (char *) test_program("MRKV_TEST_MRKVCTL"), NULL };
                int p[2];

                ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
                pids[i] = test_spawn(argv, &(TestSpawn) { .stdout_fd = p[1], .stderr_to_stdout = true });
                close(p[1]);
                fds[i] = p[0];
        }
        for (int i = 0; i < 2; i++) {
                int status;
                ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
                ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "loop %d: status %#x", i, status);
                close(fds[i]);
        }

        {
                char *argv[] = { (char *) "/bin/sh", (char *) "-c",
                                 (char *) "cat \"$0\"/count && sort -n -c \"$0\"/tokens && sort -n -u \"$0\"/tokens | wc -l",
                                 dir, NULL };
                ck_assert_int_eq(test_run(argv, NULL, &out), 0);
                /* The counter, then the number of distinct tokens: one per section. */
                ck_assert_str_eq(out, "50\n50\n");
                free(out);
        }
        free(script);
        free(dir);
}
END_TEST

/* A lock lost while the command runs (here its key deleted behind its back) stops the
 * command and exits with 8; the token was in the command's environment. */
START_TEST(test_lock_lost_stops_command) {
        const char *a = server.address;
        char *line;
        int fd;
        pid_t pid;

        pid = ctl_spawn(&fd, (const char *const[]) { "--connect", a, "lock", "lost", "--", "sh", "-c",
                                                      "echo token=$MRKV_LOCK_TOKEN; exec sleep 600", NULL });
        line = read_line(fd);
        ck_assert_int_eq(strncmp(line, "token=", 6), 0);
        ck_assert_uint_gt(strtoull(line + 6, NULL, 10), 0);
        free(line);
        ck_assert_int_eq(ctl(NULL, "--connect", a, "del", "lost", NULL), 0);
        ck_assert_int_eq(wait_exit(pid), 8);
        close(fd);
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
        tcase_add_test(tc, test_del_ls_watch);
        tcase_add_test(tc, test_lease_verbs);
        tcase_add_test(tc, test_lock_counter_loops);
        tcase_add_test(tc, test_lock_lost_stops_command);
        suite_add_tcase(s, tc);

        return test_run_suite(s);
}
