/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kv-harness.h"
#include "lincheck.h"

void test_kvserver_start_with(const char *dir, const char *const *extra, const TestDaemonOptions *o,
                              TestDaemon *ret) {
        TestDaemonOptions opts = o ? *o : (TestDaemonOptions) {};
        const char *args[24];
        char *state = NULL;
        size_t n = 0;

        ck_assert_int_ge(asprintf(&state, "%s/state", dir), 0);
        args[n++] = "--state-directory";
        args[n++] = state;
        for (size_t i = 0; extra && extra[i]; i++) {
                ck_assert_uint_lt(n, sizeof(args) / sizeof(args[0]) - 1);
                args[n++] = extra[i];
        }
        args[n] = NULL;
        opts.args = args;
        test_daemon_start(ret, test_program("MRKV_TEST_KVSERVER"), dir, "kv.sock", &opts);
        free(state);
}

void test_kvserver_start(const char *dir, TestDaemon *ret) {
        test_kvserver_start_with(dir, NULL, NULL, ret);
}

void test_kvserver_stop(TestDaemon *d) {
        int status = test_daemon_stop(d);

        ck_assert_msg(status == 0, "mrkv-kvserver ended with wait status %#x", (unsigned) status);
}

typedef struct ProxyStart {
        pid_t pid;
        const char *ready;
} ProxyStart;

static bool proxy_ready(void *userdata) {
        ProxyStart *p = userdata;
        int status;

        if (access(p->ready, F_OK) == 0)
                return true;
        ck_assert_msg(!test_exited(p->pid, &status), "mrkv-faultproxy exited (wait status %#x)", (unsigned) status);
        return false;
}

void test_proxy_start(const char *dir, const char *target, uint64_t seed, TestProxy *ret) {
        test_proxy_start_with(dir, target, seed, NULL, ret);
}

void test_proxy_start_with(const char *dir, const char *target, uint64_t seed, const char *const *extra,
                           TestProxy *ret) {
        char *path = NULL, *ready = NULL, *seed_s = NULL;
        char *argv[24];
        size_t n = 0;

        /* Fixed seeds make failures reproducible; MRKV_TEST_SEED explores others. */
        if (getenv("MRKV_TEST_SEED"))
                seed += strtoull(getenv("MRKV_TEST_SEED"), NULL, 10);

        *ret = (TestProxy) {};
        ck_assert_int_ge(asprintf(&path, "%s/proxy.sock", dir), 0);
        ck_assert_int_ge(asprintf(&ready, "%s/proxy.ready", dir), 0);
        ck_assert_int_ge(asprintf(&ret->address, "unix:%s", path), 0);
        ck_assert_int_ge(asprintf(&seed_s, "%" PRIu64, seed), 0);

        argv[n++] = (char *) test_program("MRKV_TEST_FAULTPROXY");
        argv[n++] = (char *) "--listen";
        argv[n++] = ret->address;
        argv[n++] = (char *) "--connect";
        argv[n++] = (char *) target;
        argv[n++] = (char *) "--seed";
        argv[n++] = seed_s;
        argv[n++] = (char *) "--ready-file";
        argv[n++] = ready;
        for (size_t i = 0; extra && extra[i]; i++) {
                ck_assert_uint_lt(n, sizeof(argv) / sizeof(argv[0]) - 1);
                argv[n++] = (char *) extra[i];
        }
        argv[n] = NULL;
        ret->pid = test_spawn(argv, NULL);
        ck_assert_msg(test_wait_until(TEST_TIMEOUT_USEC, proxy_ready, &(ProxyStart) { .pid = ret->pid, .ready = ready }),
                      "mrkv-faultproxy did not write %s", ready);
        ck_assert(test_socket_accepts(path));

        free(path);
        free(ready);
        free(seed_s);
}

void test_proxy_stop(TestProxy *p) {
        test_kill(&p->pid);
        free(p->address);
        *p = (TestProxy) {};
}

mrkv_clerk *test_clerk_new(const char *address, bool unreliable) {
        mrkv_clerk *c = NULL;

        ck_assert_int_eq(mrkv_clerk_new(address, &c), 0);
        ck_assert_int_eq(mrkv_clerk_set_deadline(c, TEST_CALL_DEADLINE_USEC), 0);
        /* The proxy delays calls by up to 27 ms: 100 ms resends lost ones quickly. */
        if (unreliable)
                ck_assert_int_eq(mrkv_clerk_set_attempt_timeout(c, 100 * USEC_PER_MSEC), 0);
        return c;
}

static TestOp *history_append(TestHistory *h) {
        if (h->n == h->allocated) {
                size_t n = h->allocated ? h->allocated * 2 : 1024;
                TestOp *ops = realloc(h->ops, n * sizeof(TestOp));
                ck_assert_ptr_nonnull(ops);
                h->ops = ops;
                h->allocated = n;
        }
        h->ops[h->n] = (TestOp) {};
        return &h->ops[h->n++];
}

