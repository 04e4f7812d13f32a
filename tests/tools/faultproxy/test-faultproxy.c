/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkv-faultproxy between real clients and a real Varlink echo server, each in its own
 * process, on real sockets in a temporary directory. */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <systemd/sd-event.h>

#include "address.h"
#include "macro.h"
#include "varlink-client.h"
#include "varlink-server.h"

#define MSEC USEC_PER_MSEC
#define SEC USEC_PER_SEC
/* For what must happen: generous, as sanitizers and a loaded machine are slow. */
#define PATIENCE (20 * SEC)
/* How long a call waits before we call its reply missing. The proxies here forward
 * without delay, so only a dropped message takes this long. */
#define DROP_TIMEOUT (200 * MSEC)

#define ECHO_METHOD "org.mrkv.test.Echo.Echo"
#define COUNT_METHOD "org.mrkv.test.Echo.Count"

static const char *proxy_path; /* $MRKV_FAULTPROXY */
static char *base_dir;         /* made and removed by main(), so a killed test leaves nothing either */
static char *test_dir;         /* this test's, inside base_dir */
static char *server_address;

/* Every process a test starts, stopped by the atexit handler when a failed assertion
 * ends the test early. */
typedef struct Child {
        pid_t pid;
        char *log; /* its stderr, shown when the test did not stop it itself */
} Child;
static Child children[8];

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * SEC + (uint64_t) ts.tv_nsec / 1000;
}

