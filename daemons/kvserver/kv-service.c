/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "config.h"
#include "json-util.h"
#include "kv-service.h"
#include "lease.h"
#include "log.h"
#include "macro.h"
#include "org.mrkv.KV.varlink.h"
#include "time-util.h"
#include "watch.h"

struct KVService {
        sd_event *event;
        VarlinkServer *server;
        Store *store;
        KVState *state;
        KVLimits limits;
        KVStats stats;
        Watchers *watchers;
        size_t n_keepalives;
};

/* A call that streams: a Watch or a KeepAlive with more, the connection's userdata. The
 * Puts, Deletes, Grants and Revokes that wait for the log are held calls of their
 * connection (varlink_conn_hold()), each with its PendingPut. */
typedef struct Stream {
        KVService *service;
        VarlinkConn *conn;
        bool more;
        bool starting;          /* the Watch call is still being set up */
        Watcher *watcher;       /* a Watch */
        uint64_t sent_version;  /* the last version sent (prefix: the highest), or the start */
        uint64_t lease;         /* a KeepAlive */
        uint64_t interval;      /* µs between renewals */
        uint32_t uid;
        sd_event_source *timer;
        sd_event_source *defer; /* a Watch: flushes again after a batch of calls */
} Stream;

static void conn_set_stream(VarlinkConn *c, Stream *st) {
        varlink_conn_set_userdata(c, st);
}

static Stream *conn_stream(VarlinkConn *c) {
        return varlink_conn_get_userdata(c);
}

/* The answer waits for the log: the connection goes on with its later calls meanwhile, and
 * their answers follow this one (pipelined Puts share a sync), as long as what it holds
 * stays within the server's bounds (VARLINK_HELD_MAX calls, VARLINK_HELD_SIZE_MAX bytes of
 * keys and values). Without memory for that, the entry is applied unanswered and the
 * connection closed, which claims nothing. */
static int hold(KVService *k, VarlinkConn *c, PendingPut *pending) {
        VarlinkHeld *h;
        int r;

        r = varlink_conn_hold(c, pending, sizeof(PendingPut) + pending->key_size + pending->value_size, &h);
        if (r < 0) {
                kv_state_forget(k->state, pending);
                log_warning_errno(r, "Failed to hold a call of %s, closing it: %m", varlink_conn_describe(c));
                varlink_conn_close(c);
                return r;
        }
        pending->waiter = h;
        return 0;
}

typedef struct GetParameters {
        const char *key;
} GetParameters;

typedef struct PutParameters {
        const char *key;
        const char *value;
        uint64_t version;
        uint64_t lease;
} PutParameters;

typedef struct ListParameters {
        const char *prefix;
        const char *start_after;
        uint64_t limit;
        bool values;
} ListParameters;

typedef struct WatchParameters {
        const char *key;
        const char *prefix;
        uint64_t version;
} WatchParameters;

typedef struct LeaseParameters {
        uint64_t lease;
        uint64_t ttl;
} LeaseParameters;

static const VarlinkField get_fields[] = {
        { "key", VARLINK_STRING, offsetof(GetParameters, key), true },
        {},
};

static const VarlinkField put_fields[] = {
        { "key", VARLINK_STRING, offsetof(PutParameters, key), true },
        { "value", VARLINK_STRING, offsetof(PutParameters, value), true },
        { "version", VARLINK_UINT64, offsetof(PutParameters, version), true },
        { "lease", VARLINK_UINT64, offsetof(PutParameters, lease), false },
        {},
};

static const VarlinkField delete_fields[] = {
        { "key", VARLINK_STRING, offsetof(PutParameters, key), true },
        { "version", VARLINK_UINT64, offsetof(PutParameters, version), true },
        {},
};

static const VarlinkField list_fields[] = {
        { "prefix", VARLINK_STRING, offsetof(ListParameters, prefix), false },
        { "startAfter", VARLINK_STRING, offsetof(ListParameters, start_after), false },
        { "limit", VARLINK_UINT64, offsetof(ListParameters, limit), false },
        { "values", VARLINK_BOOL, offsetof(ListParameters, values), false },
        {},
};

