/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The clerk against a scripted fake server, to force what a real network only does
 * by chance: a reply lost after the call was applied, a connection closed under a
 * pending call, a late reply on an abandoned connection, a server not there yet. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "kv-harness.h"

typedef enum Action {
        REPLY, /* write reply, keep the connection */
        REPLY_AND_CLOSE,
        CLOSE,       /* read the call, close without answering: "the reply was lost" */
        HOLD,        /* read the call, never answer on this connection (stay open) */
        STALE_REPLY, /* answer the HOLD connection's call late with stale, then reply here */
} Action;

typedef struct Step {
        Action action;
        const char *reply;
        const char *stale;
} Step;

#define MAX_STEPS 8
#define N_STEPS(s) (sizeof(s) / sizeof((s)[0]))

typedef struct Fake {
        char *path;
        int listen_fd;
        const Step *steps;
        size_t n_steps;

        char *requests[MAX_STEPS];
        atomic_uint n_connections;
        atomic_uint n_closed;
        pthread_t thread;
        bool started;
} Fake;

/* Binds the fake server's socket without listening: connecting is refused until
 * fake_start(). */
static void fake_bind(Fake *f, const Step *steps, size_t n_steps) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char *dir = test_dir_new();

        ck_assert_uint_le(n_steps, MAX_STEPS);
        *f = (Fake) { .steps = steps, .n_steps = n_steps };
        ck_assert_int_ge(asprintf(&f->path, "%s/fake.sock", dir), 0);
        free(dir);
        strcpy(sa.sun_path, f->path);
        f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(f->listen_fd, 0);
        ck_assert_int_eq(bind(f->listen_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
}

/* Reads one NUL-terminated message; NULL when the peer closed. */
static char *read_message(int fd) {
        char *m = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&m, &size);

        ck_assert_ptr_nonnull(out);
        for (;;) {
                char ch;
                ssize_t n = read(fd, &ch, 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        fclose(out);
                        free(m);
                        return NULL;
                }
                if (ch == '\0')
                        break;
                fputc(ch, out);
        }
        fclose(out);
        return m;
}

static void send_message(int fd, const char *m) {
        /* The clerk may have gone from this connection: MSG_NOSIGNAL, errors ignored. */
        (void) send(fd, m, strlen(m) + 1, MSG_NOSIGNAL);
}

static void close_connection(Fake *f, int *fd) {
        close(*fd);
        *fd = -1;
        atomic_fetch_add(&f->n_closed, 1);
}

static void *fake_serve(void *userdata) {
        Fake *f = userdata;
        int fd = -1, held = -1;

        for (size_t i = 0; i < f->n_steps;) {
                const Step *s = &f->steps[i];
                char *m;

                if (fd < 0) {
                        fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                        if (fd < 0)
                                break;
                        atomic_fetch_add(&f->n_connections, 1);
                }
                m = read_message(fd);
                if (!m) { /* the clerk gave this connection up; its call comes again */
                        close_connection(f, &fd);
                        continue;
                }
                f->requests[i++] = m;

                switch (s->action) {
                case REPLY:
                        send_message(fd, s->reply);
                        break;
                case REPLY_AND_CLOSE:
                        send_message(fd, s->reply);
                        close_connection(f, &fd);
                        break;
                case CLOSE:
                        close_connection(f, &fd);
                        break;
                case HOLD:
                        held = fd;
                        fd = -1;
                        break;
                case STALE_REPLY:
                        if (held >= 0)
                                send_message(held, s->stale);
                        send_message(fd, s->reply);
                        break;
                }
        }

        if (fd >= 0)
                close(fd);
        if (held >= 0)
                close(held);
        return NULL;
}

static void fake_start(Fake *f) {
        ck_assert_int_eq(listen(f->listen_fd, 16), 0);
        ck_assert_int_eq(pthread_create(&f->thread, NULL, fake_serve, f), 0);
        f->started = true;
}

static char *fake_address(const Fake *f) {
        char *a = NULL;

        ck_assert_int_ge(asprintf(&a, "unix:%s", f->path), 0);
        return a;
}

