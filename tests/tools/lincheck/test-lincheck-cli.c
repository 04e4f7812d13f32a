/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs mrkv-lincheck ($MRKV_LINCHECK) on history files written by the test. */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lincheck.h"
#include "macro.h"

extern char **environ;

/* One directory per test case, made and removed by the parent process, so that it
 * goes away even when a (forked) test fails. */
static char tmpdir[] = "/tmp/test-lincheck-cli-XXXXXX";

static void setup(void) {
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void teardown(void) {
        (void) nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *path_in_tmpdir(const char *name) {
        char *p;

        ck_assert_int_ge(asprintf(&p, "%s/%s", tmpdir, name), 0);
        return p;
}

static char *read_file(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t allocated = 0;
        ssize_t n;

        ck_assert_ptr_nonnull(f);
        n = getdelim(&buf, &allocated, '\0', f);
        if (n < 0) {
                free(buf);
                return strdup("");
        }
        return buf;
}

/* Runs the checker with args and returns its exit status; its stdout and stderr
 * replace *ret_out and *ret_err (NULL or earlier results). */
static int run(const char *const args[], char **ret_out, char **ret_err) {
        _cleanup_free_ char *out_path = path_in_tmpdir("stdout"), *err_path = path_in_tmpdir("stderr");
        const char *exe = getenv("MRKV_LINCHECK");
        posix_spawn_file_actions_t actions;
        const char *argv[16] = { exe };
        size_t n = 1;
        pid_t pid;
        int status;

        ck_assert_msg(exe, "MRKV_LINCHECK is not set");
        for (; args[n - 1]; n++) {
                ck_assert_uint_lt(n, ELEMENTSOF(argv) - 1);
                argv[n] = args[n - 1];
        }
        argv[n] = NULL;

        ck_assert_int_eq(posix_spawn_file_actions_init(&actions), 0);
        ck_assert_int_eq(posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path,
                                 O_WRONLY | O_CREAT | O_TRUNC, 0600),
                0);
        ck_assert_int_eq(posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path,
                                 O_WRONLY | O_CREAT | O_TRUNC, 0600),
                0);
        ck_assert_int_eq(posix_spawn(&pid, exe, &actions, NULL, (char *const *) argv, environ), 0);
        posix_spawn_file_actions_destroy(&actions);

        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status), "mrkv-lincheck did not exit normally: status %d", status);

        /* Callers reuse their buffers from run to run. */
        free(*ret_out);
        free(*ret_err);
        *ret_out = read_file(out_path);
        *ret_err = read_file(err_path);
        return WEXITSTATUS(status);
}

static char *save(LinHistory *h, const char *name) {
        char *path = path_in_tmpdir(name);

        ck_assert_int_eq(lin_history_save(h, path), 0);
        return path;
}

static char *write_text(const char *name, const char *text) {
        char *path = path_in_tmpdir(name);
        _cleanup_fclose_ FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        return path;
}

START_TEST(test_cli_linearizable) {
        _cleanup_(lin_history_freep) LinHistory *h = lin_history_new();
        _cleanup_free_ char *path = NULL, *out = NULL, *err = NULL;

        ck_assert_int_eq(lin_history_add_put(h, 1, "k", "a", 0, 0, 10, LIN_OUT_OK), 0);
        ck_assert_int_eq(lin_history_add_put(h, 2, "k", "b", 1, 5, 15, LIN_OUT_MAYBE), 0);
        ck_assert_int_eq(lin_history_add_get(h, 3, "k", 16, 20, LIN_OUT_OK, "b", 2), 0);
        ck_assert_int_eq(lin_history_add_get(h, 3, "j", 21, 22, LIN_OUT_NOKEY, NULL, 0), 0);
        path = save(h, "good.jsonl");

        ck_assert_int_eq(run((const char *[]) { path, NULL }, &out, &err), 0);
        ck_assert_msg(strncmp(out, "linearizable: 4 operations, 2 keys, ", 36) == 0, "%s", out);
        ck_assert_ptr_nonnull(strstr(out, " s\n"));
        /* Exactly one line. */
        ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);
}
END_TEST

START_TEST(test_cli_stdin_and_timeout_option) {
        _cleanup_free_ char *path = NULL, *out = NULL, *err = NULL;
        const char *text = "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"call\":1,\"return\":2,\"result\":\"nokey\"}\n";
        int fd;

        path = write_text("one.jsonl", text);
        /* "-" reads stdin; point stdin at the file for the child. */
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(dup2(fd, STDIN_FILENO), STDIN_FILENO);
        close(fd);
        ck_assert_int_eq(run((const char *[]) { "--timeout", "2.5", "-", NULL }, &out, &err), 0);
        ck_assert_msg(strncmp(out, "linearizable: 1 operations, 1 keys", 34) == 0, "%s", out);
}
END_TEST

