/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "config.h"
#include "kv-service.h"
#include "log.h"
#include "macro.h"
#include "org.mrkv.KV.varlink.h"

struct KVService {
        VarlinkServer *server;
        Store *store;
        KVState *state;
        KVLimits limits;
        KVStats stats;
};

typedef struct GetParameters {
        const char *key;
} GetParameters;

typedef struct PutParameters {
        const char *key;
        const char *value;
        uint64_t version;
} PutParameters;

static const VarlinkField get_fields[] = {
        { "key", VARLINK_STRING, offsetof(GetParameters, key), true },
        {},
};

static const VarlinkField put_fields[] = {
        { "key", VARLINK_STRING, offsetof(PutParameters, key), true },
        { "value", VARLINK_STRING, offsetof(PutParameters, value), true },
        { "version", VARLINK_UINT64, offsetof(PutParameters, version), true },
        {},
};

size_t kv_message_size_for(size_t max_key_size, size_t max_value_size) {
        /* 6 bytes per input byte ("\u0001"), plus room for the method name and framing. */
        size_t max = (max_key_size > SIZE_MAX / 12 || max_value_size > SIZE_MAX / 12)
                ? SIZE_MAX
                : 6 * (max_key_size + max_value_size) + 4096;

        return MAX(max, (size_t) VARLINK_DEFAULT_MAX_MESSAGE);
}

static int reply_error_max(KVService *k, VarlinkConn *c, const char *error, size_t max) {
        k->stats.errors++;
        return varlink_conn_errorb(c, error, "max", json_object_new_uint64(max), NULL);
}

static int reply_error(KVService *k, VarlinkConn *c, const char *error) {
        k->stats.errors++;
        return varlink_conn_error(c, error, NULL);
}

static int kv_get(KVService *k, VarlinkConn *c, const char *key, size_t key_size) {
        const char *value;
        size_t value_size;
        uint64_t version;
        int r;

        k->stats.gets++;
        if (key_size > k->limits.max_key_size)
                return reply_error_max(k, c, KV_ERROR_KEY_TOO_LARGE, k->limits.max_key_size);

        r = store_get(k->store, key, key_size, &value, &value_size, &version);
        if (r == -ENOENT)
                return reply_error(k, c, KV_ERROR_NO_KEY);
        if (r < 0)
                return r;

        return varlink_conn_reply_fields(c, (const VarlinkReplyField[]) {
                { .name = "value", .string = value, .string_size = value_size },
                { .name = "version", .number = version },
        }, 2);
}

static int put_answer(KVService *k, VarlinkConn *c, int r);

static int kv_put(KVService *k, VarlinkConn *c, const char *key, size_t key_size, const char *value,
                  size_t value_size, uint64_t version) {
        PendingPut *pending = NULL;
        int r;

        k->stats.puts++;
        if (key_size > k->limits.max_key_size)
                return reply_error_max(k, c, KV_ERROR_KEY_TOO_LARGE, k->limits.max_key_size);
        if (value_size > k->limits.max_value_size)
                return reply_error_max(k, c, KV_ERROR_VALUE_TOO_LARGE, k->limits.max_value_size);

        r = kv_state_put(k->state, key, key_size, value, value_size, version,
                         (uint32_t) varlink_conn_get_peer_uid(c), c, &pending);
        if (r > 0) {
                /* Answered by put_done() once durable; the connection reads nothing meanwhile. */
                varlink_conn_set_userdata(c, pending);
                return 0;
        }
        return put_answer(k, c, r);
}

static int method_get(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        KVService *k = userdata;
        GetParameters p = {};
        int r;

        r = varlink_conn_dispatch(c, parameters, get_fields, &p);
        if (r < 0) {
                k->stats.gets++;
                k->stats.errors++;
                return r;
        }
        return kv_get(k, c, p.key, strlen(p.key));
}

static int method_put(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        KVService *k = userdata;
        PutParameters p = {};
        int r;

        r = varlink_conn_dispatch(c, parameters, put_fields, &p);
        if (r < 0) {
                k->stats.puts++;
                k->stats.errors++;
                return r;
        }
        return kv_put(k, c, p.key, strlen(p.key), p.value, strlen(p.value), p.version);
}

/* The same two methods for plain calls, read in place: most of the server's calls. */
static int plain_get(VarlinkConn *c, const VarlinkView *call, void *userdata) {
        static const char *const names[] = { "key" };
        static const bool string[] = { true };
        const VarlinkViewField *f[1];
        int r;

        if (!varlink_view_match(call, names, string, 1, f))
                return 0;
        r = kv_get(userdata, c, f[0]->value, f[0]->value_size);
        return r < 0 ? r : 1;
}