/* Waits for the script to finish; the clerk must have made every scripted call. */
static void fake_finish(Fake *f) {
        if (f->started) {
                /* Unblocks accept() when the script expected more calls than came. */
                shutdown(f->listen_fd, SHUT_RDWR);
                ck_assert_int_eq(pthread_join(f->thread, NULL), 0);
        }
        close(f->listen_fd);
}

static void fake_done(Fake *f) {
        for (size_t i = 0; i < MAX_STEPS; i++)
                free(f->requests[i]);
        free(f->path);
}

static mrkv_clerk *clerk_for(const Fake *f) {
        char *a = fake_address(f);
        mrkv_clerk *c = test_clerk_new(a, false);

        free(a);
        /* Short, so that HOLD steps cost little. */
        ck_assert_int_eq(mrkv_clerk_set_attempt_timeout(c, 100 * USEC_PER_MSEC), 0);
        ck_assert_int_eq(mrkv_clerk_set_retry_pause(c, USEC_PER_MSEC), 0);
        return c;
}

#define ERROR_VERSION "{\"error\":\"org.mrkv.KV.VersionMismatch\",\"parameters\":{}}"
#define ERROR_NO_KEY "{\"error\":\"org.mrkv.KV.NoKey\",\"parameters\":{}}"
#define ERROR_STORAGE "{\"error\":\"org.mrkv.KV.StorageError\",\"parameters\":{\"reason\":\"No space left on device\"}}"
#define REPLY_EMPTY "{\"parameters\":{}}"

START_TEST(test_put_request_format) {
        static const Step steps[] = { { REPLY, REPLY_EMPTY } };
        json_object *m, *p, *v;
        mrkv_clerk *c;
        Fake f;

        fake_bind(&f, steps, N_STEPS(steps));
        fake_start(&f);
        c = clerk_for(&f);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "v \"quoted\"\n", UINT64_C(18446744073709551615)), MRKV_OK);
        mrkv_clerk_free(c);
        fake_finish(&f);

        m = json_tokener_parse(f.requests[0]);
        ck_assert_ptr_nonnull(m);
        ck_assert(json_object_object_get_ex(m, "method", &v));
        ck_assert_str_eq(json_object_get_string(v), "org.mrkv.KV.Put");
        ck_assert(json_object_object_get_ex(m, "parameters", &p));
        ck_assert(json_object_object_get_ex(p, "key", &v));
        ck_assert_str_eq(json_object_get_string(v), "k");
        ck_assert(json_object_object_get_ex(p, "value", &v));
        ck_assert_str_eq(json_object_get_string(v), "v \"quoted\"\n");
        ck_assert(json_object_object_get_ex(p, "version", &v));
        /* The full uint64 range, not truncated to int64. */
        ck_assert_uint_eq(json_object_get_uint64(v), UINT64_MAX);
        json_object_put(m);
        fake_done(&f);
}
END_TEST

/* The heart of ErrMaybe: the first Put was read (and, for all we know, applied) but its
 * reply lost; the resend meets VersionMismatch. */
START_TEST(test_put_maybe_after_lost_reply) {
        static const Step steps[] = { { CLOSE }, { REPLY, ERROR_VERSION } };
        mrkv_clerk *c;
        Fake f;

        fake_bind(&f, steps, N_STEPS(steps));
        fake_start(&f);
        c = clerk_for(&f);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "v", 3), MRKV_ERR_MAYBE);
        ck_assert_uint_eq(mrkv_clerk_get_resends(c), 1);
        mrkv_clerk_free(c);
        fake_finish(&f);

        /* Resent with the same arguments, on a new connection. */
        ck_assert_str_eq(f.requests[0], f.requests[1]);
        ck_assert_uint_eq(atomic_load(&f.n_connections), 2);
        fake_done(&f);
}
END_TEST

