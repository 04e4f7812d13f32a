/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Integration tests: the real mrkv-kvserver ($MRKV_TEST_KVSERVER) on a Unix socket in a
 * temporary directory per test, spoken to with raw Varlink (lib/varlink's blocking
 * client, and plain sockets for what a well-behaved client would never send). */
#include <check.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/resource.h>
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
                json_object_get_string(v), "method Put(key: string, value: string, version: int, lease: ?int) -> ()"));

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
        ck_assert_str_eq(call(c, "org.mrkv.KV.Scan", "{\"key\":\"k\"}", &reply),
                "org.varlink.service.MethodNotFound");
        ck_assert(json_object_object_get_ex(reply, "method", &v));
        ck_assert_str_eq(json_object_get_string(v), "org.mrkv.KV.Scan");
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

/* Deletes, lists, watches and leases. */

static const char *delete_key(VarlinkClient *c, const char *key, uint64_t version) {
        _cleanup_free_ char *params = NULL;
        _cleanup_json_ json_object *p = NULL;

        ck_assert_int_eq(json_build_object(&p, "key", json_object_new_string(key),
                                           "version", json_object_new_uint64(version), NULL),
                         0);
        return call(c, "org.mrkv.KV.Delete", json_object_to_json_string(p), NULL);
}

static uint64_t get_version(VarlinkClient *c, const char *key) {
        _cleanup_json_ json_object *p = get_parameters(key), *reply = NULL;
        const char *error = NULL;
        json_object *v;

        ck_assert_int_eq(varlink_client_call(c, "org.mrkv.KV.Get", p, CALL_TIMEOUT, &reply, &error), 0);
        if (error)
                return 0;
        ck_assert(json_object_object_get_ex(reply, "version", &v));
        return json_object_get_uint64(v);
}

static uint64_t reply_uint(json_object *reply, const char *name) {
        json_object *v;

        ck_assert_msg(json_object_object_get_ex(reply, name, &v), "no %s in %s", name,
                      json_object_to_json_string(reply));
        return json_object_get_uint64(v);
}

static uint64_t grant(VarlinkClient *c, uint64_t ttl) {
        _cleanup_json_ json_object *reply = NULL;
        char params[64];

        snprintf(params, sizeof(params), "{\"ttl\":%" PRIu64 "}", ttl);
        ck_assert_ptr_null(call(c, "org.mrkv.KV.Grant", params, &reply));
        ck_assert_uint_eq(reply_uint(reply, "ttl"), ttl);
        return reply_uint(reply, "lease");
}

static const char *lease_call(VarlinkClient *c, const char *method, uint64_t lease) {
        char params[64];

        snprintf(params, sizeof(params), "{\"lease\":%" PRIu64 "}", lease);
        return call(c, method, params, NULL);
}

static const char *put_leased(VarlinkClient *c, const char *key, const char *value, uint64_t version, uint64_t lease) {
        _cleanup_json_ json_object *p = put_parameters(key, value, version);

        ck_assert_int_eq(json_object_object_add(p, "lease", json_object_new_uint64(lease)), 0);
        return call(c, "org.mrkv.KV.Put", json_object_to_json_string(p), NULL);
}

/* Starts a Watch of key (or of a prefix) after version, with more. */
static VarlinkClient *watch(const char *key, const char *prefix, uint64_t version) {
        _cleanup_json_ json_object *p = NULL;
        VarlinkClient *c = client_new();

        ck_assert_int_eq(json_build_object(&p, "version", json_object_new_uint64(version), NULL), 0);
        if (key)
                ck_assert_int_eq(json_object_object_add(p, "key", json_object_new_string(key)), 0);
        if (prefix)
                ck_assert_int_eq(json_object_object_add(p, "prefix", json_object_new_string(prefix)), 0);
        ck_assert_int_eq(varlink_client_send(c, "org.mrkv.KV.Watch", p, VARLINK_CLIENT_MORE, CALL_TIMEOUT), 0);
        return c;
}

typedef struct WatchReply {
        char error[128];        /* empty for a change */
        char key[64];
        char value[64];         /* its start */
        size_t value_size;
        uint64_t version;
        bool deleted;
        uint64_t lease;
} WatchReply;

/* Reads a reply within timeout: false if none came. */
static bool watch_read_within(VarlinkClient *c, WatchReply *ret, uint64_t timeout) {
        _cleanup_json_ json_object *p = NULL;
        const char *error = NULL;
        bool continues = false;
        json_object *v;
        int r;

        *ret = (WatchReply) {};
        r = varlink_client_read(c, timeout, &p, &error, &continues);
        if (r == -ETIMEDOUT)
                return false;
        ck_assert_int_eq(r, 0);
        if (error) {
                snprintf(ret->error, sizeof(ret->error), "%s", error);
                if (json_object_object_get_ex(p, "version", &v))
                        ret->version = json_object_get_uint64(v);
                return true;
        }
        ck_assert(continues);
        snprintf(ret->key, sizeof(ret->key), "%s", json_object_get_string(json_object_object_get(p, "key")));
        ret->version = reply_uint(p, "version");
        ret->deleted = json_object_get_boolean(json_object_object_get(p, "deleted"));
        if (json_object_object_get_ex(p, "value", &v)) {
                snprintf(ret->value, sizeof(ret->value), "%s", json_object_get_string(v));
                ret->value_size = strlen(json_object_get_string(v));
        }
        else
                ck_assert(ret->deleted);
        if (json_object_object_get_ex(p, "lease", &v))
                ret->lease = json_object_get_uint64(v);
        return true;
}

