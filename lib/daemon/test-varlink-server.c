/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Varlink server (lib/daemon/varlink-server.c) on a real sd-event loop, run in
 * a thread of its own, talked to over a Unix socket with the blocking VarlinkClient or
 * raw bytes. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <systemd/sd-event.h>

#include "address.h"
#include "macro.h"
#include "tests.h"
#include "time-util.h"
#include "varlink-client.h"
#include "varlink-server.h"

/* A deadline for every wait, generous for sanitizers and a loaded machine; no test
 * asserts how long anything takes. */
#define CALL_TIMEOUT (10U * USEC_PER_SEC)

static const char test_interface[] =
        "# The interface the test server serves.\n"
        "interface org.test\n"
        "\n"
        "method Echo(text: string, n: ?int) -> (text: string, n: ?int)\n"
        "method Count(n: int) -> (i: int)\n"
        "method Defer(delay_ms: int, fail: ?bool) -> (deferred: bool)\n"
        "method Release() -> ()\n"
        "method Fail() -> ()\n"
        "method Error(error: string, parameter: ?string) -> ()\n"
        "method NoMemory(stream: ?bool) -> ()\n"
        "method Stats() -> (disconnects: int, connections: int, oneway: int, held: int, iterations: int,\n"
        "                   log: string)\n"
        "method Big() -> (text: string)\n"
        "method Keep() -> ()\n"
        "method Hold(n: int, size: ?int) -> (n: int)\n"
        "method Answer(newest: ?bool) -> (answered: bool)\n"
        "method Holding() -> (holding: int, held: int, most: int)\n"
        "error Busy ()\n";

/* The server side. Fields below "server-thread only" are touched only by the loop
 * thread while it runs, and read by tests through the Stats method. */
typedef struct TestServer {
        sd_event *event;
        VarlinkServer *server;
        sd_event_source *stop_source;
        pthread_t thread;
        bool running;
        int stop_fd;
        char path[PATH_MAX];
        char address[PATH_MAX + 8];

        /* server-thread only */
        VarlinkConn *deferred;   /* a call answered later, from defer_timer */
        VarlinkConn *big;        /* a Big stream, ended once its first reply was read */
        bool deferred_fail;      /* answer it with a reply that cannot be built */
        sd_event_source *defer_timer;
        unsigned disconnects;
        unsigned oneway_calls;
        VarlinkHeld *holding[VARLINK_HELD_MAX + 64]; /* held calls, oldest first */
        int64_t holding_n[VARLINK_HELD_MAX + 64];
        unsigned n_holding, n_held, most_holding;
        char log[8192];          /* what happened, in order: "name;name;..." */
} TestServer;

static TestServer srv;
#define TMPDIR_TEMPLATE "/tmp/mrkv-test-varlink-server-XXXXXX"
static char tmpdir[] = TMPDIR_TEMPLATE;

static void log_event(const char *fmt, ...) _printf_(1, 2);
static void log_event(const char *fmt, ...) {
        size_t n = strlen(srv.log);
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(srv.log + n, sizeof(srv.log) - n, fmt, ap);
        va_end(ap);
        n = strlen(srv.log);
        if (n + 1 < sizeof(srv.log)) {
                srv.log[n] = ';';
                srv.log[n + 1] = '\0';
        }
}

static int method_echo(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        struct {
                const char *text;
                int64_t n;
                json_object *n_json;
        } p = {};
        static const VarlinkField fields[] = {
                { "text", VARLINK_STRING, offsetof(typeof(p), text), true },
                { "n", VARLINK_INT64, offsetof(typeof(p), n), false },
                {},
        };
        _cleanup_json_ json_object *reply = NULL;
        int r;

        ck_assert_ptr_eq(userdata, &srv);
        r = varlink_conn_dispatch(c, parameters, fields, &p);
        if (r < 0) {
                /* Answered already: the connection stays, although this returns < 0. */
                ck_assert(!varlink_conn_has_pending_call(c));
                log_event("echo-invalid:%d", r);
                return r;
        }

        log_event("echo:%s", p.text);
        if (flags & VARLINK_CALL_ONEWAY)
                srv.oneway_calls++;
        r = json_build_object(&reply, "text", json_object_new_string(p.text), NULL);
        if (r < 0)
                return r;
        if (parameters && json_object_object_get_ex(parameters, "n", &p.n_json) && p.n_json) {
                r = json_object_add(reply, "n", json_object_new_int64(p.n));
                if (r < 0)
                        return r;
        }
        return varlink_conn_reply(c, TAKE_PTR(reply));
}

static int method_count(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        struct {
                uint32_t n;
        } p = {};
        static const VarlinkField fields[] = {
                { "n", VARLINK_UINT32, offsetof(typeof(p), n), true },
                {},
        };
        int r;

        r = varlink_conn_dispatch(c, parameters, fields, &p);
        if (r < 0)
                return r;

        if (!(flags & VARLINK_CALL_MORE)) {
                /* Intermediate replies exist only for calls that asked for them. */
                ck_assert_int_eq(varlink_conn_notifyb(c, "i", json_object_new_int(0), NULL), -EINVAL);
                ck_assert(varlink_conn_has_pending_call(c));
                return varlink_conn_error(c, VARLINK_ERROR_EXPECTED_MORE, NULL);
        }

        for (uint32_t i = 0; i < p.n; i++) {
                r = varlink_conn_notifyb(c, "i", json_object_new_int64(i), NULL);
                if (r < 0)
                        return r;
                ck_assert(varlink_conn_has_pending_call(c));
        }
        return varlink_conn_replyb(c, "i", json_object_new_int64(p.n), NULL);
}

static int on_defer_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        VarlinkConn *c = srv.deferred;
        int r;

        if (!c) {
                log_event("defer-timer-without-call");
                return 0;
        }
        if (srv.deferred_fail) {
                /* A reply that cannot be built closes the connection here too, and the
                 * disconnect handler (which forgets the call) runs from within it. */
                log_event("defer-fail");
                r = varlink_conn_replyb(c, "deferred", NULL, NULL);
                ck_assert_int_eq(r, -ENOMEM);
                ck_assert_ptr_null(srv.deferred);
                log_event("defer-failed:%d", r);
                return 0;
        }
        srv.deferred = NULL;
        log_event("defer-reply");
        ck_assert_int_eq(varlink_conn_replyb(c, "deferred", json_object_new_boolean(true), NULL), 0);
        return 0;
}

static int method_defer(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        struct {
                uint64_t delay_ms;
                bool fail;
        } p = {};
        static const VarlinkField fields[] = {
                { "delay_ms", VARLINK_UINT64, offsetof(typeof(p), delay_ms), true },
                { "fail", VARLINK_BOOL, offsetof(typeof(p), fail), false },
                {},
        };
        int r;

        r = varlink_conn_dispatch(c, parameters, fields, &p);
        if (r < 0)
                return r;
        if (srv.deferred)
                return varlink_conn_error(c, "org.test.Busy", NULL);

        /* No reply now: the connection is kept and answered from the timer. */
        srv.deferred = c;
        srv.deferred_fail = p.fail;
        srv.defer_timer = sd_event_source_disable_unref(srv.defer_timer);
        r = sd_event_add_time_relative(srv.event, &srv.defer_timer, CLOCK_MONOTONIC,
                                       p.delay_ms * USEC_PER_MSEC, 0, on_defer_timer, NULL);
        if (r < 0)
                return r;
        log_event("defer-start");
        return 0;
}

/* Fires the pending deferred reply's timer now, so tests need not wait for it. */
static int method_release(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        if (srv.defer_timer)
                ck_assert_int_ge(sd_event_source_set_time_relative(srv.defer_timer, 0), 0);
        return varlink_conn_reply(c, NULL);
}

static int method_fail(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        log_event("fail");
        return -EIO; /* without a reply: the connection is closed */
}

/* Answers with the error named, and logs what varlink_conn_error*() returned. */
static int method_error(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        struct {
                const char *error, *parameter;
        } p = {};
        static const VarlinkField fields[] = {
                { "error", VARLINK_STRING, offsetof(typeof(p), error), true },
                { "parameter", VARLINK_STRING, offsetof(typeof(p), parameter), false },
                {},
        };
        int r;

        r = varlink_conn_dispatch(c, parameters, fields, &p);
        if (r < 0)
                return r;

        if (p.parameter)
                r = varlink_conn_errorb(c, p.error, "parameter", json_object_new_string(p.parameter), NULL);
        else
                r = varlink_conn_error(c, p.error, NULL);
        log_event("error:%s:%d", p.error, r);
        return r;
}