static const VarlinkField watch_fields[] = {
        { "key", VARLINK_STRING, offsetof(WatchParameters, key), false },
        { "prefix", VARLINK_STRING, offsetof(WatchParameters, prefix), false },
        { "version", VARLINK_UINT64, offsetof(WatchParameters, version), false },
        {},
};

static const VarlinkField grant_fields[] = {
        { "ttl", VARLINK_UINT64, offsetof(LeaseParameters, ttl), true },
        {},
};

static const VarlinkField lease_fields[] = {
        { "lease", VARLINK_UINT64, offsetof(LeaseParameters, lease), true },
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
                  size_t value_size, uint64_t version, uint64_t lease) {
        PendingPut *pending = NULL;
        int r;

        k->stats.puts++;
        if (key_size > k->limits.max_key_size)
                return reply_error_max(k, c, KV_ERROR_KEY_TOO_LARGE, k->limits.max_key_size);
        if (value_size > k->limits.max_value_size)
                return reply_error_max(k, c, KV_ERROR_VALUE_TOO_LARGE, k->limits.max_value_size);

        r = kv_state_put(k->state, key, key_size, value, value_size, version, lease,
                         (uint32_t) varlink_conn_get_peer_uid(c), c, &pending);
        if (r > 0)
                return hold(k, c, pending); /* answered by put_done() once durable */
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
        return kv_put(k, c, p.key, strlen(p.key), p.value, strlen(p.value), p.version, p.lease);
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
        r = kv_put(userdata, c, f[0]->value, f[0]->value_size, f[1]->value, f[1]->value_size, version, 0);
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
        case -ENXIO:
                return reply_error(k, c, KV_ERROR_NO_LEASE);
        case -EXFULL:
                return reply_error_max(k, c, KV_ERROR_LEASE_FULL, k->limits.max_lease_keys);
        case -EUSERS:
                return reply_error_max(k, c, KV_ERROR_TOO_MANY_LEASES, k->limits.max_leases);
        case -EINVAL:
                k->stats.errors++;
                return varlink_conn_error_invalid_parameter(c, "ttl");
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

static int grant_answer(KVService *k, VarlinkConn *c, int r, uint64_t lease, uint64_t ttl) {
        if (r < 0)
                return put_answer(k, c, r);
        return varlink_conn_reply_fields(c, (const VarlinkReplyField[]) {
                { .name = "lease", .number = lease },
                { .name = "ttl", .number = ttl },
        }, 2);
}

static void put_done(void *waiter, int result, const PendingPut *pp, void *userdata) {
        VarlinkConn *c = varlink_held_answer(waiter);

        if (pp->kind == PENDING_GRANT)
                (void) grant_answer(userdata, c, result, pp->lease, pp->version);
        else
                (void) put_answer(userdata, c, result);
}

static Stream *stream_free(Stream *st);

static void on_disconnect(VarlinkConn *c, void *userdata) {
        KVService *k = userdata;

        /* The Puts still waiting for their sync are applied all the same, unanswered. */
        for (VarlinkHeld *h = NULL; (h = varlink_conn_next_held(c, h));)
                kv_state_forget(k->state, varlink_held_get_userdata(h));
        stream_free(conn_stream(c));
        varlink_conn_set_userdata(c, NULL);
}

/* Delete, List */

static int kv_delete(KVService *k, VarlinkConn *c, const char *key, size_t key_size, uint64_t version) {
        PendingPut *pending = NULL;
        int r;

        k->stats.deletes++;
        if (key_size > k->limits.max_key_size)
                return reply_error_max(k, c, KV_ERROR_KEY_TOO_LARGE, k->limits.max_key_size);
        r = kv_state_delete(k->state, key, key_size, version, c, &pending);
        if (r > 0)
                return hold(k, c, pending);
        return put_answer(k, c, r);
}

static int method_delete(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        KVService *k = userdata;
        PutParameters p = {};
        int r;

        r = varlink_conn_dispatch(c, parameters, delete_fields, &p);
        if (r < 0) {
                k->stats.errors++;
                return r;
        }
        return kv_delete(k, c, p.key, strlen(p.key), p.version);
}

static json_object *list_entry(const StoreItem *item, bool values) {
        json_object *o = NULL;

        if (json_build_object(&o,
                              "key", json_object_new_string_len(item->key, (int) item->key_size),
                              "version", json_object_new_uint64(item->version),
                              NULL) < 0)
                return NULL;
        if (values && json_object_add(o, "value", json_object_new_string_len(item->value, (int) item->value_size)) < 0)
                return json_object_put(o), NULL;
        if (item->lease != 0 && json_object_add(o, "lease", json_object_new_uint64(item->lease)) < 0)
                return json_object_put(o), NULL;
        return o;
}

static int method_list(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        _cleanup_(json_object_putp) json_object *entries = NULL;
        _cleanup_free_ StoreItem *items = NULL;
        KVService *k = userdata;
        ListParameters p = {};
        size_t n, bytes = 0;
        bool more;
        int r;

        k->stats.lists++;
        r = varlink_conn_dispatch(c, parameters, list_fields, &p);
        if (r < 0) {
                k->stats.errors++;
                return r;
        }
        if (p.limit == 0)
                p.limit = KV_LIST_DEFAULT_LIMIT;
        p.limit = MIN(p.limit, (uint64_t) KV_LIST_MAX_LIMIT);

        r = store_list(k->store, p.prefix, p.prefix ? strlen(p.prefix) : 0, p.start_after,
                       p.start_after ? strlen(p.start_after) : 0, (size_t) p.limit, &items, &n, &more);
        if (r < 0)
                return r;

        entries = json_object_new_array_ext((int) n);
        if (!entries)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *o;

                /* One entry at least, so that every page moves on. */
                bytes += 64 + 6 * (items[i].key_size + (p.values ? items[i].value_size : 0));
                if (i > 0 && bytes > KV_LIST_MAX_REPLY) {
                        more = true;
                        break;
                }
                o = list_entry(&items[i], p.values);
                if (!o)
                        return -ENOMEM;
                if (json_object_array_add(entries, o) < 0) {
                        json_object_put(o);
                        return -ENOMEM;
                }
        }
        return varlink_conn_replyb(c, "entries", json_object_get(entries), "more", json_object_new_boolean(more),
                                   NULL);
}

