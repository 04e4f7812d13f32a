/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The harness of tests that run real programs: a private directory per test, child
 * processes that die with the test, and waiting for a condition with a deadline.
 * Starting a daemon on a socket is test-daemon.h.
 *
 * Everything here runs inside a Check test and fails the test (ck_assert) on what it
 * cannot do. Of mrkv it uses only lib/basic: the clock (now_usec() of time-util.h) and,
 * for tests waiting on a descriptor, fd_wait_until() of io-util.h.
 * MRKV_TEST_KEEP=1 keeps the temporary directories for a post-mortem. */

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "io-util.h"
#include "macro.h"
#include "time-util.h"

/* How long a started program may take to be ready, or a waited-for condition to come
 * true: far longer than either needs, generous for sanitizer builds and loaded machines. */
#define TEST_TIMEOUT_USEC (30 * USEC_PER_SEC)

/* Runs the suite: creates a private base directory (removed at the end, also when tests
 * crashed), runs every test, returns the exit status for main(). */
int test_run_suite(Suite *s);

/* A new empty directory under the base directory; malloc'd. */
char *test_dir_new(void);

/* The program named by environment variable env (meson sets it; asserts it is set). */
const char *test_program(const char *env);

/* Calls cond(userdata) every 10 ms until it returns true or timeout_usec passed;
 * returns whether it came true. */
bool test_wait_until(uint64_t timeout_usec, bool (*cond)(void *userdata), void *userdata);

/* How a child is started; every field may stay zero. */
typedef struct TestSpawn {
        /* "NAME=value" to set, "NAME" to unset, in the child's environment; NULL-terminated. */
        const char *const *env;
        /* A descriptor above STDERR_FILENO becomes the child's standard output. */
        int stdout_fd;
        /* Standard error goes where standard output goes. */
        bool stderr_to_stdout;
        /* A listening socket above STDERR_FILENO is passed as fd 3 with LISTEN_PID and
         * LISTEN_FDS=1, as systemd's socket activation does. */
        int listen_fd;
} TestSpawn;

/* Starts argv[0] with argv; o may be NULL. The child is SIGKILLed when the test process
 * dies, also when a failed assertion ends it before its cleanup. */
pid_t test_spawn(char *const argv[], const TestSpawn *o);

/* If pid has exited: reaps it, stores its wait status and returns true. */
bool test_exited(pid_t pid, int *ret_status);

/* SIGTERM, then SIGKILL if it has not exited within 10 s; reaps it. Returns the wait
 * status (0: exited with 0). Sets *pid to 0. No-op returning 0 if *pid <= 0. */
int test_kill(pid_t *pid);

/* Runs argv to completion (o as for test_spawn(), its stdout_fd aside; may be NULL).
 * Returns the wait status; *ret_output (if not NULL) gets the standard output (and error,
 * with stderr_to_stdout), malloc'd. */
int test_run(char *const argv[], const TestSpawn *o, char **ret_output);

/* Whether a stream connection to the Unix socket at path succeeds now. */
bool test_socket_accepts(const char *path);

/* The resident memory of pid (VmRSS), in bytes. */
uint64_t test_rss(pid_t pid);