static void watch_read(VarlinkClient *c, WatchReply *ret) {
        ck_assert_msg(watch_read_within(c, ret, CALL_TIMEOUT), "no reply from the watch");
}

#define QUIET_USEC (100 * USEC_PER_MSEC)

static void watch_expect(VarlinkClient *c, const char *key, const char *value, uint64_t version) {
        WatchReply w;

        watch_read(c, &w);
        ck_assert_msg(!w.error[0], "watch of %s: %s", key, w.error);
        ck_assert_str_eq(w.key, key);
        ck_assert_uint_eq(w.version, version);
        ck_assert_int_eq(w.deleted, !value);
        if (value) {
                ck_assert_uint_eq(w.value_size, strlen(value));
                ck_assert(strncmp(w.value, value, sizeof(w.value) - 1) == 0);
        }
}

/* Whether the server answers nothing on c right now: a watcher that got every change.
 * A reply that comes is read and lost. */
static bool watch_quiet(VarlinkClient *c) {
        WatchReply r;

        return !watch_read_within(c, &r, QUIET_USEC);
}

/* Waits until watcher w (of a prefix of key) is registered: puts key until w sees it. */
static void watch_sync(VarlinkClient *c, VarlinkClient *w, const char *key) {
        uint64_t deadline = usec_add(now_usec(), CALL_TIMEOUT);

        for (;;) {
                WatchReply r;

                ck_assert_ptr_null(put(c, key, "sync", get_version(c, key)));
                if (!watch_read_within(w, &r, QUIET_USEC)) {
                        ck_assert_msg(now_usec() < deadline, "the watcher never saw %s", key);
                        continue;
                }
                while (watch_read_within(w, &r, QUIET_USEC))
                        ck_assert_msg(!r.error[0], "%s", r.error);
                return;
        }
}

START_TEST(test_delete) {
        VarlinkClient *c;

        start(NULL);
        c = client_new();
        ck_assert_str_eq(delete_key(c, "k", 0), "org.mrkv.KV.NoKey");
        ck_assert_str_eq(delete_key(c, "k", 1), "org.mrkv.KV.NoKey");
        put_ok(c, "k", "v1", 0);
        put_ok(c, "k", "v2", 1);
        ck_assert_str_eq(delete_key(c, "k", 1), "org.mrkv.KV.VersionMismatch");
        ck_assert_str_eq(delete_key(c, "k", 3), "org.mrkv.KV.VersionMismatch");
        get_expect(c, "k", "v2", 2);
        ck_assert_ptr_null(delete_key(c, "k", 2));
        ck_assert_str_eq(get_error(c, "k"), "org.mrkv.KV.NoKey");
        ck_assert_str_eq(delete_key(c, "k", 2), "org.mrkv.KV.NoKey");
        ck_assert_str_eq(put(c, "k", "x", 2), "org.mrkv.KV.NoKey");

        /* Created again above every version it had (deleted at 3): a fencing token. */
        put_ok(c, "k", "v4", 0);
        get_expect(c, "k", "v4", 4);
        /* Other keys too start above the floor. */
        put_ok(c, "other", "o", 0);
        get_expect(c, "other", "o", 4);
        ck_assert_str_eq(call(c, "org.mrkv.KV.Delete", "{\"key\":\"k\"}", NULL),
                         "org.varlink.service.InvalidParameter");
        varlink_client_free(c);
        stop();
}
END_TEST

static int compare_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

