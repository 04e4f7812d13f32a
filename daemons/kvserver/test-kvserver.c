/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Integration tests: the real mrkv-kvserver ($MRKV_TEST_KVSERVER) on a Unix socket in a
 * temporary directory per test, spoken to with raw Varlink (lib/varlink's blocking
 * client, and plain sockets for what a well-behaved client would never send). */
#include <check.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "address.h"
#include "config.h"
#include "macro.h"
#include "test-daemon.h"
#include "varlink-client.h"

#define CALL_TIMEOUT (5 * USEC_PER_SEC)

static const char *kvserver_binary;
static char *test_dir; /* this test's, removed by test_run_suite() */
static TestDaemon server;

static void setup(void) {
        _cleanup_free_ char *state = NULL;

        kvserver_binary = test_program("MRKV_TEST_KVSERVER");
        test_dir = test_dir_new();
        /* The servers keep their keys in this test's directory, inherited through the
         * environment as systemd passes it. */
        ck_assert_int_gt(asprintf(&state, "%s/state", test_dir), 0);
        ck_assert_int_eq(setenv("STATE_DIRECTORY", state, 1), 0);
}

static void start_with(const TestDaemonOptions *o) {
        test_daemon_start(&server, kvserver_binary, test_dir, "kv.sock", o);
}

static void start(const char *const *args) {
        start_with(&(TestDaemonOptions) { .args = args });
}

/* Every test ends with a clean shutdown: SIGTERM gives exit 0 and removes the socket. */
static void stop(void) {
        struct stat st;

        ck_assert_int_eq(test_daemon_stop(&server), 0);
        ck_assert_int_eq(stat(server.socket_path, &st), -1);
        ck_assert_int_eq(errno, ENOENT);
}

static void teardown(void) {
        if (server.pid > 0)
                stop();
        free(test_dir);
}

static VarlinkClient *client_new(void) {
        VarlinkClient *c = NULL;

        ck_assert_int_eq(varlink_client_connect(server.address, &c), 0);
        return c;
}

/* Calls method with parameters given as JSON text; returns the error name (NULL for
 * success, a static copy) and the reply parameters in *ret (if not NULL). */
static const char *call(VarlinkClient *c, const char *method, const char *params_json, json_object **ret) {
        static char error_copy[256];
        _cleanup_json_ json_object *params = NULL, *reply = NULL;
        const char *error = NULL;

        params = json_tokener_parse(params_json);
        ck_assert_msg(params, "bad test JSON: %s", params_json);
        ck_assert_int_eq(varlink_client_call(c, method, params, CALL_TIMEOUT, &reply, &error), 0);
        if (ret)
                *ret = TAKE_PTR(reply);
        if (!error)
                return NULL;
        snprintf(error_copy, sizeof(error_copy), "%s", error);
        return error_copy;
}

static json_object *put_parameters(const char *key, const char *value, uint64_t version) {
        json_object *p = NULL;

        ck_assert_int_eq(json_build_object(&p,
                                           "key", json_object_new_string(key),
                                           "value", json_object_new_string(value),
                                           "version", json_object_new_uint64(version),
                                           NULL),
                         0);
        return p;
}

static json_object *get_parameters(const char *key) {
        json_object *p = NULL;

        ck_assert_int_eq(json_build_object(&p, "key", json_object_new_string(key), NULL), 0);
        return p;
}

static void put_ok(VarlinkClient *c, const char *key, const char *value, uint64_t version) {
        _cleanup_json_ json_object *p = put_parameters(key, value, version), *reply = NULL;
        const char *error = NULL;

        ck_assert_int_eq(varlink_client_call(c, "org.mrkv.KV.Put", p, CALL_TIMEOUT, &reply, &error), 0);
        ck_assert_msg(!error, "Put %s failed: %s", key, error);
        ck_assert_int_eq(json_object_object_length(reply), 0);
}

static const char *put(VarlinkClient *c, const char *key, const char *value, uint64_t version) {
        static char error_copy[256];
        _cleanup_json_ json_object *p = put_parameters(key, value, version), *reply = NULL;
        const char *error = NULL;

        ck_assert_int_eq(varlink_client_call(c, "org.mrkv.KV.Put", p, CALL_TIMEOUT, &reply, &error), 0);
        if (!error)
                return NULL;
        snprintf(error_copy, sizeof(error_copy), "%s", error);
        return error_copy;
}

static void get_expect(VarlinkClient *c, const char *key, const char *value, uint64_t version) {
        _cleanup_json_ json_object *p = get_parameters(key), *reply = NULL;
        json_object *v;
        const char *error = NULL;

        ck_assert_int_eq(varlink_client_call(c, "org.mrkv.KV.Get", p, CALL_TIMEOUT, &reply, &error), 0);
        ck_assert_msg(!error, "Get %s failed: %s", key, error);
        ck_assert(json_object_object_get_ex(reply, "value", &v));
        ck_assert(json_object_is_type(v, json_type_string));
        ck_assert_str_eq(json_object_get_string(v), value);
        ck_assert(json_object_object_get_ex(reply, "version", &v));
        ck_assert(json_object_is_type(v, json_type_int));
        ck_assert_uint_eq(json_object_get_uint64(v), version);
        ck_assert_int_eq(json_object_object_length(reply), 2);
}