START_TEST(test_cli_illegal) {
        _cleanup_(lin_history_freep) LinHistory *h = lin_history_new();
        _cleanup_free_ char *path = NULL, *out = NULL, *err = NULL;

        ck_assert_int_eq(lin_history_add_put(h, 1, "k", "a", 0, 0, 1, LIN_OUT_OK), 0);
        ck_assert_int_eq(lin_history_add_put(h, 1, "k", "b", 1, 2, 3, LIN_OUT_OK), 0);
        ck_assert_int_eq(lin_history_add_get(h, 2, "k", 4, 5, LIN_OUT_OK, "a", 1), 0);
        path = save(h, "stale.jsonl");

        ck_assert_int_eq(run((const char *[]) { path, NULL }, &out, &err), 1);
        ck_assert_msg(strncmp(out, "not linearizable: 3 operations, 1 keys, ", 40) == 0, "%s", out);
        ck_assert_msg(strstr(out, "key \"k\": at most 2 of its 3 operations"), "%s", out);
        /* Points at the line of the stale read. */
        ck_assert_msg(strstr(out, "(line 3)"), "%s", out);
}
END_TEST

START_TEST(test_cli_timeout) {
        _cleanup_(lin_history_freep) LinHistory *h = lin_history_new();
        _cleanup_free_ char *path = NULL, *out = NULL, *err = NULL;

        /* Puts that commute with everything beside an impossible read: exponential. */
        for (int i = 0; i < 48; i++)
                ck_assert_int_eq(lin_history_add_put(h, i, "k", "v", 7, 0, 100, LIN_OUT_VERSION), 0);
        ck_assert_int_eq(lin_history_add_get(h, 99, "k", 0, 100, LIN_OUT_OK, "ghost", 1), 0);
        path = save(h, "hard.jsonl");

        ck_assert_int_eq(run((const char *[]) { "--timeout", "0.05", path, NULL }, &out, &err), 3);
        ck_assert_msg(strncmp(out, "unknown: 49 operations, 1 keys, ", 32) == 0, "%s", out);
        ck_assert_msg(strstr(out, "time limit of 0.050 s"), "%s", out);

        ck_assert_int_eq(run((const char *[]) { "--timeout", "0", "--max-memory", "2", path, NULL }, &out, &err),
                3);
        ck_assert_msg(strstr(out, "memory limit of 2 MiB"), "%s", out);
}
END_TEST

START_TEST(test_cli_parse_error) {
        _cleanup_free_ char *path = NULL, *out = NULL, *err = NULL;

        path = write_text("bad.jsonl",
                "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"call\":1,\"return\":2,\"result\":\"nokey\"}\n"
                "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"call\":3,\"return\":4,\"result\":\"perhaps\"}\n");
        ck_assert_int_eq(run((const char *[]) { path, NULL }, &out, &err), 2);
        ck_assert_str_eq(out, "");
        ck_assert_msg(strstr(err, "line 2: \"result\" must be"), "%s", err);
}
END_TEST

START_TEST(test_cli_usage) {
        _cleanup_free_ char *out = NULL, *err = NULL, *missing = path_in_tmpdir("missing.jsonl");

        ck_assert_int_eq(run((const char *[]) { NULL }, &out, &err), 2);
        ck_assert_int_eq(run((const char *[]) { "a.jsonl", "b.jsonl", NULL }, &out, &err), 2);
        ck_assert_int_eq(run((const char *[]) { "--timeout", "soon", "a.jsonl", NULL }, &out, &err), 2);
        ck_assert_msg(strstr(err, "--timeout"), "%s", err);
        ck_assert_int_eq(run((const char *[]) { "--timeout", "-1", "a.jsonl", NULL }, &out, &err), 2);
        ck_assert_int_eq(run((const char *[]) { "--bogus", NULL }, &out, &err), 2);
        ck_assert_int_eq(run((const char *[]) { missing, NULL }, &out, &err), 2);
        ck_assert_msg(strstr(err, "missing.jsonl"), "%s", err);
        ck_assert_int_eq(run((const char *[]) { "--help", NULL }, &out, &err), 0);
        ck_assert_ptr_nonnull(strstr(out, "Usage: mrkv-lincheck"));
}
END_TEST

static Suite *cli_suite(void) {
        Suite *s = suite_create("lincheck-cli");
        TCase *tc = tcase_create("cli");

        tcase_add_unchecked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_cli_linearizable);
        tcase_add_test(tc, test_cli_stdin_and_timeout_option);
        tcase_add_test(tc, test_cli_illegal);
        tcase_add_test(tc, test_cli_timeout);
        tcase_add_test(tc, test_cli_parse_error);
        tcase_add_test(tc, test_cli_usage);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(cli_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