static char *xstrdup(const char *s) {
        char *d = s ? strdup(s) : NULL;

        ck_assert(!s || d);
        return d;
}

int test_get(mrkv_clerk *c, TestHistory *h, int client, const char *key, char **ret_value,
             uint64_t *ret_version) {
        char *value = NULL;
        uint64_t version = 0;
        int64_t call, ret;
        TestOp *op;
        int r;

        call = lin_now_ns();
        r = mrkv_clerk_get(c, key, &value, &version);
        ret = lin_now_ns();

        /* A Get without an answer constrains nothing; leave it out. */
        if (r >= 0) {
                op = history_append(h);
                op->client = client;
                op->key = xstrdup(key);
                op->call = call;
                op->ret = ret;
                op->result = r;
                if (r == MRKV_OK) {
                        op->out_value = xstrdup(value);
                        op->out_version = version;
                }
        }

        if (ret_value)
                *ret_value = value;
        else
                free(value);
        if (ret_version)
                *ret_version = version;
        return r;
}

int test_put(mrkv_clerk *c, TestHistory *h, int client, const char *key, const char *value, uint64_t version) {
        int64_t call, ret;
        TestOp *op;
        int r;

        call = lin_now_ns();
        r = mrkv_clerk_put(c, key, value, version);
        ret = lin_now_ns();

        /* A StorageError changed nothing: as if the Put had not been called. */
        if ((r >= 0 && r != MRKV_ERR_STORAGE) || r == -ETIMEDOUT) {
                op = history_append(h);
                op->client = client;
                op->put = true;
                op->key = xstrdup(key);
                op->value = xstrdup(value);
                op->version = version;
                op->call = call;
                /* A Put that timed out may take effect at any later time. */
                op->ret = r >= 0 ? ret : -1;
                op->result = r >= 0 ? r : MRKV_ERR_MAYBE;
        }
        return r;
}

void test_history_done(TestHistory *h) {
        for (size_t i = 0; i < h->n; i++) {
                free(h->ops[i].key);
                free(h->ops[i].value);
                free(h->ops[i].out_value);
        }
        free(h->ops);
        *h = (TestHistory) {};
}

static LinOutcome outcome_of(int r) {
        switch (r) {
        case MRKV_OK:
                return LIN_OUT_OK;
        case MRKV_ERR_NO_KEY:
                return LIN_OUT_NOKEY;
        case MRKV_ERR_VERSION:
                return LIN_OUT_VERSION;
        case MRKV_ERR_MAYBE:
                return LIN_OUT_MAYBE;
        default:
                ck_abort_msg("unexpected result %d", r);
                return _LIN_OUT_MAX;
        }
}

void test_history_write(TestHistory *hs, size_t n, const char *path) {
        _cleanup_(lin_history_freep) LinHistory *h = lin_history_new();

        ck_assert_ptr_nonnull(h);
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < hs[i].n; j++) {
                        const TestOp *op = &hs[i].ops[j];
                        LinOp l = {
                                .client = op->client,
                                .kind = op->put ? LIN_PUT : LIN_GET,
                                .key = op->key,
                                .value = op->value,
                                .version = op->version,
                                .outcome = outcome_of(op->result),
                                .out_value = op->out_value,
                                .out_version = op->out_version,
                                .call = op->call,
                                .ret = op->ret >= 0 ? op->ret : LIN_NEVER,
                        };

                        ck_assert_int_eq(lin_history_add(h, &l), 0);
                }
        /* In mrkv-lincheck's format, which the program reads back. */
        ck_assert_int_eq(lin_history_save(h, path), 0);
}

void test_assert_linearizable(const char *path) {
        char *argv[] = {
                (char *) test_program("MRKV_TEST_LINCHECK"),
                (char *) "--timeout", (char *) "60",
                (char *) path,
                NULL,
        };
        char *out = NULL;
        int status = test_run(argv, NULL, &out);

        if (out[0])
                fprintf(stderr, "mrkv-lincheck: %s", out);
        free(out);
        ck_assert_msg(WIFEXITED(status), "mrkv-lincheck died (status %#x)", status);
        if (WEXITSTATUS(status) == 3) {
                fprintf(stderr, "info: linearizability check of %s timed out, assuming the history is ok\n", path);
                return;
        }
        ck_assert_msg(WEXITSTATUS(status) == 0, "history %s is %s (mrkv-lincheck exit %d; MRKV_TEST_KEEP=1 keeps it)", path,
                      WEXITSTATUS(status) == 1 ? "NOT linearizable" : "not checkable", WEXITSTATUS(status));
}