static const char *get_error(VarlinkClient *c, const char *key) {
        static char error_copy[256];
        _cleanup_json_ json_object *p = get_parameters(key), *reply = NULL;
        const char *error = NULL;

        ck_assert_int_eq(varlink_client_call(c, "org.mrkv.KV.Get", p, CALL_TIMEOUT, &reply, &error), 0);
        ck_assert_msg(error, "Get %s succeeded", key);
        snprintf(error_copy, sizeof(error_copy), "%s", error);
        return error_copy;
}

/* Reads one NUL-terminated message from a raw socket: 1 and a malloc'd string, 0 when the
 * peer closed the connection, -ETIMEDOUT. The tests have one call in flight per raw
 * socket, so whatever arrives belongs to this message. */
static int raw_read(int fd, char **ret) {
        uint64_t deadline = usec_add(now_usec(), CALL_TIMEOUT);
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;

        *ret = NULL;
        for (;;) {
                char chunk[4096], *p;
                ssize_t n;
                int r;

                r = fd_wait_until(fd, POLLIN, deadline);
                ck_assert_int_ge(r, 0);
                if (r == 0)
                        return -ETIMEDOUT;
                n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (n < 0 && errno == ECONNRESET)
                        return 0;
                ck_assert_msg(n >= 0, "recv: %m");
                if (n == 0)
                        return 0;
                p = realloc(buf, size + (size_t) n + 1);
                ck_assert_ptr_nonnull(p);
                buf = p;
                memcpy(buf + size, chunk, (size_t) n);
                size += (size_t) n;
                buf[size] = '\0';
                if (memchr(buf, '\0', size)) {
                        *ret = TAKE_PTR(buf);
                        return 1;
                }
        }
}

/* Writes all of data; a peer that hangs up first counts as success, since a server may
 * hang up on a bad message before it is all sent. */
static void raw_write(int fd, const void *data, size_t size) {
        const char *p = data;

        while (size > 0) {
                ssize_t n = send(fd, p, size, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        ck_assert_msg(fd_wait_until(fd, POLLOUT, usec_add(now_usec(), CALL_TIMEOUT)) > 0,
                                      "the server reads nothing");
                        continue;
                }
                if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
                        return;
                ck_assert_msg(n >= 0, "send: %m");
                p += n;
                size -= (size_t) n;
        }
}

static int raw_connect(void) {
        Address a;
        int fd;

        ck_assert_int_eq(address_parse(server.address, &a), 0);
        fd = address_connect(&a, false);
        address_done(&a);
        ck_assert_int_ge(fd, 0);
        return fd;
}

START_TEST(test_put_get) {
        VarlinkClient *c;

        start(NULL);
        c = client_new();

        ck_assert_str_eq(get_error(c, "k"), "org.mrkv.KV.NoKey");
        ck_assert_str_eq(put(c, "k", "v", 1), "org.mrkv.KV.NoKey");
        ck_assert_str_eq(put(c, "k", "v", 7), "org.mrkv.KV.NoKey");
        put_ok(c, "k", "v1", 0);
        get_expect(c, "k", "v1", 1);
        ck_assert_str_eq(put(c, "k", "x", 0), "org.mrkv.KV.VersionMismatch");
        ck_assert_str_eq(put(c, "k", "x", 2), "org.mrkv.KV.VersionMismatch");
        put_ok(c, "k", "v2", 1);
        get_expect(c, "k", "v2", 2);
        ck_assert_str_eq(put(c, "k", "x", 1), "org.mrkv.KV.VersionMismatch");
        get_expect(c, "k", "v2", 2);

        /* Unicode survives the round trip, as do JSON escapes and the empty key. */
        put_ok(c, "schlüssel ✓", "wert\n\"quoted\"\t\\ ☃", 0);
        get_expect(c, "schlüssel ✓", "wert\n\"quoted\"\t\\ ☃", 1);
        put_ok(c, "", "", 0);
        get_expect(c, "", "", 1);

        /* Another connection sees the same store: there is no per-client state. */
        VarlinkClient *d = client_new();
        get_expect(d, "k", "v2", 2);
        put_ok(d, "k", "v3", 2);
        get_expect(c, "k", "v3", 3);
        varlink_client_free(d);
        varlink_client_free(c);
        stop();
}
END_TEST