/* Answers with parameters whose allocation "failed": a NULL value in the pairs. */
static int method_no_memory(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags,
                            void *userdata) {
        struct {
                bool stream;
        } p = {};
        static const VarlinkField fields[] = {
                { "stream", VARLINK_BOOL, offsetof(typeof(p), stream), false },
                {},
        };
        int r;

        r = varlink_conn_dispatch(c, parameters, fields, &p);
        if (r < 0)
                return r;

        if (p.stream) {
                r = varlink_conn_notifyb(c, "i", json_object_new_int(0), NULL);
                ck_assert_int_eq(r, 0);
                r = varlink_conn_notifyb(c, "i", json_object_new_int(1), "j", NULL, NULL);
        } else
                r = varlink_conn_replyb(c, "a", json_object_new_string("a"), "b", NULL,
                                        "c", json_object_new_string("c"), NULL);
        log_event("no-memory:%d", r);
        ck_assert(!varlink_conn_has_pending_call(c));
        return r;
}

/* org.test.Plain: a method and a plain handler that answer alike, but for "path", which
 * names the one that answered. The text "odd" is answered with bytes that need escapes. */
static const char odd_text[] = "tab\t quote\" backslash\\ nul\0 \x01 \xc3\xa9";

static int method_plain(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        struct {
                const char *text;
        } p = {};
        static const VarlinkField fields[] = {
                { "text", VARLINK_STRING, 0, true },
                {},
        };
        int r;

        r = varlink_conn_dispatch(c, parameters, fields, &p);
        if (r < 0)
                return r;
        return varlink_conn_replyb(c,
                                   "text", json_object_new_string(p.text),
                                   "path", json_object_new_string("general"),
                                   NULL);
}

static int plain_plain(VarlinkConn *c, const VarlinkView *call, void *userdata) {
        static const char *const names[] = { "text" };
        static const bool string[] = { true };
        const VarlinkViewField *f[1];
        bool odd;
        int r;

        if (!varlink_view_match(call, names, string, 1, f))
                return 0;
        odd = f[0]->value_size == 3 && memcmp(f[0]->value, "odd", 3) == 0;
        r = varlink_conn_reply_fields(c, (const VarlinkReplyField[]) {
                { .name = "text", .string = odd ? odd_text : f[0]->value,
                  .string_size = odd ? sizeof(odd_text) - 1 : f[0]->value_size },
                { .name = "path", .string = "plain", .string_size = 5 },
                { .name = "n", .number = UINT64_MAX },
        }, 3);
        return r < 0 ? r : 1;
}

/* An intermediate reply larger than a socket holds; the call ends once it was read. */
static int method_big(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        _cleanup_free_ char *text = malloc(4U << 20);
        int r;

        if (!text)
                return -ENOMEM;
        memset(text, 'x', (4U << 20) - 1);
        text[(4U << 20) - 1] = '\0';
        r = varlink_conn_notifyb(c, "text", json_object_new_string(text), NULL);
        if (r < 0)
                return r;
        log_event("big-queued:%d", varlink_conn_output_size(c) > 0);
        srv.big = c;
        return 0;
}

static void on_drained(VarlinkConn *c, void *userdata) {
        ck_assert_ptr_eq(userdata, &srv);
        ck_assert_uint_eq(varlink_conn_output_size(c), 0);
        if (srv.big != c)
                return;
        srv.big = NULL;
        log_event("drained");
        (void) varlink_conn_replyb(c, "text", json_object_new_string("end"), NULL);
}

static int method_stats(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        VarlinkServer *s = varlink_conn_get_server(c);
        uint64_t iterations = 0;

        (void) sd_event_get_iteration(srv.event, &iterations);
        return varlink_conn_replyb(
                        c,
                        "disconnects", json_object_new_int64(srv.disconnects),
                        "connections", json_object_new_int64(varlink_server_n_connections(s)),
                        "oneway", json_object_new_int64(srv.oneway_calls),
                        "held", json_object_new_int64((int64_t) varlink_server_input_held(s)),
                        "iterations", json_object_new_int64((int64_t) iterations),
                        "log", json_object_new_string(srv.log),
                        NULL);
}

/* Marks the connection long-lived, as the coordinator does with a worker's. */
static int method_keep(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        varlink_conn_set_long_lived(c, true);
        return varlink_conn_reply(c, NULL);
}

/* Holds the call, to be answered by Answer from another connection. */
static int method_hold(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        struct {
                int64_t n;
                uint64_t size;
        } p = {};
        static const VarlinkField fields[] = {
                { "n", VARLINK_INT64, offsetof(typeof(p), n), true },
                { "size", VARLINK_UINT64, offsetof(typeof(p), size), false },
                {},
        };
        VarlinkHeld *h;
        int r;

        r = varlink_conn_dispatch(c, parameters, fields, &p);
        if (r < 0)
                return r;
        ck_assert_uint_lt(srv.n_holding, ELEMENTSOF(srv.holding));
        r = varlink_conn_hold(c, &srv, (size_t) p.size, &h);
        if (r < 0)
                return r;
        ck_assert(!varlink_conn_has_pending_call(c));
        srv.holding_n[srv.n_holding] = p.n;
        srv.holding[srv.n_holding++] = h;
        srv.n_held++;
        srv.most_holding = MAX(srv.most_holding, srv.n_holding);
        return 0;
}

/* Answers the oldest held call (or the newest) with its n. */
static int method_answer(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        struct {
                bool newest;
        } p = {};
        static const VarlinkField fields[] = {
                { "newest", VARLINK_BOOL, offsetof(typeof(p), newest), false },
                {},
        };
        VarlinkConn *held;
        unsigned i;
        int64_t n;
        int r;

        r = varlink_conn_dispatch(c, parameters, fields, &p);
        if (r < 0)
                return r;
        if (srv.n_holding == 0)
                return varlink_conn_replyb(c, "answered", json_object_new_boolean(false), NULL);
        i = p.newest ? srv.n_holding - 1 : 0;
        ck_assert_ptr_eq(varlink_held_get_userdata(srv.holding[i]), &srv);
        n = srv.holding_n[i];
        held = varlink_held_answer(srv.holding[i]);
        memmove(srv.holding + i, srv.holding + i + 1, (srv.n_holding - i - 1) * sizeof(srv.holding[0]));
        memmove(srv.holding_n + i, srv.holding_n + i + 1, (srv.n_holding - i - 1) * sizeof(srv.holding_n[0]));
        srv.n_holding--;
        ck_assert_int_eq(varlink_conn_replyb(held, "n", json_object_new_int64(n), NULL), 0);
        return varlink_conn_replyb(c, "answered", json_object_new_boolean(true), NULL);
}

static int method_holding(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        return varlink_conn_replyb(c,
                                   "holding", json_object_new_int64(srv.n_holding),
                                   "held", json_object_new_int64(srv.n_held),
                                   "most", json_object_new_int64(srv.most_holding),
                                   NULL);
}

static void on_disconnect(VarlinkConn *c, void *userdata) {
        unsigned dropped = 0;

        ck_assert_ptr_eq(userdata, &srv);
        srv.disconnects++;
        /* Held calls die with their connection: forgotten here, freed after. */
        for (VarlinkHeld *h = NULL; (h = varlink_conn_next_held(c, h));)
                for (unsigned i = 0; i < srv.n_holding; i++)
                        if (srv.holding[i] == h) {
                                memmove(srv.holding + i, srv.holding + i + 1,
                                        (srv.n_holding - i - 1) * sizeof(srv.holding[0]));
                                memmove(srv.holding_n + i, srv.holding_n + i + 1,
                                        (srv.n_holding - i - 1) * sizeof(srv.holding_n[0]));
                                srv.n_holding--;
                                dropped++;
                                break;
                        }
        if (dropped > 0)
                log_event("held-dropped:%u", dropped);
        /* A deferred call dies with its connection; the pointer must not outlive it. */
        if (srv.deferred == c) {
                srv.deferred = NULL;
                log_event("defer-dropped");
        }
}

