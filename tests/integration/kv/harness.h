/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Scaffolding for the kv suite: a private directory per test, real child processes
 * (mrkv-kvserver, mrkv-faultproxy, mrkvctl, mrkv-lincheck) that die with the test, and
 * operation histories for the linearizability checker.
 *
 * Programs are found through the environment meson sets: MRKV_TEST_KVSERVER,
 * MRKV_TEST_FAULTPROXY, MRKV_TEST_LINCHECK, MRKV_TEST_MRKVCTL. MRKV_TEST_KEEP=1 keeps
 * the temporary directories (histories included); MRKV_TEST_SEED varies the faults. */

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <mrkv/kv.h>

#define TEST_USEC_PER_SEC UINT64_C(1000000)
#define TEST_USEC_PER_MSEC UINT64_C(1000)
/* How long a started program may take to be ready; generous for sanitizer builds. */
#define TEST_START_TIMEOUT_USEC (30 * TEST_USEC_PER_SEC)

/* Runs the suite: creates a private base directory (removed at the end, also when
 * tests crashed), runs every test, returns the exit status for main(). */
int harness_run(Suite *s);

/* A new empty directory under the base directory; malloc'd. */
char *test_dir_new(void);

/* The program named by environment variable env (asserts it is set). */
const char *test_program(const char *env);

uint64_t test_now_usec(void);
int64_t test_now_ns(void);

/* Starts argv[0] with argv. The child is SIGKILLed when the test process dies. stdout_fd
 * (if >= 0) becomes its standard output. */
pid_t test_spawn(char *const argv[], int stdout_fd);
/* SIGTERM, then SIGKILL if it has not exited within a while; reaps it. Returns the wait
 * status. Sets *pid to 0. No-op if *pid <= 0. */
int test_kill(pid_t *pid);
/* Runs argv to completion. Returns the wait status; *ret_stdout (if non-NULL) gets its
 * standard output, malloc'd. */
int test_run(char *const argv[], char **ret_stdout);

/* Polls until a stream connection to the Unix socket at path succeeds, or fails the
 * test after TEST_START_TIMEOUT_USEC or if pid has exited. */
void test_wait_for_socket(const char *path, pid_t pid);

typedef struct TestServer {
        pid_t pid;
        char *address; /* "unix:DIR/kv.sock" */
        char *path;
} TestServer;

/* mrkv-kvserver listening on DIR/kv.sock, ready for calls. */
void test_server_start(const char *dir, TestServer *ret);
void test_server_stop(TestServer *s);
/* VmRSS of the server, in bytes. */
uint64_t test_server_rss(const TestServer *s);

typedef struct TestProxy {
        pid_t pid;
        char *address; /* "unix:DIR/proxy.sock" */
} TestProxy;

/* mrkv-faultproxy in front of target with its default fault rates and the given seed
 * (plus $MRKV_TEST_SEED if set). */
void test_proxy_start(const char *dir, const char *target, uint64_t seed, TestProxy *ret);
void test_proxy_stop(TestProxy *p);

/* How long one clerk call of a test may retry: far longer than any call needs, and a
 * server that crashed fails the test with -ETIMEDOUT instead of hanging it. */
#define TEST_CALL_DEADLINE_USEC (30 * TEST_USEC_PER_SEC)

/* A clerk on address with TEST_CALL_DEADLINE_USEC, and a short attempt timeout when
 * behind the proxy. */
mrkv_clerk *test_clerk_new(const char *address, bool unreliable);

/* Histories: one per client thread, merged when written. */
typedef struct TestOp {
        int client;
        bool put;
        char *key, *value; /* value: put's input */
        uint64_t version;  /* put's input */
        int64_t call, ret; /* ns; ret < 0: no reply was seen */
        int result;        /* MRKV_OK... */
        char *out_value;   /* get ok */
        uint64_t out_version;
} TestOp;

typedef struct TestHistory {
        TestOp *ops;
        size_t n, allocated;
} TestHistory;

/* Get/Put through the clerk, recorded in h. Same results as the clerk's functions. */
int test_get(mrkv_clerk *c, TestHistory *h, int client, const char *key, char **ret_value,
             uint64_t *ret_version);
int test_put(mrkv_clerk *c, TestHistory *h, int client, const char *key, const char *value, uint64_t version);

void test_history_done(TestHistory *h);
/* Writes the histories to path as JSON Lines in mrkv-lincheck's format. */
void test_history_write(TestHistory *hs, size_t n, const char *path);
/* Runs mrkv-lincheck on path and asserts the history is linearizable. A check that
 * runs out of time counts as a pass, as in the lab (porcupine's Unknown). */
void test_assert_linearizable(const char *path);