START_TEST(test_big_versions_and_values) {
        const char *args[] = { "--max-value-size", "2M", NULL };
        VarlinkClient *c;
        size_t big = 2 * 1024 * 1024;
        char *value = malloc(big + 1);

        ck_assert_ptr_nonnull(value);
        for (size_t i = 0; i < big; i++)
                value[i] = (char) ('a' + i % 26);
        value[big] = '\0';

        start(args);
        c = client_new();
        put_ok(c, "big", value, 0);
        get_expect(c, "big", value, 1);
        value[0] = 'Z';
        put_ok(c, "big", value, 1);
        get_expect(c, "big", value, 2);
        for (uint64_t v = 2; v < 50; v++)
                put_ok(c, "big", "small", v);
        get_expect(c, "big", "small", 50);
        varlink_client_free(c);
        free(value);
        stop();
}
END_TEST

START_TEST(test_limits) {
        const char *args[] = { "--max-key-size", "16", "--max-value-size", "100", NULL };
        _cleanup_json_ json_object *reply = NULL;
        json_object *max;
        VarlinkClient *c;
        char value[102];

        start(args);
        c = client_new();

        put_ok(c, "0123456789abcdef", "ok", 0);
        ck_assert_str_eq(put(c, "0123456789abcdefg", "v", 0), "org.mrkv.KV.KeyTooLarge");
        ck_assert_str_eq(get_error(c, "0123456789abcdefg"), "org.mrkv.KV.KeyTooLarge");
        /* The limit is in bytes: 6 two-byte characters plus 5 ASCII ones is 17. */
        ck_assert_str_eq(put(c, "ääääää12345", "v", 0), "org.mrkv.KV.KeyTooLarge");

        ck_assert_str_eq(
                call(c, "org.mrkv.KV.Put", "{\"key\":\"k\",\"value\":\"v\",\"version\":0,\"x\":1}", NULL),
                "org.varlink.service.InvalidParameter");

        memset(value, 'v', 100);
        value[100] = '\0';
        put_ok(c, "k", value, 0);
        value[100] = 'v';
        value[101] = '\0';
        ck_assert_str_eq(put(c, "k", value, 1), "org.mrkv.KV.ValueTooLarge");
        ck_assert_str_eq(call(c, "org.mrkv.KV.Put",
                                 "{\"key\":\"k\",\"value\":\"0123456789012345678901234567890123456789"
                                 "01234567890123456789012345678901234567890123456789012345678901\","
                                 "\"version\":1}",
                                 &reply),
                "org.mrkv.KV.ValueTooLarge");
        ck_assert(json_object_object_get_ex(reply, "max", &max));
        ck_assert_uint_eq(json_object_get_uint64(max), 100);
        json_object_put(reply);
        reply = NULL;
        ck_assert_str_eq(call(c, "org.mrkv.KV.Get", "{\"key\":\"0123456789abcdefXYZ\"}", &reply),
                "org.mrkv.KV.KeyTooLarge");
        ck_assert(json_object_object_get_ex(reply, "max", &max));
        ck_assert_uint_eq(json_object_get_uint64(max), 16);

        /* Refused Puts changed nothing. */
        value[100] = '\0';
        get_expect(c, "k", value, 1);
        varlink_client_free(c);
        stop();
}
END_TEST

START_TEST(test_get_info) {
        _cleanup_json_ json_object *reply = NULL;
        json_object *v, *ifaces;
        VarlinkClient *c;
        bool kv = false, service = false;

        start(NULL);
        c = client_new();
        ck_assert_ptr_null(call(c, "org.varlink.service.GetInfo", "{}", &reply));
        ck_assert(json_object_object_get_ex(reply, "product", &v));
        ck_assert_str_eq(json_object_get_string(v), "mrkv-kvserver");
        ck_assert(json_object_object_get_ex(reply, "version", &v));
        ck_assert_str_eq(json_object_get_string(v), PACKAGE_VERSION);
        ck_assert(json_object_object_get_ex(reply, "vendor", &v));
        ck_assert_str_eq(json_object_get_string(v), "mrkv");
        ck_assert(json_object_object_get_ex(reply, "interfaces", &ifaces));
        for (size_t i = 0; i < json_object_array_length(ifaces); i++) {
                const char *name = json_object_get_string(json_object_array_get_idx(ifaces, i));
                kv = kv || streq(name, "org.mrkv.KV");
                service = service || streq(name, "org.varlink.service");
        }
        ck_assert(kv);
        ck_assert(service);
        varlink_client_free(c);
        stop();
}
END_TEST