/* Streams: Watch and KeepAlive */

static Stream *stream_free(Stream *st) {
        if (!st)
                return NULL;
        if (st->watcher)
                watcher_free(st->watcher);
        else
                st->service->n_keepalives--;
        sd_event_source_disable_unref(st->timer);
        sd_event_source_disable_unref(st->defer);
        return mfree(st);
}

/* Ends the stream's call: the connection reads calls again, and may be idle again. */
static void stream_end(Stream *st) {
        varlink_conn_set_long_lived(st->conn, false);
        conn_set_stream(st->conn, NULL);
        stream_free(st);
}

static int watch_notify(Stream *st, const WatchEvent *e) {
        json_object *p = NULL;
        int r;

        r = json_build_object(&p,
                              "key", json_object_new_string_len(e->data, (int) e->key_size),
                              "version", json_object_new_uint64(e->version),
                              "deleted", json_object_new_boolean(e->deleted),
                              NULL);
        if (r >= 0 && !e->deleted)
                r = json_object_add(p, "value", json_object_new_string_len(e->data + e->key_size, (int) e->value_size));
        if (r >= 0 && e->lease != 0)
                r = json_object_add(p, "lease", json_object_new_uint64(e->lease));
        if (r < 0) {
                json_object_put(p);
                varlink_conn_close(st->conn);
                return r;
        }
        return st->more ? varlink_conn_notify(st->conn, p) : varlink_conn_reply(st->conn, p);
}

