/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* Shared by the Check programs of lib/, and of others that need no more. */

/* Runs suite s; fork: CK_FORK_GETENV ($CK_FORK decides), or CK_FORK for tests that
 * must not share a process. Returns the exit status. */
static inline int tests_run(Suite *s, enum fork_status fork) {
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_set_fork_status(sr, fork);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* The descriptors this process has open, for checks that a test leaks none. */
static inline unsigned tests_count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        unsigned n = 0;

        ck_assert_ptr_nonnull(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n - 3; /* ".", ".." and the directory's own */
}

/* Runs fn in a child (whose limits, fds and signal mask may change for good) and returns
 * its exit status: 0 when every CHILD_CHECK() held. */
static inline int tests_in_child(int (*fn)(void)) {
        pid_t pid;
        int status;

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(fn());
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* An assertion inside tests_in_child(): Check's own do not work in a child of a test. */
#define CHILD_CHECK(expr)                                                               \
        do {                                                                            \
                if (!(expr)) {                                                          \
                        fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #expr); \
                        return 1;                                                       \
                }                                                                       \
        } while (0)