START_TEST(test_interface_description) {
        _cleanup_json_ json_object *reply = NULL;
        _cleanup_free_ char *expected = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t size = 0;
        json_object *v;
        VarlinkClient *c;

        /* The server carries the very file from the tree. */
        f = fopen(MRKV_SOURCE_ROOT "/interfaces/org.mrkv.KV.varlink", "re");
        ck_assert_ptr_nonnull(f);
        expected = calloc(1, 65536);
        ck_assert_ptr_nonnull(expected);
        size = fread(expected, 1, 65535, f);
        ck_assert_uint_gt(size, 0);

        start(NULL);
        c = client_new();
        ck_assert_ptr_null(call(c, "org.varlink.service.GetInterfaceDescription",
                "{\"interface\":\"org.mrkv.KV\"}", &reply));
        ck_assert(json_object_object_get_ex(reply, "description", &v));
        ck_assert_str_eq(json_object_get_string(v), expected);
        ck_assert_ptr_nonnull(strstr(
                json_object_get_string(v), "method Put(key: string, value: string, version: int) -> ()"));

        json_object_put(reply);
        reply = NULL;
        ck_assert_ptr_null(call(c, "org.varlink.service.GetInterfaceDescription",
                "{\"interface\":\"org.varlink.service\"}", &reply));
        json_object_put(reply);
        reply = NULL;
        ck_assert_str_eq(call(c, "org.varlink.service.GetInterfaceDescription",
                                 "{\"interface\":\"org.example.Nope\"}", NULL),
                "org.varlink.service.InterfaceNotFound");
        varlink_client_free(c);
        stop();
}
END_TEST

START_TEST(test_method_not_found) {
        _cleanup_json_ json_object *reply = NULL;
        json_object *v;
        VarlinkClient *c;

        start(NULL);
        c = client_new();
        ck_assert_str_eq(call(c, "org.mrkv.KV.Delete", "{\"key\":\"k\"}", &reply),
                "org.varlink.service.MethodNotFound");
        ck_assert(json_object_object_get_ex(reply, "method", &v));
        ck_assert_str_eq(json_object_get_string(v), "org.mrkv.KV.Delete");
        ck_assert_str_eq(call(c, "org.example.Other.Get", "{}", NULL), "org.varlink.service.MethodNotFound");
        /* The connection is still good. */
        put_ok(c, "k", "v", 0);
        get_expect(c, "k", "v", 1);
        varlink_client_free(c);
        stop();
}
END_TEST

START_TEST(test_invalid_parameter) {
        static const struct {
                const char *method, *params, *bad;
        } cases[] = {
                { "org.mrkv.KV.Get", "{}", "key" },
                { "org.mrkv.KV.Get", "{\"key\":1}", "key" },
                { "org.mrkv.KV.Get", "{\"key\":null}", "key" },
                { "org.mrkv.KV.Get", "{\"key\":[\"k\"]}", "key" },
                { "org.mrkv.KV.Get", "{\"key\":\"k\",\"extra\":true}", "extra" },
                { "org.mrkv.KV.Get", "{\"key\":\"a\\u0000b\"}", "key" },
                { "org.mrkv.KV.Put", "{\"key\":\"k\",\"value\":\"v\"}", "version" },
                { "org.mrkv.KV.Put", "{\"key\":\"k\",\"version\":0}", "value" },
                { "org.mrkv.KV.Put", "{\"value\":\"v\",\"version\":0}", "key" },
                { "org.mrkv.KV.Put", "{\"key\":\"k\",\"value\":\"v\",\"version\":-1}", "version" },
                { "org.mrkv.KV.Put", "{\"key\":\"k\",\"value\":\"v\",\"version\":\"0\"}", "version" },
                { "org.mrkv.KV.Put", "{\"key\":\"k\",\"value\":\"v\",\"version\":0.5}", "version" },
                { "org.mrkv.KV.Put", "{\"key\":\"k\",\"value\":\"v\",\"version\":true}", "version" },
                { "org.mrkv.KV.Put", "{\"key\":\"k\",\"value\":7,\"version\":0}", "value" },
                { "org.mrkv.KV.Put", "{\"key\":\"k\",\"value\":{},\"version\":0}", "value" },
                { "org.mrkv.KV.Put", "{\"key\":\"k\",\"value\":\"a\\u0000\",\"version\":0}", "value" },
                { "org.mrkv.KV.Put", "{\"key\":\"\\u0000\",\"value\":\"v\",\"version\":0}", "key" },
        };
        VarlinkClient *c;

        start(NULL);
        c = client_new();
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_ json_object *reply = NULL;
                const char *error;
                json_object *v;

                error = call(c, cases[i].method, cases[i].params, &reply);
                ck_assert_msg(error && streq(error, "org.varlink.service.InvalidParameter"), "%s %s gave %s",
                        cases[i].method, cases[i].params, error ?: "success");
                ck_assert(json_object_object_get_ex(reply, "parameter", &v));
                ck_assert_msg(streq(json_object_get_string(v), cases[i].bad),
                        "%s %s: bad parameter %s, not %s", cases[i].method, cases[i].params,
                        json_object_get_string(v), cases[i].bad);
        }
        /* None of them stored anything, and the connection still works. */
        ck_assert_str_eq(get_error(c, "k"), "org.mrkv.KV.NoKey");
        put_ok(c, "k", "v", 0);
        /* The largest version is a fine (mismatching) version. */
        ck_assert_str_eq(call(c, "org.mrkv.KV.Put",
                                 "{\"key\":\"k\",\"value\":\"v\",\"version\":18446744073709551615}", NULL),
                "org.mrkv.KV.VersionMismatch");
        get_expect(c, "k", "v", 1);
        varlink_client_free(c);
        stop();
}
END_TEST