static int on_watch_defer(sd_event_source *s, void *userdata);

/* Sends what the watcher has queued while the connection takes it. With rearm, a flush
 * that stopped while the connection's output waits for the end of a batch of calls
 * (which writes it without a drained event when the socket takes it all) is tried again
 * once that batch is over; a socket that is really full ends in the drained handler. */
static void watch_flush_internal(Stream *st, bool rearm) {
        VarlinkConn *c = st->conn;
        Watcher *w = st->watcher;
        WatchEvent *e;

        while (varlink_conn_output_size(c) == 0 && (e = watcher_pop(w))) {
                bool last = !st->more;
                int r;

                r = watch_notify(st, e);
                if (r < 0) {
                        watch_event_unref(e);
                        return; /* closed: the disconnect handler freed st */
                }
                st->sent_version = w->key ? e->version : MAX(st->sent_version, e->version);
                watch_event_unref(e);
                if (last) {
                        stream_end(st);
                        return;
                }
        }
        if (rearm && w->n_queued > 0) {
                int r = st->defer ? sd_event_source_set_enabled(st->defer, SD_EVENT_ONESHOT)
                                  : sd_event_add_defer(st->service->event, &st->defer, on_watch_defer, st);

                if (r < 0)
                        log_warning_errno(r, "Failed to defer the changes of %s: %m", varlink_conn_describe(c));
        }
        if (w->overflowed && w->n_queued == 0) {
                uint64_t version = st->sent_version;

                /* Ends the call; errors are counted as such. */
                st->service->stats.errors++;
                stream_end(st);
                (void) varlink_conn_errorb(c, KV_ERROR_WATCH_OVERFLOW, "version", json_object_new_uint64(version),
                                           NULL);
        }
}

static void watch_flush(Stream *st) {
        watch_flush_internal(st, true);
}

static int on_watch_defer(sd_event_source *s, void *userdata) {
        watch_flush_internal(userdata, false);
        return 0;
}

static void watcher_ready(Watcher *w, void *userdata) {
        Stream *st = w->userdata;

        if (!st->starting)
                watch_flush(st);
}

static void on_drained(VarlinkConn *c, void *userdata) {
        Stream *st = conn_stream(c);

        if (st && st->watcher)
                watch_flush(st);
}

static void watch_changed(const void *key, size_t key_size, const void *value, size_t value_size, uint64_t version,
                          bool deleted, uint64_t lease, void *userdata) {
        KVService *k = userdata;

        watchers_changed(k->watchers, key, key_size, value, value_size, version, deleted, lease);
}

/* The state a new watcher starts from: a key past version, or every key under a prefix
 * past it, page by page. */
static int watch_start(KVService *k, Stream *st, const char *key, size_t key_size, bool prefix, uint64_t version) {
        Watcher *w = st->watcher;
        const char *value;
        size_t value_size;
        uint64_t current, lease = 0;

        if (!prefix) {
                if (store_get(k->store, key, key_size, &value, &value_size, &current) >= 0) {
                        if (current > version) {
                                (void) store_get_lease(k->store, key, key_size, &lease);
                                watcher_push(w, key, key_size, value, value_size, current, false, lease);
                        }
                } else if (version > 0 && kv_state_floor(k->state) > version)
                        watcher_push(w, key, key_size, NULL, 0, kv_state_floor(k->state), true, 0);
                return 0;
        }
        if (version == 0)
                return 0;

        _cleanup_free_ char *after = NULL;
        size_t after_size = 0;
        for (;;) {
                _cleanup_free_ StoreItem *items = NULL;
                size_t n;
                bool more;
                int r;

                r = store_list(k->store, key, key_size, after, after_size, KV_LIST_MAX_LIMIT, &items, &n, &more);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n && !w->overflowed; i++)
                        if (items[i].version > version)
                                watcher_push(w, items[i].key, items[i].key_size, items[i].value,
                                             items[i].value_size, items[i].version, false, items[i].lease);
                if (!more || n == 0 || w->overflowed)
                        return 0;
                free(after);
                after = malloc(MAX(items[n - 1].key_size, (size_t) 1));
                if (!after)
                        return -ENOMEM;
                memcpy(after, items[n - 1].key, items[n - 1].key_size);
                after_size = items[n - 1].key_size;
        }
}