static int on_stop(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void *server_thread(void *arg) {
        int r = sd_event_loop(srv.event);
        return (void *) (intptr_t) r;
}

static void server_start_with(size_t max_message, const VarlinkServerLimits *limits) {
        static unsigned counter;
        Address a;
        int fd;

        memset(&srv, 0, sizeof(srv));
        srv.stop_fd = -EBADF;
        /* A socket per test: in no-fork mode the tests share the directory. */
        snprintf(srv.path, sizeof(srv.path), "%s/s%u-%d.sock", tmpdir, counter++, (int) getpid());
        snprintf(srv.address, sizeof(srv.address), "unix:%s", srv.path);

        ck_assert_int_eq(sd_event_new(&srv.event), 0);
        ck_assert_int_eq(varlink_server_new(srv.event,
                                            &(VarlinkServerInfo) {
                                                    .vendor = "mrkv-test",
                                                    .product = "test-varlink-server",
                                                    .version = "1",
                                                    .url = "https://example.org/mrkv",
                                            },
                                            &srv, &srv.server),
                         0);
        ck_assert_int_eq(varlink_server_add_interface(srv.server, test_interface), 0);
        ck_assert_int_eq(varlink_server_add_interface(srv.server, "no interface line here\n"), -EINVAL);
        ck_assert_int_eq(varlink_server_bind(srv.server, "org.test.Echo", method_echo), 0);
        ck_assert_int_eq(varlink_server_bind(srv.server, "org.test.Count", method_count), 0);
        ck_assert_int_eq(varlink_server_bind(srv.server, "org.test.Defer", method_defer), 0);
        ck_assert_int_eq(varlink_server_bind(srv.server, "org.test.Release", method_release), 0);
        ck_assert_int_eq(varlink_server_bind(srv.server, "org.test.Fail", method_fail), 0);
        ck_assert_int_eq(varlink_server_bind(srv.server, "org.test.Error", method_error), 0);
        ck_assert_int_eq(varlink_server_bind(srv.server, "org.test.NoMemory", method_no_memory), 0);
        ck_assert_int_eq(varlink_server_bind(srv.server, "org.test.Stats", method_stats), 0);
        ck_assert_int_eq(varlink_server_bind_plain(srv.server, "org.test.Unbound", plain_plain), -ENOENT);
        ck_assert_int_eq(varlink_server_bind(srv.server, "org.test.Plain", method_plain), 0);
        ck_assert_int_eq(varlink_server_bind_plain(srv.server, "org.test.Plain", plain_plain), 0);
        ck_assert_int_eq(varlink_server_bind(srv.server, "org.test.Big", method_big), 0);
        ck_assert_int_eq(varlink_server_bind(srv.server, "org.test.Keep", method_keep), 0);
        ck_assert_int_eq(varlink_server_bind(srv.server, "org.test.Hold", method_hold), 0);
        ck_assert_int_eq(varlink_server_bind(srv.server, "org.test.Answer", method_answer), 0);
        ck_assert_int_eq(varlink_server_bind(srv.server, "org.test.Holding", method_holding), 0);
        varlink_server_set_disconnect_handler(srv.server, on_disconnect);
        varlink_server_set_drained_handler(srv.server, on_drained);
        if (max_message > 0)
                varlink_server_set_max_message_size(srv.server, max_message);
        if (limits)
                varlink_server_set_limits(srv.server, limits);

        ck_assert_int_eq(address_parse(srv.address, &a), 0);
        fd = address_listen(&a);
        address_done(&a);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(varlink_server_listen_fd(srv.server, fd), 0);

        srv.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        ck_assert_int_ge(srv.stop_fd, 0);
        ck_assert_int_ge(sd_event_add_io(srv.event, &srv.stop_source, srv.stop_fd, EPOLLIN, on_stop, NULL), 0);

        ck_assert_int_eq(pthread_create(&srv.thread, NULL, server_thread, NULL), 0);
        srv.running = true;
}

static void server_start(size_t max_message) {
        server_start_with(max_message, NULL);
}

static void setup_default(void) {
        server_start(0);
}

static void setup_small(void) {
        server_start(1024);
}

static void teardown_server(void) {
        void *ret = NULL;

        if (srv.running) {
                ck_assert_int_eq(eventfd_write(srv.stop_fd, 1), 0);
                ck_assert_int_eq(pthread_join(srv.thread, &ret), 0);
                ck_assert_int_eq((int) (intptr_t) ret, 0);
                srv.running = false;
        }
        /* The loop has stopped: what is left belongs to this thread now. */
        srv.server = varlink_server_free(srv.server);
        srv.defer_timer = sd_event_source_disable_unref(srv.defer_timer);
        srv.stop_source = sd_event_source_disable_unref(srv.stop_source);
        srv.event = sd_event_unref(srv.event);
        closep(&srv.stop_fd);
        (void) unlink(srv.path);
}

/* The directory lives in the parent process (unchecked fixtures), so it is removed even
 * when a test dies. */
static void make_tmpdir(void) {
        memcpy(tmpdir, TMPDIR_TEMPLATE, sizeof(tmpdir)); /* once per test case */
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void remove_tmpdir(void) {
        (void) nftw(tmpdir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Client helpers. */

static VarlinkClient *client_new(void) {
        VarlinkClient *c = NULL;

        ck_assert_int_eq(varlink_client_connect(srv.address, &c), 0);
        return c;
}

/* A raw connection: bytes go out exactly as given. */
static int raw_connect(void) {
        Address a;
        int fd;

        ck_assert_int_eq(address_parse(srv.address, &a), 0);
        fd = address_connect(&a, false);
        address_done(&a);
        ck_assert_int_ge(fd, 0);
        return fd;
}

static void raw_send(int fd, const void *data, size_t size) {
        ck_assert_int_eq(send(fd, data, size, MSG_NOSIGNAL), (ssize_t) size);
}
#define RAW_SEND(fd, lit) raw_send((fd), (lit), sizeof(lit) - 1)

static json_object *params_of(const char *json) {
        json_object *o;

        if (!json)
                return NULL;
        o = json_tokener_parse(json);
        ck_assert_msg(o, "bad test JSON: %s", json);
        return o;
}

/* Makes a call; returns the reply parameters (a new reference) and the error name, which
 * is copied so that it outlives the next read. */
static json_object *call(VarlinkClient *c, const char *method, const char *params, char **ret_error) {
        _cleanup_json_ json_object *p = params_of(params);
        json_object *reply = NULL;
        const char *error = NULL;

        ck_assert_int_eq(varlink_client_call(c, method, p, CALL_TIMEOUT, &reply, &error), 0);
        ck_assert_ptr_nonnull(reply);
        *ret_error = error ? strdup(error) : NULL;
        return reply;
}

/* A call that must succeed. */
static json_object *call_ok(VarlinkClient *c, const char *method, const char *params) {
        _cleanup_free_ char *error = NULL;
        json_object *reply = call(c, method, params, &error);

        ck_assert_msg(!error, "%s failed: %s", method, error);
        return reply;
}

static void send_call(VarlinkClient *c, const char *method, const char *params, unsigned flags) {
        _cleanup_json_ json_object *p = params_of(params);

        ck_assert_int_eq(varlink_client_send(c, method, p, flags, CALL_TIMEOUT), 0);
}

/* Reads one reply that must be a success. */
static json_object *read_ok(VarlinkClient *c, bool *ret_continues) {
        json_object *reply = NULL;
        const char *error = NULL;

        ck_assert_int_eq(varlink_client_read(c, CALL_TIMEOUT, &reply, &error, ret_continues), 0);
        ck_assert_msg(!error, "error reply %s", error);
        return reply;
}

static const char *get_string(json_object *o, const char *key) {
        json_object *v;

        ck_assert_msg(json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string),
                      "no string %s in %s", key, json_object_to_json_string(o));
        return json_object_get_string(v);
}

static int64_t get_int(json_object *o, const char *key) {
        json_object *v;

        ck_assert_msg(json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int),
                      "no integer %s in %s", key, json_object_to_json_string(o));
        return json_object_get_int64(v);
}

static void expect_echo(VarlinkClient *c, const char *text) {
        _cleanup_json_ json_object *p = NULL;
        _cleanup_free_ char *params = NULL;

        ck_assert_int_ge(asprintf(&params, "{\"text\":\"%s\"}", text), 0);
        p = call_ok(c, "org.test.Echo", params);
        ck_assert_str_eq(get_string(p, "text"), text);
}

/* The peer closed the connection: the next read finds its end. */
static void expect_closed(VarlinkClient *c) {
        ck_assert_int_eq(varlink_client_read(c, CALL_TIMEOUT, NULL, NULL, NULL), -ECONNRESET);
}

static void raw_expect_closed(int fd) {
        uint64_t deadline = now_usec() + CALL_TIMEOUT;
        char buf[4096];

        for (;;) {
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno == ECONNRESET))
                        return;
                ck_assert_msg(n > 0 || errno == EAGAIN || errno == EINTR, "recv: %m");
                ck_assert_msg(n < 0, "unexpected data: %.*s", (int) n, buf);
                ck_assert_msg(now_usec() < deadline, "connection not closed");
                (void) poll(&(struct pollfd) { .fd = fd, .events = POLLIN }, 1, 100);
        }
}

/* Polls the server's statistics until the disconnect count reaches want. */
static json_object *wait_disconnects(VarlinkClient *stats, int64_t want) {
        uint64_t deadline = now_usec() + CALL_TIMEOUT;

        for (;;) {
                json_object *p = call_ok(stats, "org.test.Stats", NULL);
                if (get_int(p, "disconnects") >= want)
                        return p;
                json_object_put(p);
                ck_assert_msg(now_usec() < deadline, "disconnect count stays below %" PRIi64, want);
                (void) poll(NULL, 0, 10);
        }
}

static char *server_log(VarlinkClient *stats) {
        _cleanup_json_ json_object *p = call_ok(stats, "org.test.Stats", NULL);
        return strdup(get_string(p, "log"));
}

/* Polls the server's event log until it holds what. */
static void wait_logged(VarlinkClient *stats, const char *what) {
        uint64_t deadline = now_usec() + CALL_TIMEOUT;

        for (;;) {
                _cleanup_free_ char *log = server_log(stats);
                if (strstr(log, what))
                        return;
                ck_assert_msg(now_usec() < deadline, "%s never logged: %s", what, log);
                (void) poll(NULL, 0, 10);
        }
}

/* The server tests. */

