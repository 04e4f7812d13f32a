/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The kv suite on top of the test library (tests/lib): mrkv-kvserver and
 * mrkv-faultproxy in a test's directory, clerks with the suite's deadlines, and
 * operation histories for the linearizability checker.
 *
 * Programs are found through the environment meson sets: MRKV_TEST_KVSERVER,
 * MRKV_TEST_FAULTPROXY, MRKV_TEST_LINCHECK, MRKV_TEST_MRKVCTL. MRKV_TEST_KEEP=1 keeps
 * the temporary directories (histories included); MRKV_TEST_SEED varies the faults. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <mrkv/kv.h>

#include "harness.h"
#include "test-daemon.h"

/* mrkv-kvserver listening on DIR/kv.sock with its state in DIR/state (so a server
 * started again on DIR finds the keys of the last one), ready for calls. */
void test_kvserver_start(const char *dir, TestDaemon *ret);
/* The same with more options (NULL-terminated) and daemon options (o may be NULL; its
 * args are replaced). */
void test_kvserver_start_with(const char *dir, const char *const *extra, const TestDaemonOptions *o,
                              TestDaemon *ret);
/* Stops it and asserts it exited cleanly: the server must survive everything the
 * tests do and exit with 0 on SIGTERM. */
void test_kvserver_stop(TestDaemon *d);

typedef struct TestProxy {
        pid_t pid;
        char *address; /* "unix:DIR/proxy.sock" */
} TestProxy;

/* mrkv-faultproxy in front of target with its default fault rates and the given seed
 * (plus $MRKV_TEST_SEED if set). */
void test_proxy_start(const char *dir, const char *target, uint64_t seed, TestProxy *ret);
/* The same with more options (NULL-terminated), such as other fault rates. */
void test_proxy_start_with(const char *dir, const char *target, uint64_t seed, const char *const *extra,
                           TestProxy *ret);
void test_proxy_stop(TestProxy *p);

/* How long one clerk call of a test may retry: far longer than any call needs, and a
 * server that crashed fails the test with -ETIMEDOUT instead of hanging it. */
#define TEST_CALL_DEADLINE_USEC (30 * USEC_PER_SEC)

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