static int plain_put(VarlinkConn *c, const VarlinkView *call, void *userdata) {
        static const char *const names[] = { "key", "value", "version" };
        static const bool string[] = { true, true, false };
        const VarlinkViewField *f[3];
        uint64_t version;
        int r;

        if (!varlink_view_match(call, names, string, 3, f) || !varlink_view_uint64(f[2], &version))
                return 0;
        r = kv_put(userdata, c, f[0]->value, f[0]->value_size, f[1]->value, f[1]->value_size, version);
        return r < 0 ? r : 1;
}

static int put_answer(KVService *k, VarlinkConn *c, int r) {
        switch (r) {
        case 0:
                return varlink_conn_reply(c, NULL);
        case -ENOENT:
                return reply_error(k, c, KV_ERROR_NO_KEY);
        case -ESTALE:
                return reply_error(k, c, KV_ERROR_VERSION_MISMATCH);
        case -EOVERFLOW:
                /* Needs 2^64 Puts on one key; mismatch is the honest answer to any
                 * further version a client may name. */
                return reply_error(k, c, KV_ERROR_VERSION_MISMATCH);
        case -E2BIG:
                return reply_error_max(k, c, KV_ERROR_VALUE_TOO_LARGE, k->limits.max_value_size);
        case -EDQUOT: {
                const QuotaLimits *l = quota_limits(kv_state_quota(k->state));

                k->stats.errors++;
                return varlink_conn_errorb(c, KV_ERROR_QUOTA_EXCEEDED,
                                           "maxKeys", json_object_new_uint64(l->keys),
                                           "maxBytes", json_object_new_uint64(l->bytes),
                                           NULL);
        }
        case -ENOMEM:
                /* Closing the connection tells the client the call failed without claiming
                 * anything about the key. */
                log_warning_errno(r, "Put from %s failed: %m", varlink_conn_describe(c));
                varlink_conn_close(c);
                return r;
        default:
                /* The log failed: nothing of this Put was applied, or will be. */
                k->stats.errors++;
                k->stats.storage_errors++;
                return varlink_conn_errorb(c, KV_ERROR_STORAGE_ERROR,
                                           "reason", json_object_new_string(strerror(-r)),
                                           NULL);
        }
}

static void put_done(void *waiter, int result, void *userdata) {
        VarlinkConn *c = waiter;

        varlink_conn_set_userdata(c, NULL);
        (void) put_answer(userdata, c, result);
}

static void on_disconnect(VarlinkConn *c, void *userdata) {
        KVService *k = userdata;

        /* A Put still waiting for its sync is applied all the same, unanswered. */
        kv_state_forget(k->state, varlink_conn_get_userdata(c));
        varlink_conn_set_userdata(c, NULL);
}

int kv_service_new(sd_event *event, Store *store, KVState *state, const KVLimits *limits, KVService **ret) {
        static const VarlinkServerInfo info = {
                .vendor = "mrkv",
                .product = "mrkv-kvserver",
                .version = PACKAGE_VERSION,
                .url = "https://github.com/mrkv/mrkv",
        };
        KVService *k;
        int r;

        assert(event);
        assert(store);
        assert(state);
        assert(limits);
        assert(ret);

        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->store = store;
        k->state = state;
        k->limits = *limits;
        if (k->limits.max_message_size == 0)
                k->limits.max_message_size =
                        kv_message_size_for(k->limits.max_key_size, k->limits.max_value_size);

        r = varlink_server_new(event, &info, k, &k->server);
        if (r < 0)
                goto fail;
        varlink_server_set_max_message_size(k->server, k->limits.max_message_size);
        varlink_server_set_limits(k->server, &k->limits.server);
        varlink_server_set_disconnect_handler(k->server, on_disconnect);
        kv_state_set_put_done(state, put_done, k);

        r = varlink_server_add_interface(k->server, kv_interface_description);
        if (r < 0)
                goto fail;
        r = varlink_server_bind(k->server, "org.mrkv.KV.Get", method_get);
        if (r < 0)
                goto fail;
        r = varlink_server_bind(k->server, "org.mrkv.KV.Put", method_put);
        if (r < 0)
                goto fail;
        r = varlink_server_bind_plain(k->server, "org.mrkv.KV.Get", plain_get);
        if (r < 0)
                goto fail;
        r = varlink_server_bind_plain(k->server, "org.mrkv.KV.Put", plain_put);
        if (r < 0)
                goto fail;

        *ret = k;
        return 0;

fail:
        kv_service_free(k);
        return r;
}

KVService *kv_service_free(KVService *k) {
        if (!k)
                return NULL;
        varlink_server_free(k->server);
        free(k);
        return NULL;
}

int kv_service_listen_fd(KVService *k, int fd) {
        assert(k);
        return varlink_server_listen_fd(k->server, fd);
}

void kv_service_shutdown(KVService *k, uint64_t timeout_usec) {
        assert(k);
        varlink_server_flush_and_close(k->server, timeout_usec);
}

unsigned kv_service_n_connections(KVService *k) {
        assert(k);
        return varlink_server_n_connections(k->server);
}

const KVStats *kv_service_stats(KVService *k) {
        assert(k);
        return &k->stats;
}