START_TEST(test_call_reply) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new();
        _cleanup_json_ json_object *p = NULL, *q = NULL;

        p = call_ok(c, "org.test.Echo", "{\"text\":\"h\xc3\xa9llo\",\"n\":-5}");
        ck_assert_str_eq(get_string(p, "text"), "h\xc3\xa9llo");
        ck_assert_int_eq(get_int(p, "n"), -5);
        /* The connection stays open for more calls. */
        q = call_ok(c, "org.test.Echo", "{\"text\":\"again\"}");
        ck_assert_str_eq(get_string(q, "text"), "again");
        ck_assert(!json_object_object_get_ex(q, "n", NULL));
}
END_TEST

START_TEST(test_get_info) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new();
        _cleanup_json_ json_object *p = NULL, *q = NULL;
        _cleanup_free_ char *error = NULL;
        json_object *ifaces;
        bool service = false, test = false;

        p = call_ok(c, "org.varlink.service.GetInfo", NULL);
        ck_assert_str_eq(get_string(p, "vendor"), "mrkv-test");
        ck_assert_str_eq(get_string(p, "product"), "test-varlink-server");
        ck_assert_str_eq(get_string(p, "version"), "1");
        ck_assert_str_eq(get_string(p, "url"), "https://example.org/mrkv");
        ck_assert(json_object_object_get_ex(p, "interfaces", &ifaces));
        ck_assert(json_object_is_type(ifaces, json_type_array));
        ck_assert_uint_eq(json_object_array_length(ifaces), 2);
        for (size_t i = 0; i < json_object_array_length(ifaces); i++) {
                const char *name = json_object_get_string(json_object_array_get_idx(ifaces, i));
                service = service || streq(name, "org.varlink.service");
                test = test || streq(name, "org.test");
        }
        ck_assert(service && test);

        /* GetInfo takes no parameters. */
        q = call(c, "org.varlink.service.GetInfo", "{\"x\":1}", &error);
        ck_assert_str_eq(error, VARLINK_ERROR_INVALID_PARAMETER);
        ck_assert_str_eq(get_string(q, "parameter"), "x");
}
END_TEST

START_TEST(test_interface_description) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new();
        _cleanup_json_ json_object *p = NULL, *q = NULL, *s = NULL, *m = NULL;
        _cleanup_free_ char *error = NULL, *error2 = NULL;

        p = call_ok(c, "org.varlink.service.GetInterfaceDescription", "{\"interface\":\"org.test\"}");
        ck_assert_str_eq(get_string(p, "description"), test_interface);

        q = call(c, "org.varlink.service.GetInterfaceDescription", "{\"interface\":\"org.nope\"}", &error);
        ck_assert_str_eq(error, VARLINK_ERROR_INTERFACE_NOT_FOUND);
        ck_assert_str_eq(get_string(q, "interface"), "org.nope");

        s = call_ok(c, "org.varlink.service.GetInterfaceDescription", "{\"interface\":\"org.varlink.service\"}");
        ck_assert_ptr_nonnull(strstr(get_string(s, "description"), "interface org.varlink.service\n"));

        m = call(c, "org.varlink.service.GetInterfaceDescription", NULL, &error2);
        ck_assert_str_eq(error2, VARLINK_ERROR_INVALID_PARAMETER);
        ck_assert_str_eq(get_string(m, "parameter"), "interface");
}
END_TEST

START_TEST(test_method_not_found) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new();
        _cleanup_json_ json_object *p = NULL, *q = NULL;
        _cleanup_free_ char *error = NULL, *error2 = NULL;

        p = call(c, "org.test.Nope", "{\"text\":\"x\"}", &error);
        ck_assert_str_eq(error, VARLINK_ERROR_METHOD_NOT_FOUND);
        ck_assert_str_eq(get_string(p, "method"), "org.test.Nope");

        q = call(c, "org.varlink.service.Nope", NULL, &error2);
        ck_assert_str_eq(error2, VARLINK_ERROR_METHOD_NOT_FOUND);
        ck_assert_str_eq(get_string(q, "method"), "org.varlink.service.Nope");

        /* An error reply is an answer like any other: the connection goes on. */
        expect_echo(c, "still here");
}
END_TEST

START_TEST(test_invalid_parameter) {
        static const struct {
                const char *params, *bad;
        } cases[] = {
                { "{\"text\":5}", "text" },
                { "{}", "text" },
                { "{\"text\":\"x\",\"n\":\"5\"}", "n" },
                { "{\"text\":\"x\",\"bogus\":1}", "bogus" },
                { "{\"text\":\"a\\u0000b\"}", "text" },
        };
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new();

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_ json_object *p = NULL;
                _cleanup_free_ char *error = NULL;

                p = call(c, "org.test.Echo", cases[i].params, &error);
                ck_assert_msg(error && streq(error, VARLINK_ERROR_INVALID_PARAMETER), "%s: error %s",
                              cases[i].params, error ?: "(none)");
                ck_assert_str_eq(get_string(p, "parameter"), cases[i].bad);
        }
        expect_echo(c, "fine");
}
END_TEST

/* How often needle occurs in haystack. */
static unsigned count_of(const char *haystack, const char *needle) {
        unsigned n = 0;

        for (const char *p = haystack; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

START_TEST(test_dispatch_returns_after_answering) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new();
        _cleanup_json_ json_object *s = NULL;
        char expected[64];

        for (int i = 0; i < 3; i++) {
                _cleanup_json_ json_object *p = NULL;
                _cleanup_free_ char *error = NULL;

                p = call(c, "org.test.Echo", "{\"text\":\"x\",\"n\":true}", &error);
                ck_assert_str_eq(error, VARLINK_ERROR_INVALID_PARAMETER);
                ck_assert_str_eq(get_string(p, "parameter"), "n");
        }
        /* The method returned varlink_conn_dispatch()'s -EINVAL each time, after the error
         * was queued: the connection goes on. */
        expect_echo(c, "after three");
        s = call_ok(c, "org.test.Stats", NULL);
        snprintf(expected, sizeof(expected), "echo-invalid:%d;", -EINVAL);
        ck_assert_uint_eq(count_of(get_string(s, "log"), expected), 3);
        ck_assert_int_eq(get_int(s, "disconnects"), 0);
}
END_TEST

START_TEST(test_error_returns) {
        static const struct {
                const char *error;
                int value;
        } cases[] = {
                { "org.test.Busy", -EBADR },
                { "org.example.Other.Failure", -EBADR },
                { VARLINK_ERROR_INVALID_PARAMETER, -EINVAL },
                { VARLINK_ERROR_METHOD_NOT_FOUND, -ENXIO },
                { VARLINK_ERROR_METHOD_NOT_IMPLEMENTED, -ENOTTY },
                { VARLINK_ERROR_INTERFACE_NOT_FOUND, -EADDRNOTAVAIL },
                { VARLINK_ERROR_PERMISSION_DENIED, -EACCES },
                { VARLINK_ERROR_EXPECTED_MORE, -EBADE },
        };
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new();
        _cleanup_json_ json_object *s = NULL;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_ json_object *p = NULL, *q = NULL;
                _cleanup_free_ char *params = NULL, *params2 = NULL, *error = NULL, *error2 = NULL;

                ck_assert_int_ge(asprintf(&params, "{\"error\":\"%s\"}", cases[i].error), 0);
                p = call(c, "org.test.Error", params, &error);
                ck_assert_str_eq(error, cases[i].error);
                ck_assert_int_eq(json_object_object_length(p), 0);

                ck_assert_int_ge(asprintf(&params2, "{\"error\":\"%s\",\"parameter\":\"p%zu\"}",
                                          cases[i].error, i), 0);
                q = call(c, "org.test.Error", params2, &error2);
                ck_assert_str_eq(error2, cases[i].error);
                ck_assert_int_eq(json_object_object_length(q), 1);
                ck_assert_int_eq(strtol(get_string(q, "parameter") + 1, NULL, 10), (long) i);
        }
        expect_echo(c, "errors do not close");

        s = call_ok(c, "org.test.Stats", NULL);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char expected[128];

                snprintf(expected, sizeof(expected), "error:%s:%d;", cases[i].error, cases[i].value);
                ck_assert_msg(count_of(get_string(s, "log"), expected) == 2, "%s not twice in %s", expected,
                              get_string(s, "log"));
        }
        ck_assert_int_eq(get_int(s, "disconnects"), 0);
}
END_TEST

START_TEST(test_reply_no_memory) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new(), *d = client_new(),
                                                      *other = client_new();
        _cleanup_json_ json_object *p = NULL, *s = NULL;
        _cleanup_free_ char *log = NULL;
        char expected[64];
        bool continues = false;

        /* A reply that cannot be built is not sent as something else: the connection closes. */
        send_call(c, "org.test.NoMemory", NULL, 0);
        expect_closed(c);

        /* Nor is a stream left hanging when one of its replies cannot be built. */
        send_call(d, "org.test.NoMemory", "{\"stream\":true}", VARLINK_CLIENT_MORE);
        p = read_ok(d, &continues);
        ck_assert(continues);
        ck_assert_int_eq(get_int(p, "i"), 0);
        expect_closed(d);

        s = wait_disconnects(other, 2);
        ck_assert_int_eq(get_int(s, "disconnects"), 2);
        log = server_log(other);
        snprintf(expected, sizeof(expected), "no-memory:%d;", -ENOMEM);
        ck_assert_msg(count_of(log, expected) == 2, "log: %s", log);
        expect_echo(other, "unaffected");
}
END_TEST

