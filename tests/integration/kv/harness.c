/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "harness.h"

#define BASE_ENV "MRKV_TEST_BASE_DIR"
#define POLL_INTERVAL_USEC (10 * TEST_USEC_PER_MSEC)

uint64_t test_now_usec(void) {
        struct timespec ts;

        ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (uint64_t) ts.tv_sec * TEST_USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

int64_t test_now_ns(void) {
        struct timespec ts;

        ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The poll interval of the waiting loops below; each has a deadline. */
static void poll_pause(void) {
        struct timespec ts = { .tv_nsec = (long) (POLL_INTERVAL_USEC * 1000) };

        nanosleep(&ts, NULL);
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) st, (void) type, (void) ftw;
        (void) remove(path);
        return 0;
}

int harness_run(Suite *s) {
        char base[] = "/tmp/mrkv-kv-test.XXXXXX";
        const char *tmp = getenv("TMPDIR");
        char *dir = NULL;
        SRunner *sr;
        int failed;

        if (tmp && tmp[0] == '/') {
                if (asprintf(&dir, "%s/mrkv-kv-test.XXXXXX", tmp) < 0)
                        return 99;
        } else
                dir = strdup(base);
        if (!dir || !mkdtemp(dir)) {
                perror("mkdtemp");
                return 99;
        }
        setenv(BASE_ENV, dir, 1);

        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);

        /* Tests run in forked children; whatever they left, also after a crash, goes here.
         * MRKV_TEST_KEEP=1 keeps it, histories included, for a post-mortem. */
        if (getenv("MRKV_TEST_KEEP"))
                fprintf(stderr, "Keeping %s\n", dir);
        else
                nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(dir);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

char *test_dir_new(void) {
        const char *base = getenv(BASE_ENV);
        char *dir = NULL;

        ck_assert_ptr_nonnull(base);
        ck_assert_int_ge(asprintf(&dir, "%s/t.XXXXXX", base), 0);
        ck_assert_msg(mkdtemp(dir), "mkdtemp(%s): %s", dir, strerror(errno));
        return dir;
}

const char *test_program(const char *env) {
        const char *p = getenv(env);

        ck_assert_msg(p && p[0], "$%s is not set; run this test through meson test", env);
        return p;
}

pid_t test_spawn(char *const argv[], int stdout_fd) {
        pid_t parent = getpid(), pid;

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                sigset_t all;

                /* Die with the test, even when it fails or crashes before its cleanup. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                        _exit(EXIT_FAILURE);
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                signal(SIGPIPE, SIG_DFL);
                if (stdout_fd >= 0 && dup2(stdout_fd, STDOUT_FILENO) < 0)
                        _exit(EXIT_FAILURE);
                execv(argv[0], argv);
                fprintf(stderr, "execv(%s): %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        return pid;
}

int test_kill(pid_t *pid) {
        uint64_t deadline;
        int status = 0;

        if (*pid <= 0)
                return 0;

        (void) kill(*pid, SIGTERM);
        deadline = test_now_usec() + 10 * TEST_USEC_PER_SEC;
        for (;;) {
                pid_t r = waitpid(*pid, &status, WNOHANG);
                if (r == *pid || (r < 0 && errno != EINTR))
                        break;
                if (test_now_usec() >= deadline) {
                        (void) kill(*pid, SIGKILL);
                        (void) waitpid(*pid, &status, 0);
                        break;
                }
                poll_pause();
        }
        *pid = 0;
        return status;
}

int test_run(char *const argv[], char **ret_stdout) {
        int fds[2], status;
        char *out = NULL;
        size_t size = 0;
        FILE *f;
        pid_t pid;

        ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
        pid = test_spawn(argv, fds[1]);
        close(fds[1]);

        f = open_memstream(&out, &size);
        ck_assert_ptr_nonnull(f);
        for (;;) {
                char buf[4096];
                ssize_t n = read(fds[0], buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                fwrite(buf, 1, (size_t) n, f);
        }
        close(fds[0]);
        fclose(f);

        while (waitpid(pid, &status, 0) < 0)
                ck_assert_int_eq(errno, EINTR);

        if (ret_stdout)
                *ret_stdout = out;
        else
                free(out);
        return status;
}

static bool socket_accepts(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;
        bool ok;

        ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ok = connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0;
        close(fd);
        return ok;
}

void test_wait_for_socket(const char *path, pid_t pid) {
        uint64_t deadline = test_now_usec() + TEST_START_TIMEOUT_USEC;

        for (;;) {
                int status;

                if (socket_accepts(path))
                        return;
                ck_assert_msg(waitpid(pid, &status, WNOHANG) == 0, "pid %d exited before listening on %s (status %#x)",
                              (int) pid, path, status);
                ck_assert_msg(test_now_usec() < deadline, "nothing listens on %s after %" PRIu64 " s", path,
                              TEST_START_TIMEOUT_USEC / TEST_USEC_PER_SEC);
                poll_pause();
        }
}

void test_server_start(const char *dir, TestServer *ret) {
        char *argv[4];

        *ret = (TestServer) {};
        ck_assert_int_ge(asprintf(&ret->path, "%s/kv.sock", dir), 0);
        ck_assert_int_ge(asprintf(&ret->address, "unix:%s", ret->path), 0);

        argv[0] = (char *) test_program("MRKV_TEST_KVSERVER");
        argv[1] = (char *) "--listen";
        argv[2] = ret->address;
        argv[3] = NULL;
        ret->pid = test_spawn(argv, -1);
        test_wait_for_socket(ret->path, ret->pid);
}

void test_server_stop(TestServer *s) {
        int status = test_kill(&s->pid);

        free(s->address);
        free(s->path);
        *s = (TestServer) {};
        /* The server must survive everything the tests do and exit cleanly on SIGTERM. */
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "mrkv-kvserver ended with status %#x", status);
}