START_TEST(test_put_version_on_first_attempt) {
        static const Step steps[] = { { REPLY, ERROR_VERSION } };
        mrkv_clerk *c;
        Fake f;

        fake_bind(&f, steps, N_STEPS(steps));
        fake_start(&f);
        c = clerk_for(&f);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "v", 3), MRKV_ERR_VERSION);
        ck_assert_uint_eq(mrkv_clerk_get_resends(c), 0);
        mrkv_clerk_free(c);
        fake_finish(&f);
        fake_done(&f);
}
END_TEST

/* StorageError is "not applied", on the first attempt and after a lost reply alike (the
 * server answers it only to a Put whose version still matches): never ErrMaybe. */
START_TEST(test_put_storage_error) {
        static const Step steps[] = { { REPLY, ERROR_STORAGE }, { CLOSE }, { REPLY, ERROR_STORAGE } };
        mrkv_clerk *c;
        Fake f;

        fake_bind(&f, steps, N_STEPS(steps));
        fake_start(&f);
        c = clerk_for(&f);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "v", 3), MRKV_ERR_STORAGE);
        ck_assert_uint_eq(mrkv_clerk_get_resends(c), 0);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "v", 3), MRKV_ERR_STORAGE);
        ck_assert_uint_eq(mrkv_clerk_get_resends(c), 1);
        mrkv_clerk_free(c);
        fake_finish(&f);
        fake_done(&f);
        ck_assert_str_eq(mrkv_result_to_string(MRKV_ERR_STORAGE), "storage-error");
}
END_TEST

/* A lost reply followed by success or NoKey is unambiguous. */
START_TEST(test_put_resent_ok_and_nokey) {
        static const Step steps[] = {
                { CLOSE }, { REPLY, REPLY_EMPTY },
                { CLOSE }, { REPLY, ERROR_NO_KEY },
        };
        mrkv_clerk *c;
        Fake f;

        fake_bind(&f, steps, N_STEPS(steps));
        fake_start(&f);
        c = clerk_for(&f);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "v", 0), MRKV_OK);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "v", 5), MRKV_ERR_NO_KEY);
        mrkv_clerk_free(c);
        fake_finish(&f);
        fake_done(&f);
}
END_TEST

#define ERROR_NO_LEASE "{\"error\":\"org.mrkv.KV.NoLease\",\"parameters\":{}}"

/* Delete is ambiguous as Put is: after a lost reply, VersionMismatch and NoKey (our own
 * first attempt may have deleted it) are both "maybe"; on the first attempt they are not. */
START_TEST(test_delete_maybe) {
        static const Step steps[] = {
                { CLOSE }, { REPLY, ERROR_VERSION },
                { CLOSE }, { REPLY, ERROR_NO_KEY },
                { REPLY, ERROR_NO_KEY },
                { REPLY, ERROR_VERSION },
                { CLOSE }, { REPLY, REPLY_EMPTY },
        };
        json_object *m, *p, *v;
        mrkv_clerk *c;
        Fake f;

        fake_bind(&f, steps, N_STEPS(steps));
        fake_start(&f);
        c = clerk_for(&f);
        ck_assert_int_eq(mrkv_clerk_delete(c, "k", 3), MRKV_ERR_MAYBE);
        ck_assert_int_eq(mrkv_clerk_delete(c, "k", 3), MRKV_ERR_MAYBE);
        ck_assert_int_eq(mrkv_clerk_delete(c, "k", 3), MRKV_ERR_NO_KEY);
        ck_assert_int_eq(mrkv_clerk_delete(c, "k", 3), MRKV_ERR_VERSION);
        ck_assert_int_eq(mrkv_clerk_delete(c, "k", 3), MRKV_OK);
        mrkv_clerk_free(c);
        fake_finish(&f);

        m = json_tokener_parse(f.requests[0]);
        ck_assert(json_object_object_get_ex(m, "method", &v));
        ck_assert_str_eq(json_object_get_string(v), "org.mrkv.KV.Delete");
        ck_assert(json_object_object_get_ex(m, "parameters", &p));
        ck_assert(json_object_object_get_ex(p, "version", &v));
        ck_assert_uint_eq(json_object_get_uint64(v), 3);
        ck_assert(!json_object_object_get_ex(p, "value", NULL));
        json_object_put(m);
        fake_done(&f);
}
END_TEST