START_TEST(test_deferred_reply_no_memory) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new(), *other = client_new();
        _cleanup_json_ json_object *s = NULL;
        _cleanup_free_ char *log = NULL;
        char expected[128];

        send_call(c, "org.test.Defer", "{\"delay_ms\":0,\"fail\":true}", 0);
        expect_closed(c);

        s = wait_disconnects(other, 1);
        log = server_log(other);
        /* The disconnect handler ran from within the failed reply. */
        snprintf(expected, sizeof(expected), "defer-start;defer-fail;defer-dropped;defer-failed:%d;",
                 -ENOMEM);
        ck_assert_msg(strstr(log, expected), "log: %s", log);
        expect_echo(other, "unaffected");
}
END_TEST

START_TEST(test_pipelined_in_order) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new();
        enum { N = 200 };

        /* All sent before any is read: replies come back in the order of the calls. */
        for (int i = 0; i < N; i++) {
                char params[64];
                snprintf(params, sizeof(params), "{\"text\":\"m%d\",\"n\":%d}", i, i);
                send_call(c, i % 10 == 9 ? "org.test.Nope" : "org.test.Echo", params, 0);
        }
        for (int i = 0; i < N; i++) {
                _cleanup_json_ json_object *p = NULL;
                const char *error = NULL;
                bool continues = true;

                ck_assert_int_eq(varlink_client_read(c, CALL_TIMEOUT, &p, &error, &continues), 0);
                ck_assert(!continues);
                if (i % 10 == 9) {
                        ck_assert_str_eq(error, VARLINK_ERROR_METHOD_NOT_FOUND);
                        continue;
                }
                ck_assert_ptr_null(error);
                ck_assert_int_eq(get_int(p, "n"), i);
        }
}
END_TEST

/* Polls until the server has held want calls in all. */
static void wait_held(VarlinkClient *other, int64_t want) {
        uint64_t deadline = now_usec() + CALL_TIMEOUT;

        for (;;) {
                _cleanup_json_ json_object *p = call_ok(other, "org.test.Holding", NULL);
                if (get_int(p, "held") >= want)
                        return;
                ck_assert_msg(now_usec() < deadline, "held calls stay below %" PRIi64, want);
                (void) poll(NULL, 0, 10);
        }
}

static void read_echo(VarlinkClient *c, const char *text) {
        _cleanup_json_ json_object *p = read_ok(c, NULL);

        ck_assert_str_eq(get_string(p, "text"), text);
}

static void send_hold(VarlinkClient *c, int n) {
        char params[32];

        snprintf(params, sizeof(params), "{\"n\":%d}", n);
        send_call(c, "org.test.Hold", params, 0);
}

START_TEST(test_held_calls_in_order) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new(), *other = client_new();
        _cleanup_json_ json_object *a = NULL, *b = NULL, *x = NULL, *y = NULL, *z = NULL;

        /* Held calls do not stop the connection: the calls behind them are handled ... */
        send_hold(c, 1);
        send_call(c, "org.test.Echo", "{\"text\":\"a\"}", 0);
        send_hold(c, 2);
        send_call(c, "org.test.Echo", "{\"text\":\"b\"}", 0);
        wait_logged(other, "echo:a;echo:b;");
        wait_held(other, 2);

        /* ... and answered in call order, whichever held call is answered first. */
        x = call_ok(other, "org.test.Answer", "{\"newest\":true}");
        y = call_ok(other, "org.test.Answer", NULL);
        a = read_ok(c, NULL);
        ck_assert_int_eq(get_int(a, "n"), 1);
        read_echo(c, "a");
        b = read_ok(c, NULL);
        ck_assert_int_eq(get_int(b, "n"), 2);
        read_echo(c, "b");

        /* With nothing held, answers go out at once again. */
        expect_echo(c, "after");
        z = call_ok(other, "org.test.Holding", NULL);
        ck_assert_int_eq(get_int(z, "holding"), 0);
}
END_TEST

START_TEST(test_held_calls_bounded) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new(), *other = client_new();
        _cleanup_json_ json_object *p = NULL;
        const int n = VARLINK_HELD_MAX + 10;

        /* More calls held than the bound: the connection is read up to it, and on as the
         * oldest are answered; none is dropped, every answer in order. */
        for (int i = 0; i < n; i++)
                send_hold(c, i);
        wait_held(other, VARLINK_HELD_MAX);
        for (int i = 0; i < n; i++) {
                _cleanup_json_ json_object *q = NULL, *r = NULL;

                wait_held(other, MIN(i + 1, n));
                r = call_ok(other, "org.test.Answer", NULL);
                q = read_ok(c, NULL);
                ck_assert_int_eq(get_int(q, "n"), i);
        }
        p = call_ok(other, "org.test.Holding", NULL);
        ck_assert_int_eq(get_int(p, "held"), n);
        ck_assert_int_eq(get_int(p, "most"), VARLINK_HELD_MAX);
}
END_TEST

START_TEST(test_held_calls_bounded_size) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new(), *other = client_new();
        _cleanup_json_ json_object *p = NULL;
        char params[64];

        /* Calls that keep a third of the bound each: three are held at once, and the
         * rest wait unread until the oldest are answered. */
        for (int i = 0; i < 10; i++) {
                snprintf(params, sizeof(params), "{\"n\":%d,\"size\":%zu}", i, VARLINK_HELD_SIZE_MAX / 3 + 1);
                send_call(c, "org.test.Hold", params, 0);
        }
        for (int i = 0; i < 10; i++) {
                _cleanup_json_ json_object *q = NULL, *r = NULL;

                wait_held(other, MIN(i + 3, 10));
                r = call_ok(other, "org.test.Answer", NULL);
                q = read_ok(c, NULL);
                ck_assert_int_eq(get_int(q, "n"), i);
        }
        p = call_ok(other, "org.test.Holding", NULL);
        ck_assert_int_eq(get_int(p, "most"), 3);
}
END_TEST

START_TEST(test_held_calls_disconnect) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new(), *other = client_new();
        _cleanup_json_ json_object *p = NULL, *q = NULL;

        /* A client that goes away with calls held: the disconnect handler finds them all. */
        send_hold(c, 1);
        send_call(c, "org.test.Echo", "{\"text\":\"between\"}", 0);
        send_hold(c, 2);
        send_hold(c, 3);
        wait_held(other, 3);
        c = varlink_client_free(c);
        p = wait_disconnects(other, 1);
        wait_logged(other, "held-dropped:3;");
        q = call_ok(other, "org.test.Holding", NULL);
        ck_assert_int_eq(get_int(q, "holding"), 0);
}
END_TEST

START_TEST(test_deferred_reply) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new(), *other = client_new();
        _cleanup_json_ json_object *p = NULL, *q = NULL, *r = NULL;
        _cleanup_free_ char *log = NULL;
        json_object *v;

        /* A call answered later (a long timer), with a second call pipelined behind it. */
        send_call(c, "org.test.Defer", "{\"delay_ms\":600000}", 0);
        send_call(c, "org.test.Echo", "{\"text\":\"behind\"}", 0);
        wait_logged(other, "defer-start;");

        /* Other connections are served meanwhile; this one also fires the timer now. */
        expect_echo(other, "other");
        r = call_ok(other, "org.test.Release", NULL);

        p = read_ok(c, NULL);
        ck_assert(json_object_object_get_ex(p, "deferred", &v) && json_object_get_boolean(v));
        q = read_ok(c, NULL);
        ck_assert_str_eq(get_string(q, "text"), "behind");

        /* The pipelined call was not even dispatched before the deferred reply went out. */
        log = server_log(other);
        ck_assert_msg(strstr(log, "defer-start;echo:other;defer-reply;echo:behind;"), "log: %s", log);
}
END_TEST

START_TEST(test_deferred_reply_short_timer) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new();
        _cleanup_json_ json_object *p = NULL, *q = NULL;
        json_object *v;

        send_call(c, "org.test.Defer", "{\"delay_ms\":20}", 0);
        send_call(c, "org.test.Echo", "{\"text\":\"next\"}", 0);
        p = read_ok(c, NULL);
        ck_assert(json_object_object_get_ex(p, "deferred", &v) && json_object_get_boolean(v));
        q = read_ok(c, NULL);
        ck_assert_str_eq(get_string(q, "text"), "next");
}
END_TEST