START_TEST(test_list) {
        enum { N = 2500 };
        const char *args[] = { "--sync", "none", NULL };
        _cleanup_free_ char *big = NULL;
        char *keys[N], after[64] = "";
        size_t seen = 0, pages = 0;
        VarlinkClient *c;

        start(args);
        c = client_new();
        for (int i = 0; i < N; i++) {
                char k[32];

                snprintf(k, sizeof(k), "key/%d", (i * 7919) % N);
                keys[i] = strdup(k);
                ck_assert_ptr_nonnull(keys[i]);
                put_ok(c, k, k, 0);
        }
        put_ok(c, "other", "x", 0);
        qsort(keys, N, sizeof(char *), compare_str);

        /* Pages of the default size, in order, each key once, more on all but the last. */
        for (bool more = true; more; pages++) {
                _cleanup_json_ json_object *reply = NULL, *p = NULL;
                json_object *entries;

                ck_assert_int_eq(json_build_object(&p, "prefix", json_object_new_string("key/"), NULL), 0);
                if (after[0])
                        ck_assert_int_eq(json_object_object_add(p, "startAfter", json_object_new_string(after)), 0);
                ck_assert_ptr_null(call(c, "org.mrkv.KV.List", json_object_to_json_string(p), &reply));
                more = json_object_get_boolean(json_object_object_get(reply, "more"));
                entries = json_object_object_get(reply, "entries");
                ck_assert_uint_le(json_object_array_length(entries), 1000);
                for (size_t i = 0; i < json_object_array_length(entries); i++) {
                        json_object *e = json_object_array_get_idx(entries, i);
                        const char *k = json_object_get_string(json_object_object_get(e, "key"));

                        ck_assert_uint_lt(seen, N);
                        ck_assert_str_eq(k, keys[seen]);
                        ck_assert_uint_eq(reply_uint(e, "version"), 1);
                        ck_assert(!json_object_object_get_ex(e, "value", NULL));
                        seen++;
                        snprintf(after, sizeof(after), "%s", k);
                }
        }
        ck_assert_uint_eq(seen, N);
        ck_assert_uint_eq(pages, 3);

        /* Values when asked; a limit; the whole store. */
        _cleanup_json_ json_object *reply = NULL;
        ck_assert_ptr_null(call(c, "org.mrkv.KV.List", "{\"startAfter\":\"key/999\",\"limit\":2,\"values\":true}",
                                &reply));
        json_object *entries = json_object_object_get(reply, "entries");
        ck_assert_uint_eq(json_object_array_length(entries), 1);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(json_object_array_get_idx(entries, 0), "value")),
                         "x");
        ck_assert(!json_object_get_boolean(json_object_object_get(reply, "more")));
        json_object_put(reply);
        reply = NULL;
        ck_assert_ptr_null(call(c, "org.mrkv.KV.List", "{\"limit\":100000}", &reply));
        ck_assert_uint_eq(json_object_array_length(json_object_object_get(reply, "entries")), N + 1);
        json_object_put(reply);
        reply = NULL;
        ck_assert_ptr_null(call(c, "org.mrkv.KV.List", "{\"prefix\":\"nope\"}", &reply));
        ck_assert_uint_eq(json_object_array_length(json_object_object_get(reply, "entries")), 0);
        json_object_put(reply);
        reply = NULL;

        /* A reply of large values stops short of its limit: about 4 MiB. */
        big = malloc(512 * 1024 + 1);
        ck_assert_ptr_nonnull(big);
        memset(big, 'b', 512 * 1024);
        big[512 * 1024] = '\0';
        for (int i = 0; i < 12; i++) {
                char k[32];

                snprintf(k, sizeof(k), "big/%02d", i);
                put_ok(c, k, big, 0);
        }
        ck_assert_ptr_null(call(c, "org.mrkv.KV.List", "{\"prefix\":\"big/\",\"values\":true}", &reply));
        ck_assert_uint_lt(json_object_array_length(json_object_object_get(reply, "entries")), 12);
        ck_assert_uint_gt(json_object_array_length(json_object_object_get(reply, "entries")), 0);
        ck_assert(json_object_get_boolean(json_object_object_get(reply, "more")));

        for (int i = 0; i < N; i++)
                free(keys[i]);
        varlink_client_free(c);
        stop();
}
END_TEST

START_TEST(test_watch_basic) {
        VarlinkClient *c, *w, *later, *prefix, *once;
        WatchReply r;

        start(NULL);
        c = client_new();
        put_ok(c, "k", "v1", 0);
        w = watch("k", NULL, 0);
        watch_expect(w, "k", "v1", 1);
        prefix = watch(NULL, "k", 0);
        watch_sync(c, prefix, "k-sync");
        put_ok(c, "kk", "x", 0);
        watch_expect(prefix, "kk", "x", 1);
        put_ok(c, "other", "x", 0);
        put_ok(c, "k", "v2", 1);
        watch_expect(w, "k", "v2", 2);
        watch_expect(prefix, "k", "v2", 2);
        ck_assert_ptr_null(delete_key(c, "k", 2));
        watch_expect(w, "k", NULL, 3);
        watch_expect(prefix, "k", NULL, 3);
        ck_assert(watch_quiet(w));

        /* A watch from an old version gets the current state at once: the deletion at the
         * floor while the key is missing, the value once it is back. */
        later = watch("k", NULL, 1);
        watch_expect(later, "k", NULL, 3);
        varlink_client_free(later);
        later = watch("k", NULL, 3);
        ck_assert(watch_quiet(later));
        put_ok(c, "k", "v4", 0);
        watch_expect(later, "k", "v4", 4);
        watch_expect(w, "k", "v4", 4);
        varlink_client_free(later);
        later = watch(NULL, "k", 1);
        watch_expect(later, "k", "v4", 4);
        ck_assert(watch_quiet(later));
        varlink_client_free(later);

        /* A prefix watch from an old version gets every key past it at once, in order. */
        for (int i = 0; i < 50; i++) {
                char key[16];

                snprintf(key, sizeof(key), "many/%02d", i);
                put_ok(c, key, "m", 0);
        }
        later = watch(NULL, "many/", 1);
        for (int i = 0; i < 50; i++) {
                char key[16];

                snprintf(key, sizeof(key), "many/%02d", i);
                watch_expect(later, key, "m", 4);
        }
        ck_assert(watch_quiet(later));
        varlink_client_free(later);

        /* Without more: the first change, and the connection reads calls again. */
        once = client_new();
        ck_assert_int_eq(varlink_client_send(once, "org.mrkv.KV.Watch", NULL, 0, CALL_TIMEOUT), 0);
        watch_read(once, &r);
        ck_assert_str_eq(r.error, "org.varlink.service.InvalidParameter");
        ck_assert_str_eq(call(once, "org.mrkv.KV.Watch", "{\"key\":\"k\",\"prefix\":\"k\"}", NULL),
                         "org.varlink.service.InvalidParameter");
        _cleanup_json_ json_object *reply = NULL;
        ck_assert_ptr_null(call(once, "org.mrkv.KV.Watch", "{\"key\":\"k\",\"version\":2}", &reply));
        ck_assert_uint_eq(reply_uint(reply, "version"), 4);
        get_expect(once, "k", "v4", 4);

        varlink_client_free(once);
        varlink_client_free(prefix);
        varlink_client_free(w);
        varlink_client_free(c);
        stop();
}
END_TEST