/* A Put with a lease names it; one without names none (the call it always was). NoLease
 * after a lost reply is "maybe": the lease may have ended after our Put was applied. */
START_TEST(test_put_with_lease) {
        static const Step steps[] = {
                { REPLY, REPLY_EMPTY },
                { REPLY, ERROR_NO_LEASE },
                { CLOSE }, { REPLY, ERROR_NO_LEASE },
        };
        json_object *m, *p, *v;
        mrkv_clerk *c;
        Fake f;

        fake_bind(&f, steps, N_STEPS(steps));
        fake_start(&f);
        c = clerk_for(&f);
        ck_assert_int_eq(mrkv_clerk_put_with_lease(c, "k", "v", 0, 42), MRKV_OK);
        ck_assert_int_eq(mrkv_clerk_put_with_lease(c, "k", "v", 0, 0), MRKV_ERR_NO_LEASE);
        ck_assert_int_eq(mrkv_clerk_put_with_lease(c, "k", "v", 0, 7), MRKV_ERR_MAYBE);
        mrkv_clerk_free(c);
        fake_finish(&f);

        m = json_tokener_parse(f.requests[0]);
        ck_assert(json_object_object_get_ex(m, "parameters", &p));
        ck_assert(json_object_object_get_ex(p, "lease", &v));
        ck_assert_uint_eq(json_object_get_uint64(v), 42);
        json_object_put(m);
        m = json_tokener_parse(f.requests[1]);
        ck_assert(json_object_object_get_ex(m, "parameters", &p));
        ck_assert(!json_object_object_get_ex(p, "lease", NULL));
        json_object_put(m);
        fake_done(&f);
        ck_assert_str_eq(mrkv_result_to_string(MRKV_ERR_NO_LEASE), "no-lease");
}
END_TEST

/* A call answered after its attempt timed out: the clerk has moved to a new
 * connection and must take the answer from there, never the stale one. */
START_TEST(test_late_reply_is_ignored) {
        static const Step steps[] = {
                { HOLD },
                { STALE_REPLY, "{\"parameters\":{\"value\":\"fresh\",\"version\":2}}",
                  "{\"parameters\":{\"value\":\"stale\",\"version\":1}}" },
                { REPLY, "{\"parameters\":{\"value\":\"next\",\"version\":3}}" },
        };
        char *value = NULL;
        uint64_t version = 0;
        mrkv_clerk *c;
        Fake f;

        fake_bind(&f, steps, N_STEPS(steps));
        fake_start(&f);
        c = clerk_for(&f);
        ck_assert_int_eq(mrkv_clerk_get(c, "k", &value, &version), MRKV_OK);
        ck_assert_str_eq(value, "fresh");
        ck_assert_uint_eq(version, 2);
        free(value);
        /* The next call stays on the good connection and gets its own reply. */
        ck_assert_int_eq(mrkv_clerk_get(c, "k", &value, &version), MRKV_OK);
        ck_assert_str_eq(value, "next");
        ck_assert_uint_eq(version, 3);
        free(value);
        mrkv_clerk_free(c);
        fake_finish(&f);
        ck_assert_uint_eq(atomic_load(&f.n_connections), 2);
        fake_done(&f);
}
END_TEST

/* Get changes nothing, so a resent Get never reports "maybe". */
START_TEST(test_get_resent_nokey) {
        static const Step steps[] = { { CLOSE }, { REPLY, ERROR_NO_KEY } };
        mrkv_clerk *c;
        Fake f;

        fake_bind(&f, steps, N_STEPS(steps));
        fake_start(&f);
        c = clerk_for(&f);
        ck_assert_int_eq(mrkv_clerk_get(c, "k", NULL, NULL), MRKV_ERR_NO_KEY);
        mrkv_clerk_free(c);
        fake_finish(&f);
        fake_done(&f);
}
END_TEST

static bool fake_closed_one(void *userdata) {
        Fake *f = userdata;

        return atomic_load(&f->n_closed) >= 1;
}