START_TEST(test_more) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new();
        _cleanup_json_ json_object *e = NULL;
        _cleanup_free_ char *error = NULL;

        send_call(c, "org.test.Count", "{\"n\":5}", VARLINK_CLIENT_MORE);
        for (int i = 0; i <= 5; i++) {
                _cleanup_json_ json_object *p = NULL;
                bool continues = false;

                p = read_ok(c, &continues);
                ck_assert_int_eq(get_int(p, "i"), i);
                /* continues: true on every reply but the last */
                ck_assert_msg(continues == (i < 5), "reply %d continues=%d", i, continues);
        }

        /* No intermediate replies at all: just the final one. */
        send_call(c, "org.test.Count", "{\"n\":0}", VARLINK_CLIENT_MORE);
        {
                _cleanup_json_ json_object *p = NULL;
                bool continues = true;

                p = read_ok(c, &continues);
                ck_assert(!continues);
                ck_assert_int_eq(get_int(p, "i"), 0);
        }

        /* Without "more" the method cannot stream (its notify fails) and says so. */
        e = call(c, "org.test.Count", "{\"n\":3}", &error);
        ck_assert_str_eq(error, VARLINK_ERROR_EXPECTED_MORE);
        expect_echo(c, "after streams");
}
END_TEST

/* Output the peer has not read yet is counted, and the drained handler runs once it has
 * all been written: a server holds back what it would push until then. */
START_TEST(test_output_drained) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new(), *stats = client_new();
        _cleanup_json_ json_object *first = NULL, *last = NULL;
        _cleanup_free_ char *log = NULL;
        bool continues;

        send_call(c, "org.test.Big", NULL, VARLINK_CLIENT_MORE);
        wait_logged(stats, "big-queued:1");
        log = server_log(stats);
        ck_assert_ptr_null(strstr(log, "drained"));

        first = read_ok(c, &continues);
        ck_assert(continues);
        ck_assert_uint_eq(strlen(get_string(first, "text")), (4U << 20) - 1);
        last = read_ok(c, &continues);
        ck_assert(!continues);
        ck_assert_str_eq(get_string(last, "text"), "end");
        wait_logged(stats, "drained");
}
END_TEST

START_TEST(test_oneway) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new();
        _cleanup_json_ json_object *p = NULL, *s = NULL;

        send_call(c, "org.test.Echo", "{\"text\":\"one\"}", VARLINK_CLIENT_ONEWAY);
        send_call(c, "org.test.Echo", "{\"text\":\"way\"}", VARLINK_CLIENT_ONEWAY);
        /* The first reply on the connection is the normal call's: the others got none. */
        p = call_ok(c, "org.test.Echo", "{\"text\":\"two\"}");
        ck_assert_str_eq(get_string(p, "text"), "two");

        s = call_ok(c, "org.test.Stats", NULL);
        ck_assert_int_eq(get_int(s, "oneway"), 2);
        ck_assert_msg(strstr(get_string(s, "log"), "echo:one;echo:way;echo:two;"), "log: %s",
                      get_string(s, "log"));
}
END_TEST

START_TEST(test_bad_messages_close_connection) {
        static const char *const bad[] = {
                "{not json",
                "[]",
                "{\"parameters\":{}}",
                "{\"method\":1}",
                "{\"method\":\"org.test.Echo\",\"parameters\":[]}",
                "{\"method\":\"org.test.Echo\",\"parameters\":{\"text\":\"x\"},\"bogus\":true}",
                "{\"method\":\"org.test.Echo\",\"parameters\":{\"text\":\"x\"},\"more\":\"yes\"}",
                "{\"method\":\"org.test.Echo\",\"parameters\":{\"text\":\"x\"},\"more\":true,\"oneway\":true}",
                "{\"method\":\"org.test.Echo\",\"parameters\":{\"text\":\"\xff\"}}",
        };
        _cleanup_(varlink_client_freep) VarlinkClient *good = client_new(), *stats = client_new();
        _cleanup_json_ json_object *s = NULL;

        expect_echo(good, "before");
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_close_ int fd = raw_connect();

                raw_send(fd, bad[i], strlen(bad[i]) + 1); /* with its NUL */
                raw_expect_closed(fd);
                /* Another connection, opened before, keeps working. */
                expect_echo(good, "still fine");
        }
        s = wait_disconnects(stats, (int64_t) ELEMENTSOF(bad));
        ck_assert_int_eq(get_int(s, "disconnects"), (int64_t) ELEMENTSOF(bad));
        ck_assert_int_eq(get_int(s, "connections"), 2);
}
END_TEST

static void expect_plain(VarlinkClient *c, const char *params, const char *text, const char *path) {
        _cleanup_json_ json_object *p = call_ok(c, "org.test.Plain", params);

        ck_assert_str_eq(get_string(p, "text"), text);
        ck_assert_str_eq(get_string(p, "path"), path);
}

/* Sends a message as it is (and its NUL) and expects the answer of org.test.Plain. */
static void expect_raw_path(int fd, VarlinkClient *raw, const char *message, const char *text, const char *path) {
        _cleanup_json_ json_object *p = NULL;

        raw_send(fd, message, strlen(message) + 1);
        p = read_ok(raw, NULL);
        ck_assert_str_eq(get_string(p, "text"), text);
        ck_assert_str_eq(get_string(p, "path"), path);
}

START_TEST(test_plain_calls) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new(), *raw = NULL;
        _cleanup_json_ json_object *p = NULL, *q = NULL, *r = NULL;
        _cleanup_free_ char *error = NULL;
        json_object *v;
        int fd = raw_connect();

        /* Read in place, answered with fields written without json-c, escapes included. */
        expect_plain(c, "{\"text\":\"hello\"}", "hello", "plain");
        expect_plain(c, "{\"text\":\"\xc3\xa9t\xc3\xa9\"}", "\xc3\xa9t\xc3\xa9", "plain");
        p = call_ok(c, "org.test.Plain", "{\"text\":\"odd\"}");
        ck_assert(json_object_object_get_ex(p, "text", &v));
        ck_assert_int_eq(json_object_get_string_len(v), (int) sizeof(odd_text) - 1);
        ck_assert_mem_eq(json_object_get_string(v), odd_text, sizeof(odd_text) - 1);
        ck_assert_int_eq(json_object_get_uint64(json_object_object_get(p, "n")), UINT64_MAX);

        /* Anything else takes the general path, with the same answers. */
        expect_plain(c, "{\"text\":\"a \\\"quote\\\"\"}", "a \"quote\"", "general");
        q = call(c, "org.test.Plain", "{\"text\":\"x\",\"extra\":1}", &error);
        ck_assert_str_eq(error, VARLINK_ERROR_INVALID_PARAMETER);
        ck_assert_str_eq(get_string(q, "parameter"), "extra");
        free(error);
        r = call(c, "org.test.Plain", "{\"text\":5}", &error);
        ck_assert_str_eq(error, VARLINK_ERROR_INVALID_PARAMETER);

        /* Spaces anywhere are still plain; a repeated name, "more" or "oneway" are not. */
        ck_assert_int_eq(varlink_client_new_fd(fd, &raw), 0);
        expect_raw_path(fd, raw, " { \"parameters\" : { \"text\" : \"ws\" } ,\n\"method\":\"org.test.Plain\" } ",
                        "ws", "plain");
        expect_raw_path(fd, raw, "{\"method\":\"org.test.Plain\",\"parameters\":{\"text\":\"a\",\"text\":\"b\"}}", "b",
                        "general");
        expect_raw_path(fd, raw, "{\"method\":\"org.test.Plain\",\"more\":true,\"parameters\":{\"text\":\"m\"}}", "m",
                        "general");
        expect_raw_path(fd, raw, "{\"method\":\"org.test.Plain\",\"oneway\":false,\"parameters\":{\"text\":\"n\"}}",
                        "n", "general");
        /* Not strict JSON: closed, as on the general path. */
        RAW_SEND(fd, "{\"method\":\"org.test.Plain\",\"parameters\":{\"text\":\"\x01\"}}\0");
        expect_closed(raw);
}
END_TEST

START_TEST(test_reply_before_close) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_json_ json_object *p = NULL;
        int fd = raw_connect();

        /* A good call and garbage in one write: the good one is answered, then the close. */
        ck_assert_int_eq(varlink_client_new_fd(fd, &c), 0);
        RAW_SEND(fd, "{\"method\":\"org.test.Echo\",\"parameters\":{\"text\":\"first\"}}\0garbage\0");
        p = read_ok(c, NULL);
        ck_assert_str_eq(get_string(p, "text"), "first");
        expect_closed(c);
}
END_TEST

START_TEST(test_method_error_closes) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new(), *other = client_new();

        send_call(c, "org.test.Fail", NULL, 0);
        expect_closed(c);
        expect_echo(other, "unaffected");
}
END_TEST