static int method_watch(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        KVService *k = userdata;
        WatchParameters p = {};
        const char *key;
        Stream *st;
        int r;

        k->stats.watches++;
        r = varlink_conn_dispatch(c, parameters, watch_fields, &p);
        if (r < 0) {
                k->stats.errors++;
                return r;
        }
        if (!!p.key == !!p.prefix) {
                k->stats.errors++;
                return varlink_conn_error_invalid_parameter(c, p.key ? "prefix" : "key");
        }
        key = p.key ?: p.prefix;
        if (strlen(key) > k->limits.max_key_size)
                return reply_error_max(k, c, KV_ERROR_KEY_TOO_LARGE, k->limits.max_key_size);

        st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        *st = (Stream) {
                .service = k,
                .conn = c,
                .more = flags & VARLINK_CALL_MORE,
                .starting = true,
                .sent_version = p.version,
        };
        r = watcher_new(k->watchers, key, strlen(key), !!p.prefix, p.version, st, &st->watcher);
        if (r == -EUSERS) {
                free(st);
                return reply_error_max(k, c, KV_ERROR_TOO_MANY_WATCHERS, watchers_max(k->watchers));
        }
        if (r < 0) {
                free(st);
                return r;
        }
        conn_set_stream(c, st);
        /* A watcher waits as long as it likes: not an idle connection. */
        varlink_conn_set_long_lived(c, true);

        r = watch_start(k, st, key, strlen(key), !!p.prefix, p.version);
        if (r < 0) {
                stream_end(st);
                return r;
        }
        st->starting = false;
        watch_flush(st);
        return 0;
}

static int keepalive_renew(Stream *st);

static int on_keepalive_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Stream *st = userdata;

        /* A client that has not read the last renewal is not renewed: a stopped or cut off
         * holder loses its lease within its ttl. */
        if (varlink_conn_unread_size(st->conn) == 0)
                (void) keepalive_renew(st);
        else {
                (void) sd_event_source_set_time_relative(st->timer, st->interval);
                (void) sd_event_source_set_enabled(st->timer, SD_EVENT_ONESHOT);
        }
        return 0;
}

/* Renews the lease and sends the ttl; ends the call when the lease is gone. */
static int keepalive_renew(Stream *st) {
        KVService *k = st->service;
        VarlinkConn *c = st->conn;
        uint64_t ttl;
        int r;

        r = kv_state_keepalive(k->state, st->lease, st->uid, &ttl);
        if (r < 0) {
                stream_end(st);
                return put_answer(k, c, r);
        }
        r = varlink_conn_notifyb(c, "ttl", json_object_new_uint64(ttl), NULL);
        if (r < 0)
                return r;
        st->interval = MAX(ttl * USEC_PER_SEC / 3, (uint64_t) USEC_PER_SEC / 10);
        if (!st->timer)
                r = sd_event_add_time_relative(k->event, &st->timer, CLOCK_MONOTONIC,
                                               st->interval, 0, on_keepalive_timer, st);
        else {
                r = sd_event_source_set_time_relative(st->timer, st->interval);
                if (r >= 0)
                        r = sd_event_source_set_enabled(st->timer, SD_EVENT_ONESHOT);
        }
        if (r < 0) {
                log_warning_errno(r, "Failed to set the renewal timer of %s: %m", varlink_conn_describe(c));
                varlink_conn_close(c);
        }
        return r;
}