static void pause_briefly(void) {
        (void) poll(NULL, 0, 10);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

static void rm_rf(const char *path) {
        (void) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void dump_log(const char *path);

static int dump_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        size_t n = strlen(path);
        if (flag == FTW_F && n > 4 && streq(path + n - 4, ".log"))
                dump_log(path);
        return 0;
}

static char *read_file(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char *s = NULL;
        size_t n = 0;

        if (!f)
                return NULL;
        if (getdelim(&s, &n, '\0', f) < 0) {
                free(s);
                return strdup("");
        }
        return s;
}

static void dump_log(const char *path) {
        _cleanup_free_ char *s = read_file(path);
        fprintf(stderr, "----- %s -----\n%s----- end -----\n", path, s ?: "(missing)\n");
}

/* When a test ends early, Check's forked test process exits without atexit handlers; its
 * children then die of PR_SET_PDEATHSIG and main() removes the directories. This covers
 * the other ways out (CK_FORK=no, exit()). */
static void cleanup_at_exit(void) {
        for (size_t i = 0; i < ELEMENTSOF(children); i++) {
                if (children[i].pid <= 0)
                        continue;
                kill(children[i].pid, SIGKILL);
                (void) waitpid(children[i].pid, NULL, 0);
                children[i].pid = 0;
        }
        if (test_dir)
                rm_rf(test_dir);
}

/* Runs in every test's process before the test. */
static void setup(void) {
        static bool registered = false;

        if (!registered) {
                ck_assert_int_eq(atexit(cleanup_at_exit), 0);
                registered = true;
        }
        ck_assert_int_gt(asprintf(&test_dir, "%s/t-XXXXXX", base_dir), 0);
        ck_assert_ptr_nonnull(mkdtemp(test_dir));
}

static char *path_in_test_dir(const char *name) {
        char *s;
        ck_assert_int_gt(asprintf(&s, "%s/%s", test_dir, name), 0);
        return s;
}

static Child *child_slot(void) {
        for (size_t i = 0; i < ELEMENTSOF(children); i++)
                if (children[i].pid <= 0) {
                        free(children[i].log);
                        children[i] = (Child) {};
                        return &children[i];
                }
        ck_abort_msg("Too many child processes.");
        return NULL;
}

/* In a new child: die with the test process, even when it is killed and runs no cleanup. */
static void child_init(pid_t parent) {
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(EXIT_FAILURE);
}

/* Waits for the child to exit and returns its wait status. */
static int child_wait(Child *c) {
        uint64_t deadline = now_usec() + PATIENCE;
        int status;

        for (;;) {
                pid_t r = waitpid(c->pid, &status, WNOHANG);
                ck_assert_int_ge(r, 0);
                if (r == c->pid)
                        break;
                ck_assert_msg(now_usec() < deadline, "Process %d did not exit.", (int) c->pid);
                pause_briefly();
        }
        c->pid = 0;
        return status;
}

/* ---- the echo server ---- */

static const char echo_interface[] =
        "interface org.mrkv.test.Echo\n"
        "\n"
        "# Answers with the parameters it was called with.\n"
        "method Echo(seq: int, data: ?string) -> (seq: int, data: ?string)\n"
        "\n"
        "# How many Echo calls arrived so far.\n"
        "method Count() -> (calls: int)\n";

static int64_t echo_calls;

static int method_echo(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        echo_calls++;
        return varlink_conn_reply(c, parameters ? json_object_get(parameters) : NULL);
}

static int method_count(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        return varlink_conn_replyb(c, "calls", json_object_new_int64(echo_calls), NULL);
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static _Noreturn void echo_server_main(int fd) {
        static const VarlinkServerInfo info = { .vendor = "mrkv", .product = "faultproxy test echo" };
        sd_event *event = NULL;
        VarlinkServer *s = NULL;
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_new(&event);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGTERM, on_sigterm, NULL);
        if (r >= 0)
                r = varlink_server_new(event, &info, NULL, &s);
        if (r >= 0)
                r = varlink_server_add_interface(s, echo_interface);
        if (r >= 0)
                r = varlink_server_bind(s, ECHO_METHOD, method_echo);
        if (r >= 0)
                r = varlink_server_bind(s, COUNT_METHOD, method_count);
        if (r >= 0)
                r = varlink_server_listen_fd(s, fd);
        if (r >= 0)
                r = sd_event_loop(event);
        if (r < 0)
                fprintf(stderr, "echo server: %s\n", strerror(-r));
        varlink_server_free(s);
        sd_event_unref(event);
        /* Not exit(): the test's atexit handlers belong to the test process. */
        _exit(r < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}

static Child *start_server(void) {
        _cleanup_free_ char *path = path_in_test_dir("server.sock");
        pid_t parent = getpid();
        Child *c = child_slot();
        Address a;
        int fd;

        free(server_address);
        ck_assert_int_gt(asprintf(&server_address, "unix:%s", path), 0);
        ck_assert_int_eq(address_parse(server_address, &a), 0);
        /* Listening before the fork: connections queue from now on, so no readiness wait. */
        fd = address_listen(&a);
        address_done(&a);
        ck_assert_int_ge(fd, 0);

        c->pid = fork();
        ck_assert_int_ge(c->pid, 0);
        if (c->pid == 0) {
                child_init(parent);
                echo_server_main(fd);
        }
        close(fd);
        return c;
}

/* ---- clients ---- */

/* One Echo call through address on *c, connecting first if *c is NULL. When no good reply
 * comes, the connection is dropped so that the next call opens a fresh one, as the clerk
 * does. Returns 0, -ETIMEDOUT (no reply), -ECONNRESET (closed), -EBADMSG (a wrong reply).
 * Asserts nothing, so threads can use it. */
static int echo(const char *address, VarlinkClient **c, int64_t seq, const char *data, uint64_t timeout) {
        _cleanup_json_ json_object *params = NULL, *reply = NULL;
        const char *error = NULL;
        json_object *v;
        int r;

        if (!*c) {
                r = varlink_client_connect(address, c);
                if (r < 0)
                        return r;
        }

        r = json_build_object(&params, "seq", json_object_new_int64(seq), NULL);
        if (r >= 0 && data)
                r = json_object_add(params, "data", json_object_new_string(data));
        if (r < 0)
                return r;

        r = varlink_client_call(*c, ECHO_METHOD, params, timeout, &reply, &error);
        if (r >= 0 && (error || !json_object_object_get_ex(reply, "seq", &v) || json_object_get_int64(v) != seq))
                r = -EBADMSG;
        if (r >= 0 && data &&
            (!json_object_object_get_ex(reply, "data", &v) || !json_object_is_type(v, json_type_string) ||
             !streq(json_object_get_string(v), data)))
                r = -EBADMSG;
        if (r < 0)
                *c = varlink_client_free(*c);
        return r;
}

static int64_t server_calls(void) {
        _cleanup_json_ json_object *reply = NULL;
        VarlinkClient *c = NULL;
        const char *error = NULL;
        json_object *v;
        int r;

        /* Straight to the server, not through the proxy. */
        r = varlink_client_connect(server_address, &c);
        ck_assert_msg(r >= 0, "Cannot connect to the echo server: %s", strerror(-r));
        r = varlink_client_call(c, COUNT_METHOD, NULL, PATIENCE, &reply, &error);
        varlink_client_free(c);
        ck_assert_msg(r >= 0, "Count failed: %s", strerror(-r));
        ck_assert_ptr_null(error);
        ck_assert(json_object_object_get_ex(reply, "calls", &v));
        return json_object_get_int64(v);
}

/* The server may still be on its way to a call we sent: wait for the count, then insist
 * on it exactly. */
static void assert_server_calls(int64_t want) {
        uint64_t deadline = now_usec() + PATIENCE;
        int64_t n;

        while ((n = server_calls()) < want && now_usec() < deadline)
                pause_briefly();
        ck_assert_int_eq(n, want);
}

/* ---- the proxy ---- */

typedef struct Proxy {
        Child *child;
        char *address; /* as it wrote to its ready file */
        char *ready_file;
        char *socket_path; /* for a unix: listener */
} Proxy;

typedef struct Counters {
        uint64_t requests_forwarded, requests_dropped, replies_forwarded, replies_dropped;
        uint64_t connections, upstream_failures, oversized;
        unsigned open;
} Counters;

/* Starts the proxy with the given options (NULL-terminated) and waits for its ready file. */
static void start_proxy_argv(Proxy *p, const char *listen, const char *connect, char *const extra[]) {
        const char *argv[32];
        size_t n = 0;
        pid_t parent = getpid();
        uint64_t deadline;

        *p = (Proxy) { .child = child_slot() };
        /* Fresh names for every start, so a stale file of an earlier run can never pass. */
        ck_assert_int_gt(asprintf(&p->ready_file, "%s/ready-XXXXXX", test_dir), 0);
        ck_assert_int_ge(close(mkstemp(p->ready_file)), 0);
        ck_assert_int_eq(unlink(p->ready_file), 0);
        ck_assert_int_gt(asprintf(&p->child->log, "%s.log", p->ready_file), 0);
        if (strncmp(listen, "unix:", 5) == 0)
                p->socket_path = strdup(listen + 5);

        argv[n++] = proxy_path;
        argv[n++] = "--listen";
        argv[n++] = listen;
        argv[n++] = "--connect";
        argv[n++] = connect;
        argv[n++] = "--ready-file";
        argv[n++] = p->ready_file;
        argv[n++] = "--log-level";
        argv[n++] = "debug";
        for (size_t i = 0; extra[i]; i++) {
                ck_assert_uint_lt(n, ELEMENTSOF(argv) - 1);
                argv[n++] = extra[i];
        }
        argv[n] = NULL;

        p->child->pid = fork();
        ck_assert_int_ge(p->child->pid, 0);
        if (p->child->pid == 0) {
                child_init(parent);
                int fd = open(p->child->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
                        _exit(127);
                execv(proxy_path, (char **) argv);
                _exit(127);
        }

        deadline = now_usec() + PATIENCE;
        while (access(p->ready_file, F_OK) < 0) {
                int status;
                if (waitpid(p->child->pid, &status, WNOHANG) == p->child->pid) {
                        dump_log(p->child->log);
                        p->child->pid = 0;
                        ck_abort_msg("The proxy exited before it was ready (status 0x%x).", (unsigned) status);
                }
                ck_assert_msg(now_usec() < deadline, "The proxy did not write its ready file.");
                pause_briefly();
        }

        p->address = read_file(p->ready_file);
        ck_assert_ptr_nonnull(p->address);
        ck_assert_msg(strlen(p->address) > 0 && p->address[strlen(p->address) - 1] == '\n',
                      "Ready file without a line: '%s'", p->address);
        p->address[strlen(p->address) - 1] = '\0';
}

#define start_proxy(p, listen, connect, ...) \
        start_proxy_argv(p, listen, connect, (char *const[]) { __VA_ARGS__, NULL })

static char *proxy_socket(const char *name) {
        _cleanup_free_ char *path = path_in_test_dir(name);
        char *s;
        ck_assert_int_gt(asprintf(&s, "unix:%s", path), 0);
        return s;
}

/* The lines of the proxy's log that report counters, and the last of them. */
static unsigned counter_lines(const Proxy *p, const char **ret_last, char **ret_log) {
        char *log = read_file(p->child->log), *last = NULL;
        unsigned n = 0;

        ck_assert_ptr_nonnull(log);
        for (char *s = strstr(log, "Counters: "); s; s = strstr(s + 1, "Counters: ")) {
                n++;
                last = s;
        }
        *ret_last = last;
        *ret_log = log;
        return n;
}

/* Asks the proxy for its counters with SIGUSR1 and reads the line it logs. */
static Counters proxy_counters(const Proxy *p) {
        _cleanup_free_ char *log = NULL;
        const char *last;
        unsigned before;
        uint64_t deadline = now_usec() + PATIENCE;
        Counters c = {};

        before = counter_lines(p, &last, &log);
        ck_assert_int_eq(kill(p->child->pid, SIGUSR1), 0);
        for (;;) {
                free(log);
                log = NULL;
                if (counter_lines(p, &last, &log) > before)
                        break;
                ck_assert_msg(now_usec() < deadline, "The proxy did not log its counters.");
                pause_briefly();
        }
        ck_assert_int_eq(sscanf(last,
                                "Counters: requests_forwarded=%" SCNu64 " requests_dropped=%" SCNu64
                                " replies_forwarded=%" SCNu64 " replies_dropped=%" SCNu64 " connections=%" SCNu64
                                " open=%u upstream_failures=%" SCNu64 " oversized=%" SCNu64,
                                &c.requests_forwarded, &c.requests_dropped, &c.replies_forwarded,
                                &c.replies_dropped, &c.connections, &c.open, &c.upstream_failures, &c.oversized),
                         8);
        return c;
}

/* Polls the counters until cond holds (a proxy may still be busy with what we sent). */
#define wait_counters(p, c, cond)                                                              \
        ({                                                                                     \
                uint64_t _deadline_ = now_usec() + PATIENCE;                                   \
                for (;;) {                                                                     \
                        c = proxy_counters(p);                                                 \
                        if ((cond) || now_usec() >= _deadline_)                                \
                                break;                                                         \
                        pause_briefly();                                                       \
                }                                                                              \
        })

/* Stops the proxy with sig, checks that it exited cleanly and removed its files. */
static void stop_proxy(Proxy *p, int sig) {
        _cleanup_free_ char *log = NULL;
        int status;

        ck_assert_int_eq(kill(p->child->pid, sig), 0);
        status = child_wait(p->child);
        log = read_file(p->child->log);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "The proxy failed (status 0x%x):\n%s",
                      (unsigned) status, log ?: "");
        ck_assert_ptr_nonnull(strstr(log, "Counters: ")); /* logged at exit */
        ck_assert_int_lt(access(p->ready_file, F_OK), 0);
        if (p->socket_path)
                ck_assert_int_lt(access(p->socket_path, F_OK), 0);

        free(p->address);
        free(p->ready_file);
        free(p->socket_path);
}

static void stop_server(Child *server) {
        int status;

        ck_assert_int_eq(kill(server->pid, SIGTERM), 0);
        status = child_wait(server);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- tests ---- */

START_TEST(test_forwards_everything_in_order) {
        _cleanup_free_ char *listen = proxy_socket("proxy.sock"), *big = NULL;
        VarlinkClient *c = NULL;
        Child *server = start_server();
        const size_t big_size = 4U * 1024U * 1024U;
        Counters counters;
        Proxy p;

        /* The default delays (0..27 ms) stay on: order must survive them. */
        start_proxy(&p, listen, server_address, "--drop-request", "0", "--drop-reply", "0");
        ck_assert_str_eq(p.address, listen);

        /* One call at a time. */
        for (int64_t i = 0; i < 20; i++)
                ck_assert_int_eq(echo(p.address, &c, i, "hello", PATIENCE), 0);

        /* A hundred calls in flight at once, each held back by its own random delay: any
         * overtaking would show as a reply out of order. */
        for (int64_t i = 0; i < 100; i++) {
                _cleanup_json_ json_object *params = NULL;

                ck_assert_int_eq(json_build_object(&params, "seq", json_object_new_int64(1000 + i), NULL),
                                 0);
                ck_assert_int_eq(varlink_client_send(c, ECHO_METHOD, params, 0, PATIENCE), 0);
        }
        for (int64_t i = 0; i < 100; i++) {
                _cleanup_json_ json_object *reply = NULL;
                const char *error = NULL;
                json_object *v;

                ck_assert_int_eq(varlink_client_read(c, PATIENCE, &reply, &error, NULL), 0);
                ck_assert_ptr_null(error);
                ck_assert(json_object_object_get_ex(reply, "seq", &v));
                ck_assert_int_eq(json_object_get_int64(v), 1000 + i);
        }

        /* Messages far larger than a socket buffer: partial reads and writes both ways. */
        big = malloc(big_size + 1);
        ck_assert_ptr_nonnull(big);
        for (size_t i = 0; i < big_size; i++)
                big[i] = (char) ('a' + i % 26);
        big[big_size] = '\0';
        for (int64_t i = 0; i < 3; i++)
                ck_assert_int_eq(echo(p.address, &c, 2000 + i, big, PATIENCE), 0);

        /* A oneway call: the server runs it and nobody waits for a reply. */
        {
                _cleanup_json_ json_object *params = NULL;

                ck_assert_int_eq(json_build_object(&params, "seq", json_object_new_int64(3000), NULL), 0);
                ck_assert_int_eq(varlink_client_send(c, ECHO_METHOD, params, VARLINK_CLIENT_ONEWAY, PATIENCE), 0);
        }
        assert_server_calls(20 + 100 + 3 + 1);
        /* The connection still works after it. */
        ck_assert_int_eq(echo(p.address, &c, 4000, NULL, PATIENCE), 0);
        c = varlink_client_free(c);

        wait_counters(&p, counters, counters.open == 0);
        ck_assert_uint_eq(counters.requests_forwarded, 125);
        ck_assert_uint_eq(counters.requests_dropped, 0);
        ck_assert_uint_eq(counters.replies_forwarded, 124);
        ck_assert_uint_eq(counters.replies_dropped, 0);
        ck_assert_uint_eq(counters.connections, 1);
        ck_assert_uint_eq(counters.open, 0);

        stop_proxy(&p, SIGTERM);
        stop_server(server);
}
END_TEST

START_TEST(test_drop_all_requests) {
        _cleanup_free_ char *listen = proxy_socket("proxy.sock");
        Child *server = start_server();
        Counters counters;
        Proxy p;

        start_proxy(&p, listen, server_address, "--drop-request", "100", "--drop-reply", "0", "--delay-max", "0");
        for (int64_t i = 0; i < 10; i++) {
                VarlinkClient *c = NULL; /* a fresh connection for each, as after a lost reply */
                ck_assert_int_eq(echo(p.address, &c, i, NULL, DROP_TIMEOUT), -ETIMEDOUT);
                ck_assert_ptr_null(c);
        }

        /* Forwarded calls would have arrived long before their callers gave up. */
        ck_assert_int_eq(server_calls(), 0);
        counters = proxy_counters(&p);
        ck_assert_uint_eq(counters.requests_dropped, 10);
        ck_assert_uint_eq(counters.requests_forwarded, 0);
        ck_assert_uint_eq(counters.replies_forwarded + counters.replies_dropped, 0);
        ck_assert_uint_eq(counters.connections, 10);

        stop_proxy(&p, SIGTERM);
        stop_server(server);
}
END_TEST

START_TEST(test_drop_all_replies) {
        _cleanup_free_ char *listen = proxy_socket("proxy.sock");
        Child *server = start_server();
        Counters counters;
        Proxy p;

        start_proxy(&p, listen, server_address, "--drop-request", "0", "--drop-reply", "100", "--delay-max", "0");
        for (int64_t i = 0; i < 10; i++) {
                VarlinkClient *c = NULL;
                ck_assert_int_eq(echo(p.address, &c, i, NULL, DROP_TIMEOUT), -ETIMEDOUT);
        }

        /* The server did run every call. */
        assert_server_calls(10);
        wait_counters(&p, counters, counters.replies_dropped >= 10);
        ck_assert_uint_eq(counters.requests_forwarded, 10);
        ck_assert_uint_eq(counters.requests_dropped, 0);
        ck_assert_uint_eq(counters.replies_dropped, 10);
        ck_assert_uint_eq(counters.replies_forwarded, 0);

        stop_proxy(&p, SIGTERM);
        stop_server(server);
}
END_TEST

typedef struct Caller {
        pthread_t thread;
        const char *address;
        int64_t first;
        unsigned n;
        uint64_t timeout;
        bool *answered; /* per call */
        unsigned n_answered, n_missing, n_failed;
        int error;
} Caller;

static void *caller_thread(void *userdata) {
        Caller *t = userdata;
        VarlinkClient *c = NULL;

        for (unsigned i = 0; i < t->n; i++) {
                int r = echo(t->address, &c, t->first + (int64_t) i, NULL, t->timeout);
                t->answered[i] = r == 0;
                if (r == 0)
                        t->n_answered++;
                else if (r == -ETIMEDOUT)
                        t->n_missing++;
                else {
                        t->n_failed++;
                        t->error = r;
                }
        }
        varlink_client_free(c);
        return NULL;
}

/* Makes n calls from n_threads callers (each on its own connection, a fresh one after
 * every missing reply) and returns how many were answered. */
static unsigned run_callers(const char *address, unsigned n_threads, unsigned n, uint64_t timeout,
                            bool answered[]) {
        Caller callers[8] = {};
        unsigned per = n / n_threads, total = 0;

        ck_assert_uint_le(n_threads, ELEMENTSOF(callers));
        ck_assert_uint_eq(per * n_threads, n);
        for (unsigned i = 0; i < n_threads; i++) {
                callers[i] = (Caller) {
                        .address = address,
                        .first = (int64_t) (i * per),
                        .n = per,
                        .timeout = timeout,
                        .answered = answered + i * per,
                };
                ck_assert_int_eq(pthread_create(&callers[i].thread, NULL, caller_thread, &callers[i]), 0);
        }
        for (unsigned i = 0; i < n_threads; i++) {
                ck_assert_int_eq(pthread_join(callers[i].thread, NULL), 0);
                ck_assert_msg(callers[i].n_failed == 0, "%u calls failed, e.g. with %s", callers[i].n_failed,
                              strerror(-callers[i].error));
                ck_assert_uint_eq(callers[i].n_answered + callers[i].n_missing, per);
                total += callers[i].n_answered;
        }
        return total;
}

START_TEST(test_drop_half_of_requests) {
        _cleanup_free_ char *listen = proxy_socket("proxy.sock");
        Child *server = start_server();
        const unsigned n = 400;
        bool answered[400];
        unsigned n_answered, n_missing;
        Counters counters;
        Proxy p;

        start_proxy(&p, listen, server_address, "--seed", "20240601", "--drop-request", "50", "--drop-reply", "0",
                    "--delay-max", "0");
        /* Four callers side by side, only to make the 200 or so time-outs pass faster. */
        n_answered = run_callers(p.address, 4, n, 100 * MSEC, answered);
        n_missing = n - n_answered;
        ck_assert_msg(n_missing >= n * 30 / 100 && n_missing <= n * 70 / 100, "%u of %u calls unanswered",
                      n_missing, n);

        /* Every call was either forwarded or dropped, and the server saw exactly the forwarded. */
        wait_counters(&p, counters, counters.requests_forwarded + counters.requests_dropped >= n);
        ck_assert_uint_eq(counters.requests_forwarded + counters.requests_dropped, n);
        ck_assert_uint_ge(counters.requests_dropped, n * 30 / 100);
        ck_assert_uint_le(counters.requests_dropped, n * 70 / 100);
        assert_server_calls((int64_t) counters.requests_forwarded);
        /* A reply can come too late for its caller, never without a call. */
        ck_assert_uint_le(n_answered, counters.requests_forwarded);
        ck_assert_uint_eq(counters.replies_dropped, 0);

        stop_proxy(&p, SIGTERM);
        stop_server(server);
}
END_TEST

START_TEST(test_seed_reproduces_faults) {
        _cleanup_free_ char *listen = proxy_socket("proxy.sock");
        Child *server = start_server();
        bool first[30], second[30];
        unsigned n_first = 0;

        /* One caller, so that connections and calls come in the same order both times. */
        for (unsigned run = 0; run < 2; run++) {
                Proxy p;
                start_proxy(&p, listen, server_address, "--seed", "77", "--drop-request", "50", "--drop-reply",
                            "0", "--delay-max", "0");
                unsigned k = run_callers(p.address, 1, 30, DROP_TIMEOUT, run == 0 ? first : second);
                if (run == 0)
                        n_first = k;
                stop_proxy(&p, SIGTERM);
        }
        ck_assert_mem_eq(first, second, sizeof(first));
        /* Not trivially equal: some calls got through and some did not. */
        ck_assert_uint_gt(n_first, 0);
        ck_assert_uint_lt(n_first, 30);
        stop_server(server);
}
END_TEST

START_TEST(test_tcp_listener) {
        VarlinkClient *c = NULL;
        Child *server = start_server();
        unsigned port = 0;
        Proxy p;

        /* Port 0: the kernel picks one and the ready file says which. */
        start_proxy(&p, "tcp:127.0.0.1:0", server_address, "--drop-request", "0", "--drop-reply", "0");
        ck_assert_int_eq(sscanf(p.address, "tcp:127.0.0.1:%u", &port), 1);
        ck_assert_uint_gt(port, 0);
        for (int64_t i = 0; i < 5; i++)
                ck_assert_int_eq(echo(p.address, &c, i, "over tcp", PATIENCE), 0);
        varlink_client_free(c);
        assert_server_calls(5);

        stop_proxy(&p, SIGINT);
        stop_server(server);
}
END_TEST

/* Reads from fd until end of stream or reset; returns what arrived. */
static size_t read_to_end(int fd, char *buf, size_t size) {
        uint64_t deadline = now_usec() + PATIENCE;
        size_t n = 0;

        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                ck_assert_msg(now_usec() < deadline, "The connection was not closed.");
                if (poll(&pfd, 1, 10) <= 0)
                        continue;
                ssize_t k = recv(fd, buf + n, size - n, MSG_DONTWAIT);
                if (k < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (k < 0) {
                        ck_assert_int_eq(errno, ECONNRESET);
                        return n;
                }
                if (k == 0)
                        return n;
                n += (size_t) k;
                ck_assert_uint_lt(n, size);
        }
}

static int raw_connect(const char *address) {
        Address a;
        int fd;

        ck_assert_int_eq(address_parse(address, &a), 0);
        fd = address_connect(&a, false);
        address_done(&a);
        ck_assert_int_ge(fd, 0);
        return fd;
}

START_TEST(test_half_close_delivers_the_reply) {
        _cleanup_free_ char *listen = proxy_socket("proxy.sock");
        static const char call[] = "{\"method\":\"" ECHO_METHOD "\",\"parameters\":{\"seq\":7}}";
        _cleanup_json_ json_object *reply = NULL;
        Child *server = start_server();
        char buf[4096];
        json_object *params, *v;
        size_t n;
        Proxy p;
        int fd;

        start_proxy(&p, listen, server_address, "--drop-request", "0", "--drop-reply", "0");

        /* A client that sends its call and closes its sending side still gets the answer,
         * and then the end of the stream once the server, told the same, has closed. */
        fd = raw_connect(p.address);
        ck_assert_int_eq(send(fd, call, sizeof(call), MSG_NOSIGNAL), (ssize_t) sizeof(call)); /* with its NUL */
        ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
        n = read_to_end(fd, buf, sizeof(buf));
        close(fd);

        ck_assert_uint_gt(n, 0);
        ck_assert_int_eq(buf[n - 1], '\0');
        ck_assert_ptr_eq(memchr(buf, '\0', n), buf + n - 1); /* exactly one message */
        ck_assert_int_eq(varlink_message_parse(buf, n - 1, &reply), 0);
        ck_assert(json_object_object_get_ex(reply, "parameters", &params));
        ck_assert(json_object_object_get_ex(params, "seq", &v));
        ck_assert_int_eq(json_object_get_int64(v), 7);

        stop_proxy(&p, SIGTERM);
        stop_server(server);
}
END_TEST

START_TEST(test_server_exit_closes_client) {
        _cleanup_free_ char *listen = proxy_socket("proxy.sock");
        _cleanup_json_ json_object *reply = NULL;
        VarlinkClient *c = NULL;
        Child *server = start_server();
        Counters counters;
        Proxy p;

        start_proxy(&p, listen, server_address, "--drop-request", "0", "--drop-reply", "0");
        ck_assert_int_eq(echo(p.address, &c, 1, NULL, PATIENCE), 0);

        /* The server dies: the client learns it from its connection, not from a time-out. */
        ck_assert_int_eq(kill(server->pid, SIGKILL), 0);
        (void) child_wait(server);
        ck_assert_int_eq(varlink_client_read(c, PATIENCE, &reply, NULL, NULL), -ECONNRESET);
        varlink_client_free(c);

        wait_counters(&p, counters, counters.open == 0);
        ck_assert_uint_eq(counters.open, 0);
        stop_proxy(&p, SIGTERM);
}
END_TEST

START_TEST(test_unreachable_upstream) {
        _cleanup_free_ char *listen = proxy_socket("proxy.sock"), *nobody = proxy_socket("nobody.sock");
        VarlinkClient *c = NULL;
        Counters counters;
        Proxy p;

        start_proxy(&p, listen, nobody, "--drop-request", "0", "--drop-reply", "0");
        /* Closed at once, not left hanging. */
        ck_assert_int_eq(echo(p.address, &c, 1, NULL, PATIENCE), -ECONNRESET);
        ck_assert_int_eq(echo(p.address, &c, 2, NULL, PATIENCE), -ECONNRESET);

        counters = proxy_counters(&p);
        ck_assert_uint_eq(counters.upstream_failures, 2);
        ck_assert_uint_eq(counters.connections, 0);
        stop_proxy(&p, SIGTERM);
}
END_TEST

START_TEST(test_oversized_message_closes_only_its_pair) {
        _cleanup_free_ char *listen = proxy_socket("proxy.sock"), *chunk = NULL, *log = NULL;
        static const char head[] = "{\"method\":\"x\",\"parameters\":{\"pad\":\"";
        const size_t chunk_size = 1024U * 1024U, limit = 16U * 1024U * 1024U;
        VarlinkClient *bystander = NULL, *c = NULL;
        Child *server = start_server();
        Counters counters;
        char buf[4096];
        size_t sent = 0;
        Proxy p;
        int fd;

        start_proxy(&p, listen, server_address, "--drop-request", "0", "--drop-reply", "0", "--delay-max", "0");
        ck_assert_int_eq(echo(p.address, &bystander, 1, NULL, PATIENCE), 0);

        /* Over 16 MiB without a NUL: the proxy gives up on this pair while we still send. */
        fd = raw_connect(p.address);
        ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &(struct timeval) { .tv_sec = 20 },
                                    sizeof(struct timeval)),
                         0);
        chunk = malloc(chunk_size);
        ck_assert_ptr_nonnull(chunk);
        memset(chunk, ' ', chunk_size);
        memcpy(chunk, head, strlen(head));
        while (sent <= limit + chunk_size) {
                ssize_t k = send(fd, chunk, chunk_size, MSG_NOSIGNAL);
                if (k < 0) {
                        ck_assert_msg(errno == EPIPE || errno == ECONNRESET, "send: %s", strerror(errno));
                        break;
                }
                sent += (size_t) k;
                memset(chunk, ' ', strlen(head));
        }
        ck_assert_uint_eq(read_to_end(fd, buf, sizeof(buf)), 0);
        close(fd);

        /* The proxy lives on, and so does the other connection. */
        ck_assert_int_eq(echo(p.address, &bystander, 2, NULL, PATIENCE), 0);
        ck_assert_int_eq(echo(p.address, &c, 3, NULL, PATIENCE), 0);
        varlink_client_free(bystander);
        varlink_client_free(c);
        assert_server_calls(3);

        counters = proxy_counters(&p);
        ck_assert_uint_eq(counters.oversized, 1);
        log = read_file(p.child->log);
        ck_assert_ptr_nonnull(strstr(log, "sent a message over 16777216 bytes"));

        stop_proxy(&p, SIGTERM);
        stop_server(server);
}
END_TEST

/* Runs the proxy to completion with args; returns its exit status and its output. */
static int run_proxy(char **ret_output, char *const args[]) {
        _cleanup_free_ char *out = path_in_test_dir("options.out");
        const char *argv[16] = { proxy_path };
        size_t n = 1;
        pid_t parent = getpid();
        Child *c = child_slot();
        int status;

        for (size_t i = 0; args[i]; i++) {
                ck_assert_uint_lt(n, ELEMENTSOF(argv) - 1);
                argv[n++] = args[i];
        }
        argv[n] = NULL;

        c->pid = fork();
        ck_assert_int_ge(c->pid, 0);
        if (c->pid == 0) {
                child_init(parent);
                int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
                        _exit(127);
                execv(proxy_path, (char **) argv);
                _exit(127);
        }
        status = child_wait(c);
        *ret_output = read_file(out);
        ck_assert_ptr_nonnull(*ret_output);
        ck_assert_msg(WIFEXITED(status), "killed by a signal: 0x%x", (unsigned) status);
        return WEXITSTATUS(status);
}

#define run_proxy_expect(code, needle, ...)                                                              \
        ({                                                                                               \
                _cleanup_free_ char *_out_ = NULL;                                                       \
                int _r_ = run_proxy(&_out_, (char *const[]) { __VA_ARGS__, NULL });                      \
                ck_assert_msg(_r_ == (code), "exit status %d, not %d:\n%s", _r_, (code), _out_);         \
                ck_assert_msg(strstr(_out_, (needle)), "'%s' is not in the output:\n%s", (needle), _out_); \
        })

START_TEST(test_options) {
        _cleanup_free_ char *sock = proxy_socket("never.sock"), *other = proxy_socket("other.sock");
        _cleanup_free_ char *path = path_in_test_dir("never.sock");

        run_proxy_expect(0, "--drop-request PCT", "--help");
        run_proxy_expect(0, "mrkv-faultproxy ", "--version");

        run_proxy_expect(2, "--listen", "--connect", sock);
        run_proxy_expect(2, "--connect", "--listen", sock);
        run_proxy_expect(2, "--drop-request", "--listen", sock, "--connect", other, "--drop-request", "101");
        run_proxy_expect(2, "--drop-request", "--listen", sock, "--connect", other, "--drop-request", "-1");
        run_proxy_expect(2, "--drop-reply", "--listen", sock, "--connect", other, "--drop-reply", "ten");
        run_proxy_expect(2, "--drop-reply", "--listen", sock, "--connect", other, "--drop-reply", "nan");
        run_proxy_expect(2, "--delay-min", "--listen", sock, "--connect", other, "--delay-min", "9", "--delay-max",
                         "3");
        run_proxy_expect(2, "--delay-max", "--listen", sock, "--connect", other, "--delay-max", "1e3");
        run_proxy_expect(2, "--seed", "--listen", sock, "--connect", other, "--seed", "-5");
        run_proxy_expect(2, "--bogus", "--listen", sock, "--connect", other, "--bogus");
        run_proxy_expect(2, "needs an argument", "--listen", sock, "--connect");
        run_proxy_expect(2, "stray", "--listen", sock, "--connect", other, "stray");
        run_proxy_expect(2, "relative/x.sock", "--listen", "unix:relative/x.sock", "--connect", sock);
        run_proxy_expect(2, "udp:1.2.3.4:5", "--listen", sock, "--connect", "udp:1.2.3.4:5");
        run_proxy_expect(2, "--log-level", "--listen", sock, "--connect", other, "--log-level", "loud");
        run_proxy_expect(2, "same address", "--listen", sock, "--connect", path);

        /* None of them started listening. */
        ck_assert_int_lt(access(path, F_OK), 0);
}
END_TEST

static Suite *faultproxy_suite(void) {
        Suite *s = suite_create("faultproxy");
        TCase *tc = tcase_create("processes");

        tcase_add_checked_fixture(tc, setup, NULL);
        /* The slowest test waits out about 200 dropped calls; sanitizers slow all of them. */
        tcase_set_timeout(tc, 240);
        tcase_add_test(tc, test_options);
        tcase_add_test(tc, test_forwards_everything_in_order);
        tcase_add_test(tc, test_drop_all_requests);
        tcase_add_test(tc, test_drop_all_replies);
        tcase_add_test(tc, test_drop_half_of_requests);
        tcase_add_test(tc, test_seed_reproduces_faults);
        tcase_add_test(tc, test_tcp_listener);
        tcase_add_test(tc, test_half_close_delivers_the_reply);
        tcase_add_test(tc, test_server_exit_closes_client);
        tcase_add_test(tc, test_unreachable_upstream);
        tcase_add_test(tc, test_oversized_message_closes_only_its_pair);
        suite_add_tcase(s, tc);
        return s;
}

/* meson ends a test that runs out of time with SIGTERM to its process group. Check passes
 * it on to the test's own group (the proxies and servers exit), then restores this handler
 * and raises it again here: remove the directories before dying of it. */
static void on_terminate(int sig) {
        if (base_dir)
                rm_rf(base_dir);
        signal(sig, SIG_DFL);
        raise(sig);
}

int main(void) {
        const char *tmp = getenv("TMPDIR");
        SRunner *sr;
        int failed;

        proxy_path = getenv("MRKV_FAULTPROXY");
        if (!proxy_path || access(proxy_path, X_OK) < 0) {
                fprintf(stderr, "Set $MRKV_FAULTPROXY to the mrkv-faultproxy executable.\n");
                return EXIT_FAILURE;
        }
        /* Unix socket paths are short (108 bytes): keep the directory near the root. */
        if (!tmp || !tmp[0] || strlen(tmp) >= 40)
                tmp = "/tmp";
        if (asprintf(&base_dir, "%s/mrkv-faultproxy-XXXXXX", tmp) < 0 || !mkdtemp(base_dir)) {
                perror("mkdtemp");
                return EXIT_FAILURE;
        }

        signal(SIGTERM, on_terminate);
        signal(SIGINT, on_terminate);

        sr = srunner_create(faultproxy_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);

        /* The logs of a failed test's proxies are still there: show them. */
        if (failed > 0)
                (void) nftw(base_dir, dump_one, 16, FTW_PHYS);
        rm_rf(base_dir);
        free(base_dir);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