/* The server closed the idle connection; the next call writes into it. Without
 * MSG_NOSIGNAL, SIGPIPE (default action: terminate) would kill this test. */
START_TEST(test_closed_idle_connection_no_sigpipe) {
        static const Step steps[] = {
                { REPLY_AND_CLOSE, REPLY_EMPTY },
                { REPLY, REPLY_EMPTY },
        };
        mrkv_clerk *c;
        Fake f;

        ck_assert(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
        fake_bind(&f, steps, N_STEPS(steps));
        fake_start(&f);
        c = clerk_for(&f);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "1", 0), MRKV_OK);

        ck_assert_msg(test_wait_until(TEST_TIMEOUT_USEC, fake_closed_one, &f), "the fake server closed no connection");

        ck_assert_int_eq(mrkv_clerk_put(c, "k", "2", 1), MRKV_OK);
        mrkv_clerk_free(c);
        fake_finish(&f);
        ck_assert_uint_eq(atomic_load(&f.n_connections), 2);
        fake_done(&f);
}
END_TEST

typedef struct GetCall {
        mrkv_clerk *clerk;
        int r;
        char *value;
} GetCall;

static bool refused_twice(void *userdata) {
        return mrkv_clerk_get_resends(userdata) >= 2;
}

static void *get_thread(void *userdata) {
        GetCall *g = userdata;

        g->r = mrkv_clerk_get(g->clerk, "k", &g->value, NULL);
        return NULL;
}

/* The server is not listening yet (refused) and comes up later: the clerk keeps trying. */
START_TEST(test_server_comes_up_later) {
        static const Step steps[] = { { REPLY, "{\"parameters\":{\"value\":\"up\",\"version\":1}}" } };
        GetCall g = {};
        pthread_t t;
        Fake f;

        fake_bind(&f, steps, N_STEPS(steps));
        g.clerk = clerk_for(&f);
        ck_assert_int_eq(pthread_create(&t, NULL, get_thread, &g), 0);

        /* Start serving only once the clerk has been refused twice. */
        ck_assert_msg(test_wait_until(TEST_TIMEOUT_USEC, refused_twice, g.clerk), "the clerk did not try twice");
        fake_start(&f);

        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_eq(g.r, MRKV_OK);
        ck_assert_str_eq(g.value, "up");
        free(g.value);
        mrkv_clerk_free(g.clerk);
        fake_finish(&f);
        fake_done(&f);
}
END_TEST

START_TEST(test_deadline) {
        static const Step steps[] = { { HOLD } };
        mrkv_clerk *c;
        Fake f;

        /* Nobody listening at all, then a server that never answers. */
        fake_bind(&f, steps, N_STEPS(steps));
        c = clerk_for(&f);
        ck_assert_int_eq(mrkv_clerk_set_deadline(c, 300 * USEC_PER_MSEC), 0);
        ck_assert_int_eq(mrkv_clerk_get(c, "k", NULL, NULL), -ETIMEDOUT);
        ck_assert_uint_gt(mrkv_clerk_get_resends(c), 0);

        fake_start(&f);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "v", 0), -ETIMEDOUT);
        mrkv_clerk_free(c);
        fake_finish(&f);
        fake_done(&f);
}
END_TEST

/* Answers that resending cannot change are returned at once, not retried. */
START_TEST(test_bad_replies) {
        static const Step steps[] = {
                { REPLY, "this is not json" },
                { REPLY, "{\"parameters\":{\"value\":\"no version\"}}" },
                { REPLY, "{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"key\"}}" },
                { REPLY, "{\"error\":\"org.example.Strange\",\"parameters\":{}}" },
                { REPLY, "{\"error\":\"org.varlink.service.MethodNotFound\",\"parameters\":{}}" },
        };
        mrkv_clerk *c;
        Fake f;

        fake_bind(&f, steps, N_STEPS(steps));
        fake_start(&f);
        c = clerk_for(&f);
        ck_assert_int_eq(mrkv_clerk_get(c, "k", NULL, NULL), -EBADMSG);
        ck_assert_int_eq(mrkv_clerk_get(c, "k", NULL, NULL), -EBADMSG);
        ck_assert_int_eq(mrkv_clerk_put(c, "", "v", 0), -EINVAL);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", "v", 0), -EPROTO);
        ck_assert_int_eq(mrkv_clerk_get(c, "k", NULL, NULL), -EOPNOTSUPP);
        ck_assert_uint_eq(mrkv_clerk_get_resends(c), 0);
        mrkv_clerk_free(c);
        fake_finish(&f);
        fake_done(&f);
}
END_TEST