/* Sends a message no server can accept on a fresh raw connection: the server either
 * answers with an error or hangs up, and serves everybody else as before. */
static void check_bad_message(VarlinkClient *bystander, const char *data, size_t size) {
        _cleanup_free_ char *reply = NULL;
        int fd = raw_connect(), r;

        raw_write(fd, data, size);
        r = raw_read(fd, &reply);
        ck_assert_msg(r >= 0, "no answer and no hangup for %.*s", (int) MIN(size, (size_t) 60), data);
        if (r == 1)
                ck_assert_msg(strstr(reply, "\"error\""), "not an error: %s", reply);
        close(fd);

        /* An existing connection and a new one both still work. */
        get_expect(bystander, "k", "v", 1);
        VarlinkClient *c = client_new();
        get_expect(c, "k", "v", 1);
        varlink_client_free(c);
}

#define BAD(s) check_bad_message(c, s, sizeof(s))

START_TEST(test_invalid_messages) {
        VarlinkClient *c;

        start(NULL);
        c = client_new();
        put_ok(c, "k", "v", 0);

        BAD("this is not json");
        BAD("{\"method\":\"org.mrkv.KV.Get\",");
        BAD("{\"method\":\"org.mrkv.KV.Get\",\"parameters\":{\"key\":\"k\"}} trailing");
        BAD("[\"org.mrkv.KV.Get\"]");
        BAD("\"just a string\"");
        BAD("{}");
        BAD("{\"method\":42}");
        BAD("{\"method\":\"org.mrkv.KV.Get\",\"parameters\":[\"k\"]}");
        BAD("{\"method\":\"org.mrkv.KV.Get\",\"parameters\":{\"key\":\"k\"},\"more\":\"yes\"}");
        BAD("{\"method\":\"org.mrkv.KV.Get\",\"parameters\":{\"key\":\"k\"},\"bogus\":1}");
        /* Invalid UTF-8 in a string, and a lone surrogate escape. */
        BAD("{\"method\":\"org.mrkv.KV.Get\",\"parameters\":{\"key\":\"\xff\xfe\"}}");
        BAD("{\"method\":\"org.mrkv.KV.Put\",\"parameters\":{\"key\":\"k\",\"value\":\"\xc3\x28\","
            "\"version\":1}}");
        /* Not strict JSON. */
        BAD("{'method':'org.mrkv.KV.Get'}");
        BAD("{\"method\":\"org.mrkv.KV.Get\",\"parameters\":{\"key\":\"k\",}}");
        /* An empty message: just the NUL. */
        check_bad_message(c, "", 1);

        /* The invalid-UTF-8 Put stored nothing. */
        get_expect(c, "k", "v", 1);
        varlink_client_free(c);
        stop();
}
END_TEST

START_TEST(test_oversize_message) {
        const char *args[] = { "--max-message-size", "4096", NULL };
        _cleanup_free_ char *msg = NULL, *reply = NULL;
        VarlinkClient *c;
        size_t size = 64 * 1024;
        int fd, r;

        start(args);
        c = client_new();
        put_ok(c, "k", "v", 0);

        /* A complete message over the limit. */
        msg = malloc(size + 1);
        ck_assert_ptr_nonnull(msg);
        int n = snprintf(
                msg, size, "{\"method\":\"org.mrkv.KV.Put\",\"parameters\":{\"key\":\"k\",\"value\":\"");
        memset(msg + n, 'x', size - (size_t) n - 64);
        strcpy(msg + size - 64, "\",\"version\":1}}");
        check_bad_message(c, msg, strlen(msg) + 1);

        /* An endless one without a NUL: the server must not buffer it forever. */
        fd = raw_connect();
        memset(msg, 'x', size);
        msg[0] = '{';
        for (int i = 0; i < 16; i++)
                raw_write(fd, msg, size);
        r = raw_read(fd, &reply);
        ck_assert_int_eq(r, 0); /* hung up */
        close(fd);

        /* Just under the limit still works. */
        char value[3000];
        memset(value, 'y', sizeof(value) - 1);
        value[sizeof(value) - 1] = '\0';
        put_ok(c, "k", value, 1);
        get_expect(c, "k", value, 2);
        varlink_client_free(c);
        stop();
}
END_TEST