static void raise_nofile(void) {
        struct rlimit rl;

        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        rl.rlim_cur = rl.rlim_max;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

START_TEST(test_watch_thousand) {
        enum { WATCHERS = 1000, CHANGES = 20 };
        VarlinkClient *w[WATCHERS], *c;
        uint64_t rss_idle, rss_watched;

        raise_nofile();
        start(NULL);
        c = client_new();
        put_ok(c, "k", "v", 0);
        rss_idle = test_rss(server.pid);
        /* From version 0: each gets the current state at once, which says it is there. */
        for (int i = 0; i < WATCHERS; i++)
                w[i] = watch("k", NULL, 0);
        for (int i = 0; i < WATCHERS; i++)
                watch_expect(w[i], "k", "v", 1);
        rss_watched = test_rss(server.pid);
        /* Cheap: no thread, nothing of its own per watcher beyond a few hundred bytes and
         * its connection. */
        ck_assert_msg(rss_watched < rss_idle + WATCHERS * 16384, "1000 watchers cost %" PRIu64 " KiB",
                      (rss_watched - rss_idle) / 1024);

        for (int n = 1; n <= CHANGES; n++) {
                char v[16];

                snprintf(v, sizeof(v), "v%d", n);
                if (n == CHANGES / 2)
                        ck_assert_ptr_null(delete_key(c, "k", (uint64_t) n));
                else
                        put_ok(c, "k", v, n == CHANGES / 2 + 1 ? 0 : (uint64_t) n);
        }
        /* The last change tells that nothing came between. */
        put_ok(c, "k", "last", CHANGES + 1);
        for (int i = 0; i < WATCHERS; i++) {
                for (int n = 1; n <= CHANGES; n++) {
                        char v[16];

                        snprintf(v, sizeof(v), "v%d", n);
                        watch_expect(w[i], "k", n == CHANGES / 2 ? NULL : v, (uint64_t) n + 1);
                }
                watch_expect(w[i], "k", "last", CHANGES + 2);
                varlink_client_free(w[i]);
        }
        varlink_client_free(c);
        stop();
}
END_TEST

/* A change of a key as the client that made it knows it. */
typedef struct Change {
        uint64_t version;
        bool deleted;
        char value[16];
} Change;

typedef struct KeyHistory {
        char key[16];
        Change changes[400];
        size_t n;
        uint64_t version; /* current; 0: missing */
} KeyHistory;

/* Reads the changes of h from index *next on from w: every change once, in order (one
 * that comes twice or out of order shows in place of the next one). */
static void watch_check(VarlinkClient *w, const KeyHistory *h, size_t *next) {
        WatchReply r;

        while (*next < h->n) {
                watch_read(w, &r);
                ck_assert_msg(!r.error[0], "%s", r.error);
                ck_assert_str_eq(r.key, h->key);
                ck_assert_uint_lt(*next, h->n);
                ck_assert_uint_eq(r.version, h->changes[*next].version);
                ck_assert_int_eq(r.deleted, h->changes[*next].deleted);
                if (!r.deleted)
                        ck_assert_str_eq(r.value, h->changes[*next].value);
                (*next)++;
        }
}

START_TEST(test_watch_random) {
        enum { KEYS = 4, PER_KEY = 3, ROUNDS = 6, STEPS = 40 };
        KeyHistory h[KEYS] = {};
        VarlinkClient *w[KEYS][PER_KEY], *c;
        size_t next[KEYS][PER_KEY] = {};
        unsigned seed = (unsigned) now_usec();

        fprintf(stderr, "seed %u\n", seed);
        srand(seed);
        start(NULL);
        c = client_new();
        for (int k = 0; k < KEYS; k++) {
                snprintf(h[k].key, sizeof(h[k].key), "key%d", k);
                put_ok(c, h[k].key, "init", 0);
                h[k].version = get_version(c, h[k].key);
                h[k].changes[h[k].n++] = (Change) { .version = h[k].version, .value = "init" };
                for (int i = 0; i < PER_KEY; i++) {
                        w[k][i] = watch(h[k].key, NULL, 0);
                        watch_check(w[k][i], &h[k], &next[k][i]);
                        ck_assert_uint_eq(next[k][i], 1);
                }
        }

        for (int round = 0; round < ROUNDS; round++) {
                for (int step = 0; step < STEPS; step++) {
                        KeyHistory *kh = &h[rand() % KEYS];
                        Change ch = {};

                        if (kh->version > 0 && rand() % 4 == 0) {
                                ck_assert_ptr_null(delete_key(c, kh->key, kh->version));
                                ch = (Change) { .version = kh->version + 1, .deleted = true };
                                kh->version = 0;
                        } else {
                                snprintf(ch.value, sizeof(ch.value), "v%d.%d", round, step);
                                ck_assert_ptr_null(put(c, kh->key, ch.value, kh->version));
                                kh->version = ch.version = get_version(c, kh->key);
                                ck_assert_uint_gt(ch.version, kh->n > 0 ? kh->changes[kh->n - 1].version : 0);
                        }
                        ck_assert_uint_lt(kh->n, ELEMENTSOF(kh->changes));
                        kh->changes[kh->n++] = ch;
                }
                for (int k = 0; k < KEYS; k++)
                        for (int i = 0; i < PER_KEY; i++) {
                                watch_check(w[k][i], &h[k], &next[k][i]);
                                ck_assert_uint_eq(next[k][i], h[k].n);
                        }

                /* One watcher of each key goes away and resumes from the last version it
                 * saw after a few more changes: it gets the newest state, then the rest. */
                for (int k = 0; k < KEYS; k++) {
                        uint64_t last = h[k].changes[next[k][0] - 1].version;

                        varlink_client_free(w[k][0]);
                        w[k][0] = NULL;
                        if (h[k].version > 0) {
                                ck_assert_ptr_null(put(c, h[k].key, "gap", h[k].version));
                                h[k].version = get_version(c, h[k].key);
                                h[k].changes[h[k].n++] = (Change) { .version = h[k].version, .value = "gap" };
                        }
                        w[k][0] = watch(h[k].key, NULL, last);
                        next[k][0] = h[k].n - (h[k].version > 0);
                        WatchReply r;
                        if (h[k].version == 0 && watch_read_within(w[k][0], &r, QUIET_USEC)) {
                                /* Deleted since: told again, at the floor, or not at all. */
                                ck_assert(r.deleted);
                                ck_assert_uint_ge(r.version, last);
                                next[k][0] = h[k].n;
                        }
                        watch_check(w[k][0], &h[k], &next[k][0]);
                        ck_assert_uint_eq(next[k][0], h[k].n);
                        for (int i = 1; i < PER_KEY; i++)
                                watch_check(w[k][i], &h[k], &next[k][i]);
                }
        }
        for (int k = 0; k < KEYS; k++)
                for (int i = 0; i < PER_KEY; i++) {
                        ck_assert(watch_quiet(w[k][i]));
                        varlink_client_free(w[k][i]);
                }
        varlink_client_free(c);
        stop();
}
END_TEST

START_TEST(test_watch_overflow) {
        const char *args[] = { "--max-watch-queue", "64K", "--max-watchers", "3", "--sync", "none", NULL };
        char value[4097];
        VarlinkClient *c, *slow, *w2, *w3, *extra;
        uint64_t before, last = 0, version;
        WatchReply r;

        memset(value, 'x', sizeof(value) - 1);
        value[sizeof(value) - 1] = '\0';
        start(args);
        c = client_new();
        put_ok(c, "k", value, 0);
        slow = watch("k", NULL, 0);
        watch_expect(slow, "k", value, 1);
        w2 = watch("k", NULL, 0);
        watch_expect(w2, "k", value, 1);
        w3 = watch("k", NULL, 0);
        watch_expect(w3, "k", value, 1);
        extra = watch("k", NULL, 0);
        watch_read(extra, &r);
        ck_assert_str_eq(r.error, "org.mrkv.KV.TooManyWatchers");
        varlink_client_free(extra);
        varlink_client_free(w3);
        varlink_client_free(w2);

        /* 12 MiB of changes to a watcher that reads nothing: the server holds at most its
         * socket's buffer and the queue's 64 KiB, then ends the call. */
        before = test_rss(server.pid);
        version = 1;
        for (int i = 0; i < 3000; i++) {
                ck_assert_ptr_null(put(c, "k", value, version));
                version++;
        }
        ck_assert_msg(test_rss(server.pid) < before + 16 * 1024 * 1024, "RSS grew by %" PRIu64 " KiB",
                      (test_rss(server.pid) - before) / 1024);

        for (;;) {
                watch_read(slow, &r);
                if (r.error[0])
                        break;
                ck_assert_uint_eq(r.version, last ? last + 1 : 2);
                last = r.version;
        }
        ck_assert_str_eq(r.error, "org.mrkv.KV.WatchOverflow");
        ck_assert_uint_eq(r.version, last);
        ck_assert_uint_lt(last, version);
        /* The connection is good again, and the watch resumes from there. */
        get_expect(slow, "k", value, version);
        varlink_client_free(slow);
        slow = watch("k", NULL, last);
        watch_expect(slow, "k", value, version);
        varlink_client_free(slow);
        varlink_client_free(c);
        stop();
}
END_TEST

static bool key_gone(void *userdata) {
        VarlinkClient *c = userdata;

        return get_version(c, "leased") == 0;
}

START_TEST(test_lease_expiry_revoke) {
        VarlinkClient *c, *w;
        uint64_t l1, l2, v;
        WatchReply r;

        start(NULL);
        c = client_new();
        l1 = grant(c, 1);
        ck_assert_uint_gt(l1, 0);
        ck_assert_ptr_null(put_leased(c, "leased", "x", 0, l1));
        put_ok(c, "plain", "p", 0);
        v = get_version(c, "leased");
        w = watch("leased", NULL, 0);
        watch_expect(w, "leased", "x", v);

        /* Expiry deletes the key (and only it); the watcher sees the deletion. */
        ck_assert(test_wait_until(10 * USEC_PER_SEC, key_gone, c));
        watch_read(w, &r);
        ck_assert(r.deleted);
        ck_assert_uint_eq(r.version, v + 1);
        ck_assert_uint_eq(r.lease, l1);
        get_expect(c, "plain", "p", 1);
        ck_assert_str_eq(lease_call(c, "org.mrkv.KV.KeepAlive", l1), "org.mrkv.KV.NoLease");
        ck_assert_str_eq(lease_call(c, "org.mrkv.KV.Revoke", l1), "org.mrkv.KV.NoLease");
        ck_assert_str_eq(put_leased(c, "leased", "x", 0, l1), "org.mrkv.KV.NoLease");

        /* Revoke deletes at once; ids are not reused; a Put without the lease detaches. */
        l2 = grant(c, 60);
        ck_assert_uint_gt(l2, l1);
        ck_assert_ptr_null(put_leased(c, "leased", "y", 0, l2));
        ck_assert_ptr_null(put_leased(c, "kept", "y", 0, l2));
        ck_assert_ptr_null(put(c, "kept", "z", get_version(c, "kept")));
        watch_read(w, &r);
        ck_assert_str_eq(r.value, "y");
        ck_assert_uint_eq(r.lease, l2);
        ck_assert_ptr_null(lease_call(c, "org.mrkv.KV.Revoke", l2));
        ck_assert_str_eq(get_error(c, "leased"), "org.mrkv.KV.NoKey");
        ck_assert_uint_gt(get_version(c, "kept"), 0);
        watch_read(w, &r);
        ck_assert(r.deleted);
        ck_assert_str_eq(lease_call(c, "org.mrkv.KV.Revoke", l2), "org.mrkv.KV.NoLease");
        ck_assert_str_eq(lease_call(c, "org.mrkv.KV.Revoke", 12345), "org.mrkv.KV.NoLease");
        ck_assert_str_eq(put_leased(c, "other", "x", 0, 12345), "org.mrkv.KV.NoLease");

        varlink_client_free(w);
        varlink_client_free(c);
        stop();
}
END_TEST

START_TEST(test_lease_keepalive) {
        VarlinkClient *c, *k;
        uint64_t l, start_usec;
        bool continues;

        start(NULL);
        c = client_new();

        /* Single-shot renewals keep a lease of 2 s for 3 s. */
        l = grant(c, 2);
        ck_assert_ptr_null(put_leased(c, "leased", "x", 0, l));
        start_usec = now_usec();
        while (now_usec() < start_usec + 3 * USEC_PER_SEC) {
                _cleanup_json_ json_object *reply = NULL;
                char params[64];

                snprintf(params, sizeof(params), "{\"lease\":%" PRIu64 "}", l);
                ck_assert_ptr_null(call(c, "org.mrkv.KV.KeepAlive", params, &reply));
                ck_assert_uint_eq(reply_uint(reply, "ttl"), 2);
                ck_assert_uint_gt(get_version(c, "leased"), 0);
                usleep(300 * 1000);
        }

        /* With more the server renews it while the client reads: for 3 s, then the client
         * stops reading and the lease ends. */
        k = client_new();
        {
                _cleanup_json_ json_object *p = NULL;

                ck_assert_int_eq(json_build_object(&p, "lease", json_object_new_uint64(l), NULL), 0);
                ck_assert_int_eq(varlink_client_send(k, "org.mrkv.KV.KeepAlive", p, VARLINK_CLIENT_MORE, CALL_TIMEOUT),
                                 0);
        }
        start_usec = now_usec();
        while (now_usec() < start_usec + 3 * USEC_PER_SEC) {
                _cleanup_json_ json_object *reply = NULL;
                const char *error = NULL;

                ck_assert_int_eq(varlink_client_read(k, CALL_TIMEOUT, &reply, &error, &continues), 0);
                ck_assert_ptr_null(error);
                ck_assert(continues);
                ck_assert_uint_eq(reply_uint(reply, "ttl"), 2);
                ck_assert_uint_gt(get_version(c, "leased"), 0);
        }
        ck_assert(test_wait_until(10 * USEC_PER_SEC, key_gone, c));
        varlink_client_free(k);

        /* A stream ends with NoLease when its lease does. */
        l = grant(c, 1);
        k = client_new();
        {
                _cleanup_json_ json_object *p = NULL, *reply = NULL;
                const char *error = NULL;

                ck_assert_int_eq(json_build_object(&p, "lease", json_object_new_uint64(l), NULL), 0);
                ck_assert_int_eq(varlink_client_send(k, "org.mrkv.KV.KeepAlive", p, VARLINK_CLIENT_MORE, CALL_TIMEOUT),
                                 0);
                ck_assert_int_eq(varlink_client_read(k, CALL_TIMEOUT, &reply, &error, &continues), 0);
                ck_assert_ptr_null(error);
                ck_assert_ptr_null(lease_call(c, "org.mrkv.KV.Revoke", l));
                do {
                        json_object_put(reply);
                        reply = NULL;
                        ck_assert_int_eq(varlink_client_read(k, CALL_TIMEOUT, &reply, &error, &continues), 0);
                } while (!error);
                ck_assert_str_eq(error, "org.mrkv.KV.NoLease");
        }
        varlink_client_free(k);
        varlink_client_free(c);
        stop();
}
END_TEST

START_TEST(test_lease_limits) {
        const char *args[] = { "--max-leases", "2", "--max-lease-keys", "2", NULL };
        _cleanup_json_ json_object *reply = NULL;
        VarlinkClient *c;
        uint64_t l;

        start(args);
        c = client_new();
        ck_assert_str_eq(call(c, "org.mrkv.KV.Grant", "{\"ttl\":0}", NULL), "org.varlink.service.InvalidParameter");
        ck_assert_str_eq(call(c, "org.mrkv.KV.Grant", "{\"ttl\":31536001}", NULL),
                         "org.varlink.service.InvalidParameter");
        ck_assert_str_eq(call(c, "org.mrkv.KV.Grant", "{}", NULL), "org.varlink.service.InvalidParameter");
        l = grant(c, 60);
        (void) grant(c, 31536000);
        ck_assert_str_eq(call(c, "org.mrkv.KV.Grant", "{\"ttl\":60}", &reply), "org.mrkv.KV.TooManyLeases");
        ck_assert_uint_eq(reply_uint(reply, "max"), 2);
        json_object_put(reply);
        reply = NULL;

        ck_assert_ptr_null(put_leased(c, "a", "x", 0, l));
        ck_assert_ptr_null(put_leased(c, "b", "x", 0, l));
        ck_assert_ptr_null(put_leased(c, "b", "y", get_version(c, "b"), l));
        _cleanup_json_ json_object *p = put_parameters("c", "x", 0);
        ck_assert_int_eq(json_object_object_add(p, "lease", json_object_new_uint64(l)), 0);
        ck_assert_str_eq(call(c, "org.mrkv.KV.Put", json_object_to_json_string(p), &reply), "org.mrkv.KV.LeaseFull");
        ck_assert_uint_eq(reply_uint(reply, "max"), 2);
        ck_assert_str_eq(get_error(c, "c"), "org.mrkv.KV.NoKey");
        /* Room again once a key leaves. */
        ck_assert_ptr_null(delete_key(c, "a", get_version(c, "a")));
        ck_assert_ptr_null(put_leased(c, "c", "x", 0, l));
        ck_assert_ptr_null(lease_call(c, "org.mrkv.KV.Revoke", l));
        (void) grant(c, 1);
        varlink_client_free(c);
        stop();
}
END_TEST

/* Runs in a child as another uid: a lease of root's is none of its business. */
static int lease_other_uid(const char *address, uint64_t root_lease, uint64_t *ret_own) {
        VarlinkClient *c = NULL;
        int fds[2];
        pid_t pid;
        int status;

        ck_assert_int_eq(pipe(fds), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                _cleanup_json_ json_object *reply = NULL;
                const char *error = NULL;
                char params[64];
                uint64_t own;

                if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
                        _exit(10);
                if (varlink_client_connect(address, &c) < 0)
                        _exit(11);
                snprintf(params, sizeof(params), "{\"lease\":%" PRIu64 "}", root_lease);
                json_object *p = json_tokener_parse(params);
                if (varlink_client_call(c, "org.mrkv.KV.KeepAlive", p, CALL_TIMEOUT, &reply, &error) < 0 || !error ||
                    strcmp(error, "org.mrkv.KV.NoLease") != 0)
                        _exit(12);
                json_object_put(reply);
                if (varlink_client_call(c, "org.mrkv.KV.Revoke", p, CALL_TIMEOUT, &reply, &error) < 0 || !error ||
                    strcmp(error, "org.mrkv.KV.NoLease") != 0)
                        _exit(13);
                json_object_put(reply);
                json_object_put(p);
                p = json_tokener_parse("{\"key\":\"theirs\",\"value\":\"x\",\"version\":0}");
                json_object_object_add(p, "lease", json_object_new_uint64(root_lease));
                if (varlink_client_call(c, "org.mrkv.KV.Put", p, CALL_TIMEOUT, &reply, &error) < 0 || !error ||
                    strcmp(error, "org.mrkv.KV.NoLease") != 0)
                        _exit(14);
                json_object_put(reply);
                json_object_put(p);
                p = json_tokener_parse("{\"ttl\":60}");
                if (varlink_client_call(c, "org.mrkv.KV.Grant", p, CALL_TIMEOUT, &reply, &error) < 0 || error)
                        _exit(15);
                own = json_object_get_uint64(json_object_object_get(reply, "lease"));
                json_object_put(reply);
                json_object_put(p);
                p = json_tokener_parse("{\"key\":\"theirs\",\"value\":\"x\",\"version\":0}");
                json_object_object_add(p, "lease", json_object_new_uint64(own));
                if (varlink_client_call(c, "org.mrkv.KV.Put", p, CALL_TIMEOUT, &reply, &error) < 0 || error)
                        _exit(16);
                if (write(fds[1], &own, sizeof(own)) != sizeof(own))
                        _exit(17);
                _exit(0);
        }
        close(fds[1]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        if (status == 0)
                ck_assert_int_eq(read(fds[0], ret_own, sizeof(*ret_own)), (ssize_t) sizeof(*ret_own));
        close(fds[0]);
        return status;
}

START_TEST(test_lease_uid) {
        VarlinkClient *c;
        uint64_t mine, theirs = 0;
        int status;

        if (geteuid() != 0) {
                fprintf(stderr, "Not root: the lease ownership test needs another uid.\n");
                return;
        }
        /* Let the other uid reach the socket. */
        ck_assert_int_eq(chmod(test_dir, 0711), 0);
        *strrchr(test_dir, '/') = '\0';
        ck_assert_int_eq(chmod(test_dir, 0711), 0);
        test_dir[strlen(test_dir)] = '/';
        start(NULL);
        ck_assert_int_eq(chmod(server.socket_path, 0777), 0);
        c = client_new();
        mine = grant(c, 60);
        status = lease_other_uid(server.address, mine, &theirs);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the other uid's checks: status %d", status);
        /* Root may use every lease. */
        ck_assert_uint_gt(theirs, mine);
        ck_assert_ptr_null(lease_call(c, "org.mrkv.KV.KeepAlive", theirs));
        ck_assert_ptr_null(lease_call(c, "org.mrkv.KV.Revoke", theirs));
        ck_assert_str_eq(get_error(c, "theirs"), "org.mrkv.KV.NoKey");
        ck_assert_ptr_null(lease_call(c, "org.mrkv.KV.Revoke", mine));
        varlink_client_free(c);
        stop();
}
END_TEST

/* SIGKILL: nothing is flushed on the way out. */
static void kill_server(void) {
        ck_assert_int_eq(kill(server.pid, SIGKILL), 0);
        (void) test_daemon_stop(&server);
        server.pid = 0;
}

static bool key_gone_short(void *userdata) {
        return get_version(userdata, "short") == 0;
}

static void restart_checks(const char *const *args) {
        VarlinkClient *c;
        uint64_t l1, l2, l3, v;

        start(args);
        c = client_new();
        put_ok(c, "gone", "x", 0);
        ck_assert_ptr_null(delete_key(c, "gone", 1));  /* deleted at 2 */
        l1 = grant(c, 2);
        l2 = grant(c, 3600);
        ck_assert_ptr_null(put_leased(c, "short", "x", 0, l1));
        ck_assert_ptr_null(put_leased(c, "long", "y", 0, l2));
        /* Attached, then detached by a Put without the lease: it outlives the lease. */
        ck_assert_ptr_null(put_leased(c, "detached", "d", 0, l1));
        ck_assert_ptr_null(put(c, "detached", "d2", get_version(c, "detached")));
        put_ok(c, "revoked", "r", 0);
        l3 = grant(c, 3600);
        ck_assert_ptr_null(put_leased(c, "revoked", "r2", get_version(c, "revoked"), l3));
        ck_assert_ptr_null(lease_call(c, "org.mrkv.KV.Revoke", l3));
        v = get_version(c, "long");
        varlink_client_free(c);

        kill_server();
        start(args);
        c = client_new();
        ck_assert_str_eq(get_error(c, "gone"), "org.mrkv.KV.NoKey");
        ck_assert_str_eq(get_error(c, "revoked"), "org.mrkv.KV.NoKey");
        ck_assert_uint_eq(get_version(c, "long"), v);
        /* The floor survived: a new key starts above every deletion. */
        put_ok(c, "new", "n", 0);
        ck_assert_uint_gt(get_version(c, "new"), v + 1);
        /* Leases: the short one has its full 2 s again, the revoked one is gone, ids go on. */
        ck_assert_uint_gt(get_version(c, "short"), 0);
        ck_assert_ptr_null(lease_call(c, "org.mrkv.KV.KeepAlive", l2));
        ck_assert_str_eq(lease_call(c, "org.mrkv.KV.KeepAlive", l3), "org.mrkv.KV.NoLease");
        ck_assert_uint_gt(grant(c, 60), l3);
        _cleanup_json_ json_object *reply = NULL;
        ck_assert_ptr_null(call(c, "org.mrkv.KV.List", "{\"prefix\":\"long\"}", &reply));
        ck_assert_uint_eq(reply_uint(json_object_array_get_idx(json_object_object_get(reply, "entries"), 0), "lease"),
                          l2);
        ck_assert(test_wait_until(10 * USEC_PER_SEC, key_gone_short, c));
        ck_assert_uint_eq(get_version(c, "long"), v);
        ck_assert_uint_gt(get_version(c, "detached"), 0);
        varlink_client_free(c);
        stop();
}

START_TEST(test_restart) {
        restart_checks(NULL);
}
END_TEST

START_TEST(test_restart_snapshot) {
        /* Every commit starts a snapshot: the state comes back from snapshots too. */
        const char *args[] = { "--snapshot-log-size", "1", NULL };

        restart_checks(args);
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

        /* Delete, List, Watch, leases. */
        tc = tcase_create("coordination");
        tcase_set_timeout(tc, 120);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_delete);
        tcase_add_test(tc, test_list);
        tcase_add_test(tc, test_watch_basic);
        tcase_add_test(tc, test_watch_thousand);
        tcase_add_test(tc, test_watch_random);
        tcase_add_test(tc, test_watch_overflow);
        tcase_add_test(tc, test_lease_expiry_revoke);
        tcase_add_test(tc, test_lease_keepalive);
        tcase_add_test(tc, test_lease_limits);
        tcase_add_test(tc, test_lease_uid);
        tcase_add_test(tc, test_restart);
        tcase_add_test(tc, test_restart_snapshot);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        /* Writes to a server that hung up must fail with EPIPE, not end the test. */
        signal(SIGPIPE, SIG_IGN);
        return test_run_suite(kvserver_suite());
}