START_TEST(test_bad_arguments) {
        mrkv_clerk *c = NULL;

        ck_assert_int_eq(mrkv_clerk_new("unix:/nonexistent/kv.sock", NULL), -EINVAL);
        ck_assert_int_lt(mrkv_clerk_new("carrier-pigeon:home", &c), 0);
        ck_assert_ptr_null(c);
        ck_assert_ptr_null(mrkv_clerk_free(NULL));

        ck_assert_int_eq(mrkv_clerk_new("unix:/nonexistent/kv.sock", &c), 0);
        ck_assert_str_eq(mrkv_clerk_get_address(c), "unix:/nonexistent/kv.sock");
        ck_assert_int_eq(mrkv_clerk_get(c, NULL, NULL, NULL), -EINVAL);
        ck_assert_int_eq(mrkv_clerk_put(c, "k", NULL, 0), -EINVAL);
        ck_assert_int_eq(mrkv_clerk_put(NULL, "k", "v", 0), -EINVAL);
        ck_assert_int_eq(mrkv_clerk_set_attempt_timeout(c, 0), -EINVAL);
        ck_assert_ptr_null(mrkv_clerk_free(c));

        ck_assert_str_eq(mrkv_result_to_string(MRKV_ERR_MAYBE), "maybe");
        ck_assert_str_eq(mrkv_result_to_string(-ETIMEDOUT), strerror(ETIMEDOUT));
}
END_TEST

START_TEST(test_default_address) {
        mrkv_clerk *c = NULL;

        ck_assert_int_eq(setenv("MRKV_KV_ADDRESS", "unix:/somewhere/else.sock", 1), 0);
        ck_assert_int_eq(mrkv_clerk_new(NULL, &c), 0);
        ck_assert_str_eq(mrkv_clerk_get_address(c), "unix:/somewhere/else.sock");
        mrkv_clerk_free(c);

        ck_assert_int_eq(unsetenv("MRKV_KV_ADDRESS"), 0);
        ck_assert_int_eq(setenv("RUNTIME_DIRECTORY", "/run/test-mrkv", 1), 0);
        ck_assert_int_eq(mrkv_clerk_new(NULL, &c), 0);
        ck_assert_str_eq(mrkv_clerk_get_address(c), "unix:/run/test-mrkv/kv.sock");
        mrkv_clerk_free(c);
}
END_TEST

int main(void) {
        Suite *s = suite_create("clerk");
        TCase *tc = tcase_create("fake-server");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_put_request_format);
        tcase_add_test(tc, test_put_maybe_after_lost_reply);
        tcase_add_test(tc, test_put_version_on_first_attempt);
        tcase_add_test(tc, test_put_storage_error);
        tcase_add_test(tc, test_put_resent_ok_and_nokey);
        tcase_add_test(tc, test_delete_maybe);
        tcase_add_test(tc, test_put_with_lease);
        tcase_add_test(tc, test_late_reply_is_ignored);
        tcase_add_test(tc, test_get_resent_nokey);
        tcase_add_test(tc, test_closed_idle_connection_no_sigpipe);
        tcase_add_test(tc, test_server_comes_up_later);
        tcase_add_test(tc, test_deadline);
        tcase_add_test(tc, test_bad_replies);
        tcase_add_test(tc, test_bad_arguments);
        tcase_add_test(tc, test_default_address);
        suite_add_tcase(s, tc);

        return test_run_suite(s);
}