START_TEST(test_many_connections) {
        enum { N = 200 };
        VarlinkClient *clients[N];
        char key[32], value[32];

        start(NULL);
        for (int i = 0; i < N; i++)
                clients[i] = client_new();

        /* All calls in flight at once, then all answers. */
        for (int i = 0; i < N; i++) {
                _cleanup_json_ json_object *p = NULL;

                snprintf(key, sizeof(key), "conn-%d", i);
                snprintf(value, sizeof(value), "value-%d", i);
                p = put_parameters(key, value, 0);
                ck_assert_int_eq(varlink_client_send(clients[i], "org.mrkv.KV.Put", p, 0, CALL_TIMEOUT), 0);
        }
        for (int i = 0; i < N; i++) {
                _cleanup_json_ json_object *reply = NULL;
                const char *error = NULL;
                bool continues;

                ck_assert_int_eq(
                        varlink_client_read(clients[i], CALL_TIMEOUT, &reply, &error, &continues), 0);
                ck_assert_ptr_null(error);
                ck_assert(!continues);
        }
        /* Everybody sees everybody's writes. */
        for (int i = 0; i < N; i++) {
                int j = (i * 7 + 3) % N;

                snprintf(key, sizeof(key), "conn-%d", j);
                snprintf(value, sizeof(value), "value-%d", j);
                get_expect(clients[i], key, value, 1);
        }
        for (int i = 0; i < N; i++)
                varlink_client_free(clients[i]);
        stop();
}
END_TEST

START_TEST(test_stalled_client) {
        static const char first[] = "{\"method\":\"org.mrkv.KV.Put\",\"parameters\":{\"key\":\"stal";
        static const char rest[] = "led\",\"value\":\"late\",\"version\":0}}";
        _cleanup_free_ char *reply = NULL;
        VarlinkClient *c;
        int fd;

        start(NULL);
        fd = raw_connect();
        raw_write(fd, first, sizeof(first) - 1);

        /* Half a message on one connection stalls nobody else. */
        c = client_new();
        for (uint64_t v = 0; v < 100; v++)
                put_ok(c, "k", "v", v);
        get_expect(c, "k", "v", 100);
        ck_assert_str_eq(get_error(c, "stalled"), "org.mrkv.KV.NoKey");

        /* Nor does a client that sends calls and never reads the answers. */
        int greedy = raw_connect();
        static const char get[] = "{\"method\":\"org.mrkv.KV.Get\",\"parameters\":{\"key\":\"k\"}}";
        for (int i = 0; i < 1000; i++)
                ck_assert_int_eq(
                        send(greedy, get, sizeof(get), MSG_DONTWAIT | MSG_NOSIGNAL) >= 0 || errno == EAGAIN,
                        1);
        get_expect(c, "k", "v", 100);

        /* The rest arrives: the call completes. */
        raw_write(fd, rest, sizeof(rest));
        ck_assert_int_eq(raw_read(fd, &reply), 1);
        ck_assert_str_eq(reply, "{\"parameters\":{}}");
        get_expect(c, "stalled", "late", 1);

        close(greedy);
        close(fd);
        varlink_client_free(c);
        stop();
}
END_TEST

/* Whether a new connection gets its call answered (a Get without a key: InvalidParameter),
 * rather than closed. */
static bool new_client_served(void *userdata) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_json_ json_object *reply = NULL;
        const char *error = NULL;
        int r;

        ck_assert_int_eq(varlink_client_connect(server.address, &c), 0);
        r = varlink_client_call(c, "org.mrkv.KV.Get", NULL, CALL_TIMEOUT, &reply, &error);
        if (r == -ECONNRESET || r == -EPIPE)
                return false;
        ck_assert_int_eq(r, 0);
        ck_assert_str_eq(error, "org.varlink.service.InvalidParameter");
        return true;
}

/* A connection the server cannot close as idle: it has begun a message and not ended it.
 * The Get before it, in the same send(), is answered, so the server has read both. */
static int busy_connect(void) {
        static const char get_and_part[] = "{\"method\":\"org.mrkv.KV.Get\",\"parameters\":{\"key\":\"k\"}}\0{\"me";
        char buf[256];
        ssize_t n;
        int fd;

        fd = raw_connect();
        ck_assert_int_eq(send(fd, get_and_part, sizeof(get_and_part) - 1, MSG_NOSIGNAL),
                         (ssize_t) sizeof(get_and_part) - 1);
        ck_assert_int_eq(poll(&(struct pollfd) { .fd = fd, .events = POLLIN }, 1, (int) (CALL_TIMEOUT / USEC_PER_MSEC)), 1);
        n = recv(fd, buf, sizeof(buf) - 1, 0);
        ck_assert_int_gt(n, 0);
        buf[n] = '\0';
        ck_assert_ptr_nonnull(strstr(buf, "NoKey"));
        return fd;
}

