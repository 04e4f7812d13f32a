/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The state directory: its lock against a second process, and the files written under
 * a temporary name and renamed into place. */
#include <check.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "macro.h"
#include "state-dir.h"
#include "strv.h"
#include "test-state-util.h"

START_TEST(test_open_creates_and_locks) {
        _cleanup_free_ char *base = test_dir_new(), *path = NULL;
        StateDir *d = NULL, *d2 = NULL;
        pid_t holder = -1;
        struct stat st;

        ck_assert_int_ge(asprintf(&path, "%s/state", base), 0);
        ck_assert_int_eq(state_dir_open(path, &d, &holder), 0);
        ck_assert_int_eq(holder, 0);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_uint_eq(st.st_mode & 07777, 0700);
        ck_assert_str_eq(state_dir_path(d), path);
        ck_assert(test_file_exists(state_dir_fd(d), "lock"));

        /* A second open file description conflicts even within this process. */
        ck_assert_int_eq(state_dir_open(path, &d2, &holder), -EBUSY);
        ck_assert_ptr_null(d2);
        ck_assert_int_eq(holder, getpid());

        d = state_dir_free(d);
        ck_assert_ptr_null(d);
        ck_assert_int_eq(state_dir_open(path, &d2, NULL), 0);
        state_dir_free(d2);
}
END_TEST

START_TEST(test_second_process_refused) {
        _cleanup_free_ char *path = test_dir_new();
        StateDir *d = NULL;
        int p[2], status;
        pid_t pid, holder = -1;
        char c;

        ck_assert_int_eq(pipe(p), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                StateDir *child = NULL;

                close(p[0]);
                if (state_dir_open(path, &child, NULL) < 0)
                        _exit(1);
                (void) !write(p[1], "x", 1);
                pause(); /* holds the lock until killed */
                _exit(0);
        }
        close(p[1]);
        ck_assert_int_eq(read(p[0], &c, 1), 1);

        ck_assert_int_eq(state_dir_open(path, &d, &holder), -EBUSY);
        ck_assert_int_eq(holder, pid);

        /* The lock goes with the process. */
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_int_eq(state_dir_open(path, &d, &holder), 0);
        state_dir_free(d);
        close(p[0]);
}
END_TEST

START_TEST(test_child_shares_lock) {
        _cleanup_free_ char *path = test_dir_new();
        StateDir *d = NULL, *d2 = NULL;
        int status;
        pid_t pid;

        ck_assert_int_eq(state_dir_open(path, &d, NULL), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                /* A forked child (a snapshot writer) still holds the lock after the
                 * parent let go of it, until it exits. */
                usleep(1); /* nothing: only the inherited descriptor */
                pause();
                _exit(0);
        }
        d = state_dir_free(d);
        ck_assert_int_eq(state_dir_open(path, &d2, NULL), -EBUSY);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_int_eq(state_dir_open(path, &d2, NULL), 0);
        state_dir_free(d2);
}
END_TEST

START_TEST(test_files) {
        _cleanup_free_ char *path = test_dir_new();
        _cleanup_free_ char *tmp = NULL;
        _cleanup_strv_free_ char **names = NULL;
        StateDir *d = NULL;
        int dfd, fd;

        ck_assert_int_eq(state_dir_open(path, &d, NULL), 0);
        dfd = state_dir_fd(d);

        tmp = state_tmp_name("data");
        ck_assert_str_eq(tmp, ".data.tmp");
        fd = state_file_create(dfd, tmp);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "abc", 3), 3);
        ck_assert(!test_file_exists(dfd, "data"));
        /* O_EXCL: a temporary file is never shared. */
        ck_assert_int_eq(state_file_create(dfd, tmp), -EEXIST);
        ck_assert_int_eq(state_file_commit(dfd, tmp, "data", true), 0);
        close(fd);
        ck_assert(test_file_exists(dfd, "data"));
        ck_assert(!test_file_exists(dfd, tmp));
        ck_assert_uint_eq(test_file_size(dfd, "data"), 3);

        /* No file is created or opened through a symlink. */
        ck_assert_int_eq(symlinkat("/etc/passwd", dfd, ".link.tmp"), 0);
        ck_assert_int_eq(state_file_create(dfd, ".link.tmp"), -EEXIST);
        ck_assert_int_eq(symlinkat("/nonexistent-target", dfd, ".dangling.tmp"), 0);
        ck_assert_int_eq(state_file_create(dfd, ".dangling.tmp"), -EEXIST);

        /* Leftovers of a crash go: those of one kind of file, or all. */
        test_file_write(dfd, ".snap-1.snap.tmp", "x", 1);
        test_file_write(dfd, ".log-1.wal.tmp", "x", 1);
        ck_assert_int_eq(state_dir_remove_tmp_prefix(dfd, "log-"), 1);
        ck_assert(!test_file_exists(dfd, ".log-1.wal.tmp"));
        ck_assert(test_file_exists(dfd, ".snap-1.snap.tmp"));
        ck_assert_int_eq(state_dir_remove_tmp(dfd), 3);
        ck_assert(!test_file_exists(dfd, ".snap-1.snap.tmp"));
        ck_assert(test_file_exists(dfd, "data"));

        test_file_write(dfd, "log-2.wal", "", 0);
        test_file_write(dfd, "log-1.wal", "", 0);
        test_file_write(dfd, "log-1.wal.cut-0", "", 0);
        ck_assert_int_eq(state_dir_list(dfd, "log-", ".wal", &names), 0);
        ck_assert_uint_eq(strv_length(names), 2);
        ck_assert_str_eq(names[0], "log-1.wal");
        ck_assert_str_eq(names[1], "log-2.wal");
        state_dir_free(d);
}
END_TEST

START_TEST(test_open_errors) {
        _cleanup_free_ char *base = test_dir_new(), *path = NULL;
        StateDir *d = NULL;

        ck_assert_int_ge(asprintf(&path, "%s/missing/state", base), 0);
        ck_assert_int_eq(state_dir_open(path, &d, NULL), -ENOENT);
        free(path);
        ck_assert_int_ge(asprintf(&path, "%s/file", base), 0);
        ck_assert_int_eq(close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)), 0);
        ck_assert_int_eq(state_dir_open(path, &d, NULL), -ENOTDIR);
        ck_assert_ptr_null(d);
}
END_TEST

static Suite *state_dir_suite(void) {
        Suite *s = suite_create("state-dir");
        TCase *tc = tcase_create("state-dir");

        tcase_add_test(tc, test_open_creates_and_locks);
        tcase_add_test(tc, test_second_process_refused);
        tcase_add_test(tc, test_child_shares_lock);
        tcase_add_test(tc, test_files);
        tcase_add_test(tc, test_open_errors);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run(state_dir_suite());
}