START_TEST(test_stalled_client) {
        _cleanup_(varlink_client_freep) VarlinkClient *stalled = NULL, *c = client_new();
        _cleanup_json_ json_object *p = NULL;
        int fd = raw_connect();

        ck_assert_int_eq(varlink_client_new_fd(fd, &stalled), 0);
        /* Half a message, and then nothing for a while. */
        RAW_SEND(fd, "{\"method\":\"org.test.Echo\",\"para");
        for (int i = 0; i < 20; i++)
                expect_echo(c, "not blocked");
        /* The rest arrives later and is answered. */
        RAW_SEND(fd, "meters\":{\"text\":\"late\"}}");
        expect_echo(c, "still not blocked");
        RAW_SEND(fd, "\0");
        p = read_ok(stalled, NULL);
        ck_assert_str_eq(get_string(p, "text"), "late");
}
END_TEST

START_TEST(test_message_split_byte_by_byte) {
        static const char msg[] = "{\"method\":\"org.test.Echo\",\"parameters\":{\"text\":\"slow\"}}";
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_json_ json_object *p = NULL;
        int fd = raw_connect();

        ck_assert_int_eq(varlink_client_new_fd(fd, &c), 0);
        for (size_t i = 0; i < sizeof(msg); i++) /* the NUL too */
                raw_send(fd, msg + i, 1);
        p = read_ok(c, NULL);
        ck_assert_str_eq(get_string(p, "text"), "slow");
}
END_TEST

START_TEST(test_disconnect_handler) {
        _cleanup_(varlink_client_freep) VarlinkClient *stats = client_new();
        _cleanup_json_ json_object *s = NULL, *s2 = NULL;
        _cleanup_free_ char *log = NULL;

        for (int i = 0; i < 3; i++) {
                VarlinkClient *c = client_new();
                expect_echo(c, "bye");
                varlink_client_free(c);
        }
        s = wait_disconnects(stats, 3);
        ck_assert_int_eq(get_int(s, "disconnects"), 3);
        ck_assert_int_eq(get_int(s, "connections"), 1);

        /* A client that leaves while its call is deferred: the handler runs, the server
         * forgets the call, and the timer finds nothing to answer. */
        {
                VarlinkClient *c = client_new();
                send_call(c, "org.test.Defer", "{\"delay_ms\":600000}", 0);
                /* Wait until the server holds the call, or the close could come first. */
                wait_logged(stats, "defer-start;");
                varlink_client_free(c);
        }
        s2 = wait_disconnects(stats, 4);
        json_object_put(call_ok(stats, "org.test.Release", NULL));
        free(log);
        log = server_log(stats);
        ck_assert_msg(strstr(log, "defer-start;defer-dropped;"), "log: %s", log);
        ck_assert_int_eq(get_int(s2, "connections"), 1);
}
END_TEST

START_TEST(test_many_connections) {
        enum { N = 50 };
        VarlinkClient *c[N];

        for (int i = 0; i < N; i++)
                c[i] = client_new();
        /* Interleaved calls on all of them. */
        for (int round = 0; round < 3; round++)
                for (int i = 0; i < N; i++)
                        send_call(c[i], "org.test.Echo", "{\"text\":\"x\",\"n\":1}", 0);
        for (int i = N - 1; i >= 0; i--)
                for (int round = 0; round < 3; round++) {
                        _cleanup_json_ json_object *p = read_ok(c[i], NULL);
                        ck_assert_int_eq(get_int(p, "n"), 1);
                }
        for (int i = 0; i < N; i++)
                varlink_client_free(c[i]);
}
END_TEST

/* With the limit set to 1024 bytes. */
START_TEST(test_oversize_message) {
        _cleanup_(varlink_client_freep) VarlinkClient *good = client_new();
        static const char head[] = "{\"method\":\"org.test.Echo\",\"parameters\":{\"text\":\"";
        static const char tail[] = "\"}}";
        char msg[2048];

        /* Exactly at the limit: answered. */
        {
                _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
                _cleanup_json_ json_object *p = NULL;
                int fd = raw_connect();
                size_t n = 1024, fill = n - (sizeof(head) - 1) - (sizeof(tail) - 1);

                ck_assert_int_eq(varlink_client_new_fd(fd, &c), 0);
                memcpy(msg, head, sizeof(head) - 1);
                memset(msg + sizeof(head) - 1, 'a', fill);
                memcpy(msg + n - (sizeof(tail) - 1), tail, sizeof(tail)); /* with the NUL */
                raw_send(fd, msg, n + 1);
                p = read_ok(c, NULL);
                ck_assert_uint_eq(strlen(get_string(p, "text")), fill);
        }
        /* One byte over: closed. */
        {
                _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
                int fd = raw_connect();
                size_t n = 1025, fill = n - (sizeof(head) - 1) - (sizeof(tail) - 1);

                ck_assert_int_eq(varlink_client_new_fd(fd, &c), 0);
                memcpy(msg, head, sizeof(head) - 1);
                memset(msg + sizeof(head) - 1, 'a', fill);
                memcpy(msg + n - (sizeof(tail) - 1), tail, sizeof(tail));
                raw_send(fd, msg, n + 1);
                expect_closed(c);
        }
        /* An endless message without its NUL: closed once it passes the limit. */
        {
                _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
                int fd = raw_connect();

                ck_assert_int_eq(varlink_client_new_fd(fd, &c), 0);
                memset(msg, ' ', sizeof(msg));
                msg[0] = '{';
                raw_send(fd, msg, sizeof(msg));
                expect_closed(c);
        }
        /* Through the client as well. */
        {
                _cleanup_(varlink_client_freep) VarlinkClient *c = client_new();
                char params[1200];

                snprintf(params, sizeof(params), "{\"text\":\"%01100d\"}", 0);
                send_call(c, "org.test.Echo", params, 0);
                expect_closed(c);
        }
        expect_echo(good, "small is fine");
}
END_TEST

/* Bounds: each test starts a server with the limits it is about. */

#define NO_LIMITS                                                                       \
        ((VarlinkServerLimits) { .idle_timeout = UINT64_MAX, .message_timeout = UINT64_MAX })

static void setup_none(void) {
}

static VarlinkClient *kept_client_new(void) {
        VarlinkClient *c = client_new();

        json_object_put(call_ok(c, "org.test.Keep", NULL));
        return c;
}

/* Reads one message from a raw connection, with a deadline; the reply must hold what. */
static void raw_expect_reply(int fd, const char *what) {
        uint64_t deadline = now_usec() + CALL_TIMEOUT;
        static char buf[64 * 1024];
        size_t n = 0;

        while (n == 0 || !memchr(buf, '\0', n)) {
                ssize_t k = recv(fd, buf + n, sizeof(buf) - 1 - n, MSG_DONTWAIT);
                ck_assert_msg(k != 0, "connection closed");
                ck_assert_msg(k > 0 || errno == EAGAIN || errno == EINTR, "recv: %m");
                if (k > 0)
                        n += (size_t) k;
                ck_assert_msg(now_usec() < deadline && n < sizeof(buf) - 1, "no reply");
                if (k < 0)
                        (void) poll(&(struct pollfd) { .fd = fd, .events = POLLIN }, 1, 100);
        }
        buf[n] = '\0';
        ck_assert_msg(strstr(buf, what), "reply %s without %s", buf, what);
}

/* A connection the server may not close as idle: it has begun a message and not ended
 * it. The call before it in the same send() is answered, so the server has accepted the
 * connection and read the beginning. */
static int busy_connect(void) {
        static const char call_and_part[] =
                "{\"method\":\"org.test.Echo\",\"parameters\":{\"text\":\"busy\"}}\0{\"method\":";
        int fd = raw_connect();

        raw_send(fd, call_and_part, sizeof(call_and_part) - 1);
        raw_expect_reply(fd, "busy");
        return fd;
}

static int64_t stats_int(VarlinkClient *stats, const char *key) {
        _cleanup_json_ json_object *p = call_ok(stats, "org.test.Stats", NULL);
        return get_int(p, key);
}

START_TEST(test_idle_timeout) {
        VarlinkServerLimits l = NO_LIMITS;
        _cleanup_(varlink_client_freep) VarlinkClient *idle = NULL, *kept = NULL, *waiting = NULL;
        _cleanup_json_ json_object *p = NULL;

        l.idle_timeout = 300 * USEC_PER_MSEC;
        server_start_with(0, &l);
        kept = kept_client_new();
        idle = client_new();
        expect_echo(idle, "soon idle");
        waiting = client_new();
        /* A call in flight is not idleness, for longer than the time-out. */
        send_call(waiting, "org.test.Defer", "{\"delay_ms\":1500}", 0);
        expect_closed(idle);
        p = read_ok(waiting, NULL);
        /* Neither was the long-lived connection, silent all along, closed. */
        expect_echo(kept, "still here");
        /* The one whose call was answered is idle now. */
        expect_closed(waiting);
}
END_TEST