START_TEST(test_max_connections) {
        const char *args[] = { "--max-connections", "3", NULL };
        VarlinkClient *c[3], *extra = NULL;
        _cleanup_json_ json_object *reply = NULL;
        const char *error;
        int busy[3], r;

        start(args);
        for (int i = 0; i < 3; i++) {
                c[i] = client_new();
                /* A completed call proves the server accepted this one. */
                ck_assert_str_eq(get_error(c[i], "k"), "org.mrkv.KV.NoKey");
        }

        /* At the limit, the connection idle longest is closed for a new one. */
        extra = client_new();
        ck_assert_str_eq(get_error(extra, "k"), "org.mrkv.KV.NoKey");
        r = varlink_client_call(c[0], "org.mrkv.KV.Get", NULL, CALL_TIMEOUT, &reply, &error);
        ck_assert_msg(r == -ECONNRESET || r == -EPIPE, "call on the connection closed for room: %d", r);

        /* With every connection busy, a new one waits until one of them closes. */
        for (int i = 0; i < 3; i++)
                busy[i] = busy_connect();
        extra = varlink_client_free(extra);
        ck_assert_int_eq(varlink_client_connect(server.address, &extra), 0);
        r = varlink_client_call(extra, "org.mrkv.KV.Get", NULL, 300 * USEC_PER_MSEC, &reply, &error);
        ck_assert_msg(r == -ETIMEDOUT, "call over the limit: %d", r);
        extra = varlink_client_free(extra);
        close(busy[0]);
        ck_assert_msg(test_wait_until(TEST_TIMEOUT_USEC, new_client_served, NULL),
                      "no connection accepted after one closed");
        for (int i = 0; i < 3; i++)
                varlink_client_free(c[i]);
        close(busy[1]);
        close(busy[2]);
        stop();
}
END_TEST

START_TEST(test_default_address) {
        _cleanup_free_ char *env = NULL;
        VarlinkClient *c;

        /* Without --listen, $MRKV_KV_ADDRESS decides. */
        ck_assert_int_gt(asprintf(&env, "MRKV_KV_ADDRESS=unix:%s/kv.sock", test_dir), 0);
        start_with(&(TestDaemonOptions) { .no_listen = true, .env = (const char *const[]) { env, NULL } });
        c = client_new();
        put_ok(c, "k", "v", 0);
        varlink_client_free(c);
        stop();
}
END_TEST

START_TEST(test_socket_activation) {
        static const char *const env[] = { "MRKV_KV_ADDRESS=unix:/nonexistent/dir/kv.sock", "LISTEN_FDNAMES=kv", NULL };
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        Address a;
        struct stat st;
        VarlinkClient *c;

        /* A socket made by "systemd": the server uses it and leaves its file alone. */
        ck_assert_int_gt(asprintf(&path, "unix:%s/kv.sock", test_dir), 0);
        ck_assert_int_eq(address_parse(path, &a), 0);
        fd = address_listen(&a);
        ck_assert_int_ge(fd, 0);
        start_with(&(TestDaemonOptions) { .no_listen = true, .env = env, .listen_fd = fd });
        c = client_new();
        put_ok(c, "k", "v", 0);
        get_expect(c, "k", "v", 1);
        varlink_client_free(c);
        ck_assert_int_eq(test_daemon_stop(&server), 0);
        ck_assert_int_eq(stat(server.socket_path, &st), 0);
        address_unlink(&a);
        address_done(&a);
}
END_TEST

START_TEST(test_unread_replies_bounded) {
        static const char get[] = "{\"method\":\"org.mrkv.KV.Get\",\"parameters\":{\"key\":\"big\"}}";
        size_t big = 1024 * 1024;
        char *value = malloc(big + 1), *calls;
        VarlinkClient *c;
        uint64_t before, after;
        int greedy;

        /* A client that pipelines Gets of a 1 MiB value and never reads the replies
         * must not make the server queue them all: it stops reading from that client. */
        ck_assert_ptr_nonnull(value);
        memset(value, 'x', big);
        value[big] = '\0';
        start(NULL);
        c = client_new();
        put_ok(c, "big", value, 0);
        before = test_rss(server.pid);

        greedy = raw_connect();
        calls = malloc(sizeof(get) * 200);
        ck_assert_ptr_nonnull(calls);
        for (int i = 0; i < 200; i++)
                memcpy(calls + i * sizeof(get), get, sizeof(get));
        /* The server stops reading at some point: send what the socket takes. */
        for (size_t off = 0; off < sizeof(get) * 200;) {
                ssize_t n = send(greedy, calls + off, sizeof(get) * 200 - off, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        ck_assert_int_eq(errno, EAGAIN);
                        break;
                }
                off += (size_t) n;
        }

        /* Others are still served, and the server got the chance to run ahead. */
        for (int i = 0; i < 20; i++)
                ck_assert_str_eq(get_error(c, "nope"), "org.mrkv.KV.NoKey");
        after = test_rss(server.pid);
        ck_assert_msg(after <= before || after - before < 32 * 1024 * 1024, "RSS grew by %" PRIu64 " KiB for unread replies",
                      (after - before) / 1024);

        close(greedy);
        free(calls);
        free(value);
        varlink_client_free(c);
        stop();
}
END_TEST

