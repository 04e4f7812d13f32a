/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Deletes and Lists against the real mrkv-kvserver, spoken to with raw Varlink: random
 * Gets, Puts, Deletes and Lists of a few keys from several clients, with the server
 * killed with SIGKILL and restarted, and through mrkv-faultproxy; every history is
 * linearizable (mrkv-lincheck's model with deletes and list entries). A call whose
 * reply was lost counts as a "maybe" without a return. Outcomes are counted, not timed. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json-util.h"
#include "kv-harness.h"
#include "lincheck.h"
#include "macro.h"
#include "varlink-client.h"

#define N_KEYS 4
#define N_CLIENTS 4

typedef struct Shared {
        const char *address;
        LinHistory *history;
        uint64_t call_timeout;
        volatile bool stop;
        uint64_t acked;         /* calls answered, all clients (atomic) */
        /* The clients wait while the server is started again: a fork() while other threads
         * hold locks (stdio, json-c) could leave the child stuck before its exec(). */
        bool pause;             /* atomic */
        unsigned n_paused;      /* atomic */
} Shared;

typedef struct Client {
        Shared *shared;
        int id;
        unsigned seed;
        unsigned ok, nokey, mismatch, lost, deletes, lists;
} Client;

/* One call; NULL error for success. -errno if no answer came (the connection is dropped). */
static int client_call(Client *cl, VarlinkClient **c, const char *method, json_object *p, json_object **reply,
                       const char **error) {
        int r;

        if (!*c) {
                r = varlink_client_connect(cl->shared->address, c);
                if (r < 0) {
                        usleep(10 * 1000); /* the server is down: not a busy loop */
                        return r;
                }
        }
        r = varlink_client_call(*c, method, p, cl->shared->call_timeout, reply, error);
        if (r < 0) {
                *c = varlink_client_free(*c);
                return r;
        }
        ck_assert_msg(!*error || streq(*error, "org.mrkv.KV.NoKey") || streq(*error, "org.mrkv.KV.VersionMismatch"),
                      "client %d: %s: %s", cl->id, method, *error);
        __atomic_add_fetch(&cl->shared->acked, 1, __ATOMIC_RELAXED);
        return 0;
}

static LinOutcome outcome_of(const char *error) {
        if (!error)
                return LIN_OUT_OK;
        return streq(error, "org.mrkv.KV.NoKey") ? LIN_OUT_NOKEY : LIN_OUT_VERSION;
}

static void count(Client *cl, int r, LinOutcome o) {
        if (r < 0)
                cl->lost++;
        else if (o == LIN_OUT_OK)
                cl->ok++;
        else if (o == LIN_OUT_NOKEY)
                cl->nokey++;
        else
                cl->mismatch++;
}

static void *client_run(void *userdata) {
        Client *cl = userdata;
        Shared *sh = cl->shared;
        VarlinkClient *c = NULL;

        for (unsigned n = 0; !__atomic_load_n(&sh->stop, __ATOMIC_RELAXED); n++) {
                _cleanup_json_ json_object *p = NULL, *reply = NULL;

                if (__atomic_load_n(&sh->pause, __ATOMIC_ACQUIRE)) {
                        __atomic_add_fetch(&sh->n_paused, 1, __ATOMIC_ACQ_REL);
                        while (__atomic_load_n(&sh->pause, __ATOMIC_ACQUIRE))
                                usleep(1000);
                        __atomic_sub_fetch(&sh->n_paused, 1, __ATOMIC_ACQ_REL);
                }
                const char *error = NULL;
                char key[16], value[32];
                uint64_t version = 0;
                int64_t call;
                int what, r;

                snprintf(key, sizeof(key), "k%d", rand_r(&cl->seed) % N_KEYS);
                snprintf(value, sizeof(value), "c%d-%u", cl->id, n);

                if (rand_r(&cl->seed) % 8 == 0) {
                        /* A List of all keys: each entry is a read of its key. */
                        call = lin_now_ns();
                        r = client_call(cl, &c, "org.mrkv.KV.List", NULL, &reply, &error);
                        if (r >= 0) {
                                json_object *entries = json_object_object_get(reply, "entries");
                                int64_t ret = lin_now_ns();

                                for (size_t i = 0; i < json_object_array_length(entries); i++) {
                                        json_object *e = json_object_array_get_idx(entries, i);

                                        ck_assert_int_eq(lin_history_add_list(
                                                                 sh->history, cl->id,
                                                                 json_object_get_string(json_object_object_get(e, "key")),
                                                                 call, ret, NULL,
                                                                 json_object_get_uint64(json_object_object_get(e, "version"))),
                                                         0);
                                }
                                cl->lists++;
                        }
                        continue;
                }

                /* A Get for the version to name, then a Put or a Delete with it (or, now and
                 * then, with a wrong one). */
                ck_assert_int_eq(json_build_object(&p, "key", json_object_new_string(key), NULL), 0);
                call = lin_now_ns();
                r = client_call(cl, &c, "org.mrkv.KV.Get", p, &reply, &error);
                if (r < 0)
                        continue; /* a Get without a reply constrains nothing */
                if (!error) {
                        version = json_object_get_uint64(json_object_object_get(reply, "version"));
                        ck_assert_int_eq(lin_history_add_get(sh->history, cl->id, key, call, lin_now_ns(), LIN_OUT_OK,
                                                             json_object_get_string(json_object_object_get(reply, "value")),
                                                             version),
                                         0);
                } else
                        ck_assert_int_eq(lin_history_add_get(sh->history, cl->id, key, call, lin_now_ns(),
                                                             LIN_OUT_NOKEY, NULL, 0),
                                         0);
                json_object_put(reply);
                reply = NULL;
                if (rand_r(&cl->seed) % 10 == 0)
                        version++;

                what = rand_r(&cl->seed) % 3;
                json_object_put(p);
                p = NULL;
                if (what == 0 && version > 0) {
                        ck_assert_int_eq(json_build_object(&p, "key", json_object_new_string(key),
                                                           "version", json_object_new_uint64(version), NULL),
                                         0);
                        call = lin_now_ns();
                        r = client_call(cl, &c, "org.mrkv.KV.Delete", p, &reply, &error);
                        ck_assert_int_eq(lin_history_add_delete(sh->history, cl->id, key, version, call,
                                                                r < 0 ? LIN_NEVER : lin_now_ns(),
                                                                r < 0 ? LIN_OUT_MAYBE : outcome_of(error)),
                                         0);
                        cl->deletes++;
                } else {
                        ck_assert_int_eq(json_build_object(&p, "key", json_object_new_string(key),
                                                           "value", json_object_new_string(value),
                                                           "version", json_object_new_uint64(version), NULL),
                                         0);
                        call = lin_now_ns();
                        r = client_call(cl, &c, "org.mrkv.KV.Put", p, &reply, &error);
                        ck_assert_int_eq(lin_history_add_put(sh->history, cl->id, key, value, version, call,
                                                             r < 0 ? LIN_NEVER : lin_now_ns(),
                                                             r < 0 ? LIN_OUT_MAYBE : outcome_of(error)),
                                         0);
                }
                count(cl, r, r < 0 ? LIN_OUT_MAYBE : outcome_of(error));
        }
        varlink_client_free(c);
        return NULL;
}

/* Waits until n more calls were answered since *mark. */
static bool wait_acked(Shared *sh, uint64_t *mark, uint64_t n) {
        uint64_t deadline = now_usec() + TEST_CALL_DEADLINE_USEC;

        while (__atomic_load_n(&sh->acked, __ATOMIC_RELAXED) < *mark + n) {
                if (now_usec() > deadline)
                        return false;
                usleep(1000);
        }
        *mark = __atomic_load_n(&sh->acked, __ATOMIC_RELAXED);
        return true;
}

static void run(const char *name, Shared *sh, void (*between)(Shared *sh, unsigned i, void *userdata),
                unsigned rounds, void *userdata) {
        Client clients[N_CLIENTS] = {};
        pthread_t threads[N_CLIENTS];
        unsigned seed = 1, ok = 0, nokey = 0, mismatch = 0, lost = 0, deletes = 0, lists = 0;
        uint64_t mark = 0;
        LinReport rep;

        if (getenv("MRKV_TEST_SEED"))
                seed += (unsigned) strtoul(getenv("MRKV_TEST_SEED"), NULL, 10);
        sh->history = lin_history_new();
        ck_assert_ptr_nonnull(sh->history);
        for (unsigned i = 0; i < N_CLIENTS; i++) {
                clients[i] = (Client) { .shared = sh, .id = (int) i, .seed = seed * 1000 + i };
                ck_assert_int_eq(pthread_create(&threads[i], NULL, client_run, &clients[i]), 0);
        }
        for (unsigned i = 0; i < rounds; i++) {
                /* A random moment, counted in answered calls rather than in time. */
                ck_assert_msg(wait_acked(sh, &mark, 20 + (unsigned) rand_r(&seed) % 200), "%s: no call answered",
                              name);
                if (between)
                        between(sh, i, userdata);
        }
        ck_assert(wait_acked(sh, &mark, 20));
        __atomic_store_n(&sh->stop, true, __ATOMIC_RELAXED);
        for (unsigned i = 0; i < N_CLIENTS; i++) {
                ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
                ok += clients[i].ok;
                nokey += clients[i].nokey;
                mismatch += clients[i].mismatch;
                lost += clients[i].lost;
                deletes += clients[i].deletes;
                lists += clients[i].lists;
        }

        ck_assert_int_eq(lin_check(sh->history, &(LinOptions) { .timeout_usec = 60 * USEC_PER_SEC }, &rep), 0);
        fprintf(stderr,
                "%s: %u clients, %zu operations (%u deletes, %u lists); writes %u ok, %u no key, %u version "
                "mismatch, %u without a reply; %s\n",
                name, N_CLIENTS, sh->history->n_ops, deletes, lists, ok, nokey, mismatch, lost,
                rep.description ?: "linearizable");
        if (rep.verdict == LIN_UNKNOWN)
                fprintf(stderr, "info: the check ran out of time, assuming the history is ok\n");
        else
                ck_assert_msg(rep.verdict == LIN_LINEARIZABLE, "%s: not linearizable", name);
        ck_assert_uint_gt(deletes, 0);
        ck_assert_uint_gt(lists, 0);
        lin_report_done(&rep);
        sh->history = lin_history_free(sh->history);
}

typedef struct Server {
        TestDaemon daemon;
        const char *dir;
} Server;

static const char *const crash_options[] = { "--snapshot-log-size=16K", NULL };

static void kill_and_restart(Shared *sh, unsigned i, void *userdata) {
        Server *server = userdata;
        TestDaemon *s = &server->daemon;
        int status;

        ck_assert_int_eq(kill(s->pid, SIGKILL), 0);
        status = test_daemon_stop(s);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "wait status %#x", (unsigned) status);

        /* Killed under load; started again with the clients waiting (see Shared). */
        __atomic_store_n(&sh->pause, true, __ATOMIC_RELEASE);
        uint64_t deadline = now_usec() + TEST_CALL_DEADLINE_USEC;
        while (__atomic_load_n(&sh->n_paused, __ATOMIC_ACQUIRE) < N_CLIENTS) {
                ck_assert_msg(now_usec() < deadline, "the clients did not pause");
                usleep(1000);
        }
        test_kvserver_start_with(server->dir, crash_options, NULL, s);
        __atomic_store_n(&sh->pause, false, __ATOMIC_RELEASE);
}