START_TEST(test_message_timeout) {
        VarlinkServerLimits l = NO_LIMITS;
        _cleanup_(varlink_client_freep) VarlinkClient *good = NULL;
        _cleanup_close_ int fd = -EBADF;
        char msg[256];
        uint64_t begin = now_usec();
        size_t sent = 0;

        l.message_timeout = 500 * USEC_PER_MSEC;
        server_start_with(0, &l);
        good = client_new();
        /* One byte every 100 ms of a 200-byte call, 20 s: closed after the time-out, while
         * the other client's calls are answered all along. */
        snprintf(msg, sizeof(msg), "{\"method\":\"org.test.Echo\",\"parameters\":{\"text\":\"%0150d\"}}", 0);
        fd = raw_connect();
        for (; sent < strlen(msg); sent++) {
                if (send(fd, msg + sent, 1, MSG_NOSIGNAL) < 0) {
                        ck_assert_msg(errno == EPIPE || errno == ECONNRESET, "send: %m");
                        break;
                }
                if (recv(fd, &(char) { 0 }, 1, MSG_DONTWAIT) == 0)
                        break;
                expect_echo(good, "served");
                (void) poll(NULL, 0, 100);
        }
        printf("drip: closed after %zu of %zu bytes, %" PRIu64 " ms\n", sent, strlen(msg),
               (now_usec() - begin) / USEC_PER_MSEC);
        ck_assert_uint_lt(sent, strlen(msg));
        raw_expect_closed(fd);
        expect_echo(good, "still served");
}
END_TEST

START_TEST(test_input_budget) {
        VarlinkServerLimits l = NO_LIMITS;
        _cleanup_(varlink_client_freep) VarlinkClient *stats = NULL;
        _cleanup_close_ int a = -EBADF, b = -EBADF;
        static char part[40 * 1024];
        uint64_t deadline;

        l.max_input = 64 * 1024;
        server_start_with(0, &l);
        stats = client_new();
        snprintf(part, sizeof(part), "{\"method\":\"org.test.Echo\",\"parameters\":{\"text\":\"");
        memset(part + strlen(part), 'a', sizeof(part) - strlen(part));

        a = raw_connect();
        raw_send(a, part, sizeof(part));
        deadline = now_usec() + CALL_TIMEOUT;
        while (stats_int(stats, "held") < (int64_t) sizeof(part)) {
                ck_assert_msg(now_usec() < deadline, "the first part is not buffered");
                (void) poll(NULL, 0, 10);
        }
        /* The second part takes the total over 64 KiB: that connection goes, the first stays. */
        b = raw_connect();
        raw_send(b, part, sizeof(part));
        raw_expect_closed(b);
        ck_assert_int_eq(stats_int(stats, "held"), (int64_t) sizeof(part));
        raw_send(a, "\"}}", 4); /* with the NUL */
        raw_expect_reply(a, "aaaa");
        ck_assert_int_eq(stats_int(stats, "held"), 0);
}
END_TEST

/* Out of descriptors, the server stops accepting for a while instead of trying again on
 * every wakeup (the listening socket stays readable): its loop runs a few times in half a
 * second, where a spinning one runs hundreds of thousands of times. A flooder in another
 * process holds busy connections, so that none can be closed to make room. */
START_TEST(test_accept_pauses_when_out_of_fds) {
        VarlinkServerLimits l = NO_LIMITS;
        _cleanup_(varlink_client_freep) VarlinkClient *stats = NULL;
        struct rlimit rl, low;
        int go[2], quit[2], status;
        int64_t iterations, connections;
        uint64_t deadline;
        pid_t pid;

        server_start_with(0, &l);
        stats = kept_client_new();
        ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(quit, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char c;

                close(quit[1]);
                close(go[1]);
                (void) read(go[0], &c, 1); /* once the server is short of descriptors */
                for (unsigned i = 0; i < 40; i++) {
                        int fd = raw_connect();
                        raw_send(fd, "{\"method\":", 10);
                }
                (void) read(quit[0], &c, 1); /* until the test closes its end */
                _exit(0);
        }
        close(quit[0]);
        close(go[0]);

        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        low = (struct rlimit) { .rlim_cur = tests_count_fds() + 4, .rlim_max = rl.rlim_max };
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
        ck_assert_int_eq(write(go[1], "g", 1), 1);
        /* The stats client and the four connections there is room for. */
        deadline = now_usec() + CALL_TIMEOUT;
        while (stats_int(stats, "connections") < 5) {
                ck_assert_msg(now_usec() < deadline, "the server does not accept up to its limit");
                (void) poll(NULL, 0, 10);
        }
        iterations = stats_int(stats, "iterations");
        (void) poll(NULL, 0, 500);
        iterations = stats_int(stats, "iterations") - iterations;
        connections = stats_int(stats, "connections");
        printf("out of descriptors with %" PRIi64 " connections: %" PRIi64 " event loop iterations in 500 ms\n",
               connections, iterations);
        ck_assert_int_lt(iterations, 1000);
        ck_assert_int_lt(connections, 1 + 40);

        /* The flooder goes: its connections close, and accepting goes on. */
        close(quit[1]);
        close(go[1]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        {
                _cleanup_(varlink_client_freep) VarlinkClient *c = client_new();
                expect_echo(c, "after the flood");
        }
}
END_TEST

START_TEST(test_connection_limit) {
        VarlinkServerLimits l = NO_LIMITS;
        _cleanup_(varlink_client_freep) VarlinkClient *kept = NULL, *newer = NULL;
        VarlinkClient *idle[3];
        int busy[3];
        _cleanup_close_ int late = -EBADF;

        l.max_connections = 4;
        server_start_with(0, &l);
        kept = kept_client_new();
        for (size_t i = 0; i < ELEMENTSOF(idle); i++) {
                idle[i] = client_new();
                expect_echo(idle[i], "idle");
        }
        /* At the limit a new client is served: the connection idle longest makes room. */
        newer = client_new();
        expect_echo(newer, "newer");
        expect_closed(idle[0]);

        /* Connections that are busy take the place of the idle ones, and then nobody new
         * gets in (the kernel keeps it waiting) until one of them closes. */
        for (size_t i = 0; i < ELEMENTSOF(busy); i++)
                busy[i] = busy_connect();
        late = raw_connect();
        RAW_SEND(late, "{\"method\":\"org.test.Echo\",\"parameters\":{\"text\":\"late\"}}\0");
        ck_assert_int_eq(stats_int(kept, "connections"), 4);
        ck_assert_int_eq(poll(&(struct pollfd) { .fd = late, .events = POLLIN }, 1, 300), 0);
        close(busy[0]);
        raw_expect_reply(late, "late");

        for (size_t i = 1; i < ELEMENTSOF(busy); i++)
                close(busy[i]);
        for (size_t i = 0; i < ELEMENTSOF(idle); i++)
                varlink_client_free(idle[i]);
}
END_TEST

/* A test case on a fresh server per test, started by setup. */
static TCase *server_tcase(Suite *s, const char *name, void (*setup)(void)) {
        TCase *tc = tcase_create(name);

        tcase_add_unchecked_fixture(tc, make_tmpdir, remove_tmpdir);
        tcase_add_checked_fixture(tc, setup, teardown_server);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);
        return tc;
}

static Suite *regular_suite(void) {
        Suite *s = suite_create("varlink-server");
        TCase *tc;

        tc = server_tcase(s, "server", setup_default);
        tcase_add_test(tc, test_call_reply);
        tcase_add_test(tc, test_get_info);
        tcase_add_test(tc, test_interface_description);
        tcase_add_test(tc, test_method_not_found);
        tcase_add_test(tc, test_invalid_parameter);
        tcase_add_test(tc, test_dispatch_returns_after_answering);
        tcase_add_test(tc, test_error_returns);
        tcase_add_test(tc, test_reply_no_memory);
        tcase_add_test(tc, test_deferred_reply_no_memory);
        tcase_add_test(tc, test_pipelined_in_order);
        tcase_add_test(tc, test_held_calls_in_order);
        tcase_add_test(tc, test_held_calls_bounded);
        tcase_add_test(tc, test_held_calls_bounded_size);
        tcase_add_test(tc, test_held_calls_disconnect);
        tcase_add_test(tc, test_deferred_reply);
        tcase_add_test(tc, test_deferred_reply_short_timer);
        tcase_add_test(tc, test_more);
        tcase_add_test(tc, test_output_drained);
        tcase_add_test(tc, test_oneway);
        tcase_add_test(tc, test_bad_messages_close_connection);
        tcase_add_test(tc, test_reply_before_close);
        tcase_add_test(tc, test_plain_calls);
        tcase_add_test(tc, test_method_error_closes);
        tcase_add_test(tc, test_stalled_client);
        tcase_add_test(tc, test_message_split_byte_by_byte);
        tcase_add_test(tc, test_disconnect_handler);
        tcase_add_test(tc, test_many_connections);

        tc = server_tcase(s, "server-limits", setup_small);
        tcase_add_test(tc, test_oversize_message);

        /* Each test starts the server with the bounds it is about. */
        tc = server_tcase(s, "server-bounds", setup_none);
        tcase_add_test(tc, test_idle_timeout);
        tcase_add_test(tc, test_message_timeout);
        tcase_add_test(tc, test_input_budget);
        tcase_add_test(tc, test_connection_limit);
        tcase_add_test(tc, test_accept_pauses_when_out_of_fds);

        return s;
}

int main(void) {
        return tests_run(regular_suite(), CK_FORK_GETENV);
}