/* Runs the binary with args; returns its exit status and its stdout+stderr. */
static int run_binary(const char *const *args, char *out, size_t out_size) {
        static const char *const env[] = { "MRKV_KV_ADDRESS=unix:/nonexistent/dir/kv.sock", "NOTIFY_SOCKET", NULL };
        const char *argv[16] = { kvserver_binary };
        _cleanup_free_ char *output = NULL;
        size_t n = 1;
        int status;

        for (size_t i = 0; args[i]; i++) {
                ck_assert_uint_lt(n, ELEMENTSOF(argv) - 1);
                argv[n++] = args[i];
        }
        status = test_run((char *const *) argv, &(TestSpawn) { .env = env, .stderr_to_stdout = true }, &output);
        snprintf(out, out_size, "%s", output);
        ck_assert(WIFEXITED(status));
        return WEXITSTATUS(status);
}

START_TEST(test_options) {
        char out[8192];

        ck_assert_int_eq(run_binary((const char *[]){ "--help", NULL }, out, sizeof(out)), 0);
        ck_assert_ptr_nonnull(strstr(out, "--max-value-size"));
        ck_assert_int_eq(run_binary((const char *[]){ "--version", NULL }, out, sizeof(out)), 0);
        ck_assert_ptr_nonnull(strstr(out, PACKAGE_VERSION));

        ck_assert_int_eq(run_binary((const char *[]){ "--bogus", NULL }, out, sizeof(out)), 2);
        ck_assert_int_eq(run_binary((const char *[]){ "extra-argument", NULL }, out, sizeof(out)), 2);
        ck_assert_int_eq(
                run_binary((const char *[]){ "--max-key-size", "lots", NULL }, out, sizeof(out)), 2);
        ck_assert_ptr_nonnull(strstr(out, "max-key-size"));
        ck_assert_int_eq(
                run_binary((const char *[]){ "--max-value-size", "-1", NULL }, out, sizeof(out)), 2);
        ck_assert_int_eq(
                run_binary((const char *[]){ "--max-value-size", "1T", NULL }, out, sizeof(out)), 2);
        ck_assert_int_eq(
                run_binary((const char *[]){ "--max-connections", "0", NULL }, out, sizeof(out)), 2);
        ck_assert_int_eq(
                run_binary((const char *[]){ "--max-message-size", "0", NULL }, out, sizeof(out)), 2);
        /* The bounds every daemon takes (daemon_parse_limit_option()). */
        ck_assert_int_eq(run_binary((const char *[]){ "--max-input", "0", NULL }, out, sizeof(out)), 2);
        ck_assert_ptr_nonnull(strstr(out, "--max-input"));
        ck_assert_int_eq(run_binary((const char *[]){ "--idle-timeout", "0", NULL }, out, sizeof(out)), 2);
        ck_assert_int_eq(run_binary((const char *[]){ "--message-timeout", "soon", NULL }, out, sizeof(out)), 2);
        ck_assert_ptr_nonnull(strstr(out, "--message-timeout"));
        ck_assert_int_eq(run_binary((const char *[]){ "--log-level", "loud", NULL }, out, sizeof(out)), 2);
        ck_assert_int_eq(
                run_binary((const char *[]){ "--listen", "carrier-pigeon:x", NULL }, out, sizeof(out)), 2);
        /* A good address where nobody can listen: a runtime failure, not a usage error. */
        ck_assert_int_eq(run_binary((const char *[]){ "--listen", "unix:/proc/nope/kv.sock", NULL }, out,
                                 sizeof(out)),
                1);
        ck_assert_int_gt(strlen(out), 0);
}
END_TEST

static Suite *kvserver_suite(void) {
        Suite *s = suite_create("kvserver");
        TCase *tc = tcase_create("integration");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_put_get);
        tcase_add_test(tc, test_big_versions_and_values);
        tcase_add_test(tc, test_limits);
        tcase_add_test(tc, test_get_info);
        tcase_add_test(tc, test_interface_description);
        tcase_add_test(tc, test_method_not_found);
        tcase_add_test(tc, test_invalid_parameter);
        tcase_add_test(tc, test_invalid_messages);
        tcase_add_test(tc, test_oversize_message);
        tcase_add_test(tc, test_many_connections);
        tcase_add_test(tc, test_stalled_client);
        tcase_add_test(tc, test_unread_replies_bounded);
        tcase_add_test(tc, test_max_connections);
        tcase_add_test(tc, test_default_address);
        tcase_add_test(tc, test_socket_activation);
        tcase_add_test(tc, test_options);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        /* Writes to a server that hung up must fail with EPIPE, not end the test. */
        signal(SIGPIPE, SIG_IGN);
        return test_run_suite(kvserver_suite());
}