uint64_t test_server_rss(const TestServer *s) {
        char path[64], line[256];
        uint64_t kb = 0;
        bool found = false;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) s->pid);
        f = fopen(path, "re");
        ck_assert_msg(f, "%s: %s", path, strerror(errno));
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %" SCNu64 " kB", &kb) == 1) {
                        found = true;
                        break;
                }
        fclose(f);
        ck_assert_msg(found, "no VmRSS in %s", path);
        return kb * 1024;
}

void test_proxy_start(const char *dir, const char *target, uint64_t seed, TestProxy *ret) {
        char *path = NULL, *ready = NULL, *seed_s = NULL;
        uint64_t deadline;

        /* Fixed seeds make failures reproducible; MRKV_TEST_SEED explores others. */
        if (getenv("MRKV_TEST_SEED"))
                seed += strtoull(getenv("MRKV_TEST_SEED"), NULL, 10);

        *ret = (TestProxy) {};
        ck_assert_int_ge(asprintf(&path, "%s/proxy.sock", dir), 0);
        ck_assert_int_ge(asprintf(&ready, "%s/proxy.ready", dir), 0);
        ck_assert_int_ge(asprintf(&ret->address, "unix:%s", path), 0);
        ck_assert_int_ge(asprintf(&seed_s, "%" PRIu64, seed), 0);

        char *argv[] = {
                (char *) test_program("MRKV_TEST_FAULTPROXY"),
                (char *) "--listen", ret->address,
                (char *) "--connect", (char *) target,
                (char *) "--seed", seed_s,
                (char *) "--ready-file", ready,
                NULL,
        };
        ret->pid = test_spawn(argv, -1);

        deadline = test_now_usec() + TEST_START_TIMEOUT_USEC;
        for (;;) {
                int status;

                if (access(ready, F_OK) == 0)
                        break;
                ck_assert_msg(waitpid(ret->pid, &status, WNOHANG) == 0, "mrkv-faultproxy exited (status %#x)",
                              status);
                ck_assert_msg(test_now_usec() < deadline, "mrkv-faultproxy did not write %s", ready);
                poll_pause();
        }
        ck_assert(socket_accepts(path));

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
                ck_assert_int_eq(mrkv_clerk_set_attempt_timeout(c, 100 * TEST_USEC_PER_MSEC), 0);
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

        call = test_now_ns();
        r = mrkv_clerk_get(c, key, &value, &version);
        ret = test_now_ns();

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

        call = test_now_ns();
        r = mrkv_clerk_put(c, key, value, version);
        ret = test_now_ns();

        if (r >= 0 || r == -ETIMEDOUT) {
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

static const char *result_name(int r) {
        switch (r) {
        case MRKV_OK:
                return "ok";
        case MRKV_ERR_NO_KEY:
                return "nokey";
        case MRKV_ERR_VERSION:
                return "version";
        case MRKV_ERR_MAYBE:
                return "maybe";
        default:
                ck_abort_msg("unexpected result %d", r);
                return NULL;
        }
}

void test_history_write(TestHistory *hs, size_t n, const char *path) {
        FILE *f = fopen(path, "we");

        ck_assert_msg(f, "%s: %s", path, strerror(errno));
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < hs[i].n; j++) {
                        const TestOp *op = &hs[i].ops[j];
                        json_object *o = json_object_new_object();

                        ck_assert_ptr_nonnull(o);
                        json_object_object_add(o, "client", json_object_new_int(op->client));
                        json_object_object_add(o, "op", json_object_new_string(op->put ? "put" : "get"));
                        json_object_object_add(o, "key", json_object_new_string(op->key));
                        if (op->put) {
                                json_object_object_add(o, "value", json_object_new_string(op->value));
                                json_object_object_add(o, "version", json_object_new_uint64(op->version));
                        }
                        json_object_object_add(o, "call", json_object_new_int64(op->call));
                        json_object_object_add(o, "return", op->ret >= 0 ? json_object_new_int64(op->ret) : NULL);
                        json_object_object_add(o, "result", json_object_new_string(result_name(op->result)));
                        if (op->out_value) {
                                json_object_object_add(o, "out_value", json_object_new_string(op->out_value));
                                json_object_object_add(o, "out_version", json_object_new_uint64(op->out_version));
                        }
                        ck_assert_int_ge(fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)),
                                         0);
                        json_object_put(o);
                }
        ck_assert_int_eq(fclose(f), 0);
}

void test_assert_linearizable(const char *path) {
        char *argv[] = {
                (char *) test_program("MRKV_TEST_LINCHECK"),
                (char *) "--timeout", (char *) "60",
                (char *) path,
                NULL,
        };
        char *out = NULL;
        int status = test_run(argv, &out);

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