START_TEST(test_delete_crash_restart) {
        char *dir = test_dir_new();
        Shared sh = { .call_timeout = 2 * USEC_PER_SEC };
        Server s = { .dir = dir };

        /* Deletes made durable like Puts, and the floor with them: across 10 SIGKILLs (and
         * the snapshots a small --snapshot-log-size makes) the history stays linearizable. */
        test_kvserver_start_with(dir, crash_options, NULL, &s.daemon);
        sh.address = s.daemon.address;
        run("delete-crash-restart", &sh, kill_and_restart, 10, &s);
        test_kvserver_stop(&s.daemon);
        free(dir);
}
END_TEST

START_TEST(test_delete_unreliable) {
        char *dir = test_dir_new();
        Shared sh = { .call_timeout = 300 * USEC_PER_MSEC };
        TestProxy proxy;
        TestDaemon s;

        /* Through mrkv-faultproxy, which drops and delays messages: a call whose reply
         * does not come in time is given up, its connection closed, its outcome unknown. */
        test_kvserver_start(dir, &s);
        test_proxy_start(dir, s.address, 12, &proxy);
        sh.address = proxy.address;
        run("delete-unreliable", &sh, NULL, 10, NULL);
        test_proxy_stop(&proxy);
        test_kvserver_stop(&s);
        free(dir);
}
END_TEST

static Suite *kv_delete_suite(void) {
        Suite *s = suite_create("kv-delete");
        TCase *tc = tcase_create("kv-delete");

        tcase_set_timeout(tc, 300);
        tcase_add_test(tc, test_delete_crash_restart);
        tcase_add_test(tc, test_delete_unreliable);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);
        return test_run_suite(kv_delete_suite());
}