static int method_grant(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        KVService *k = userdata;
        LeaseParameters p = {};
        PendingPut *pending = NULL;
        uint64_t lease = 0;
        int r;

        k->stats.leases++;
        r = varlink_conn_dispatch(c, parameters, grant_fields, &p);
        if (r < 0) {
                k->stats.errors++;
                return r;
        }
        r = kv_state_grant(k->state, p.ttl, (uint32_t) varlink_conn_get_peer_uid(c), c, &pending, &lease);
        if (r > 0)
                return hold(k, c, pending);
        return grant_answer(k, c, r, lease, p.ttl);
}

static int method_keepalive(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        KVService *k = userdata;
        LeaseParameters p = {};
        uint64_t ttl;
        Stream *st;
        int r;

        k->stats.leases++;
        r = varlink_conn_dispatch(c, parameters, lease_fields, &p);
        if (r < 0) {
                k->stats.errors++;
                return r;
        }
        if (!(flags & VARLINK_CALL_MORE)) {
                r = kv_state_keepalive(k->state, p.lease, (uint32_t) varlink_conn_get_peer_uid(c), &ttl);
                if (r < 0)
                        return put_answer(k, c, r);
                return varlink_conn_replyb(c, "ttl", json_object_new_uint64(ttl), NULL);
        }

        st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        *st = (Stream) {
                .service = k,
                .conn = c,
                .more = true,
                .lease = p.lease,
                .uid = (uint32_t) varlink_conn_get_peer_uid(c),
        };
        k->n_keepalives++;
        conn_set_stream(c, st);
        varlink_conn_set_long_lived(c, true);
        (void) keepalive_renew(st);
        return 0;
}

static int method_revoke(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        KVService *k = userdata;
        LeaseParameters p = {};
        PendingPut *pending = NULL;
        int r;

        k->stats.leases++;
        r = varlink_conn_dispatch(c, parameters, lease_fields, &p);
        if (r < 0) {
                k->stats.errors++;
                return r;
        }
        r = kv_state_revoke(k->state, p.lease, (uint32_t) varlink_conn_get_peer_uid(c), c, &pending);
        if (r > 0)
                return hold(k, c, pending);
        return put_answer(k, c, r);
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
        k->event = event;
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
        varlink_server_set_drained_handler(k->server, on_drained);
        kv_state_set_put_done(state, put_done, k);

        r = watchers_new(k->limits.max_watchers, k->limits.max_watch_queue, watcher_ready, k, &k->watchers);
        if (r < 0)
                goto fail;
        kv_state_set_watch_handler(state, watch_changed, k);

        r = varlink_server_add_interface(k->server, kv_interface_description);
        if (r < 0)
                goto fail;
        r = varlink_server_bind(k->server, "org.mrkv.KV.Get", method_get);
        if (r < 0)
                goto fail;
        r = varlink_server_bind(k->server, "org.mrkv.KV.Put", method_put);
        if (r < 0)
                goto fail;
        r = varlink_server_bind(k->server, KV_METHOD_DELETE, method_delete);
        if (r >= 0)
                r = varlink_server_bind(k->server, KV_METHOD_LIST, method_list);
        if (r >= 0)
                r = varlink_server_bind(k->server, KV_METHOD_WATCH, method_watch);
        if (r >= 0)
                r = varlink_server_bind(k->server, KV_METHOD_GRANT, method_grant);
        if (r >= 0)
                r = varlink_server_bind(k->server, KV_METHOD_KEEP_ALIVE, method_keepalive);
        if (r >= 0)
                r = varlink_server_bind(k->server, KV_METHOD_REVOKE, method_revoke);
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
        /* Closing the connections frees their watchers first. */
        varlink_server_free(k->server);
        if (k->state)
                kv_state_set_watch_handler(k->state, NULL, NULL);
        watchers_free(k->watchers);
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

size_t kv_service_n_watchers(KVService *k) {
        assert(k);
        return watchers_size(k->watchers) + k->n_keepalives;
}

const KVStats *kv_service_stats(KVService *k) {
        assert(k);
        return &k->stats;
}
