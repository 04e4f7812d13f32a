/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Watching a key or a prefix: one Watch call with more on a connection of its own, read
 * without blocking, made again from the last version returned when the connection is
 * lost or the server ends the call. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

#include "clerk-internal.h"
#include "json-util.h"
#include "macro.h"
#include "mrkv/kv.h"
#include "org.mrkv.KV.varlink.h"
#include "pause.h"
#include "pollable.h"

/* How long to wait before trying again when the server holds all the watchers it may. */
#define LIMIT_PAUSE_USEC (1 * USEC_PER_SEC)

struct mrkv_watch {
        Address address;
        uint64_t attempt_timeout_usec;
        uint64_t retry_pause_usec;
        uint64_t random_state;

        char *key, *prefix; /* exactly one is set */
        uint64_t version;   /* the highest version returned, or the one started after */

        VarlinkClient *conn;
        uint64_t reconnect_at; /* while conn is NULL */
        Pollable pollable;
        int failed; /* < 0: the server refused the watch; returned from then on */

        json_object *current; /* the reply the entry points into */
        mrkv_entry entry;
};

static int watch_new(mrkv_clerk *c, const char *key, const char *prefix, uint64_t version, mrkv_watch **ret) {
        mrkv_watch *w;
        int r;

        if (!c || !ret)
                return -EINVAL;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->pollable = (Pollable) { .epoll_fd = -EBADF, .timer_fd = -EBADF, .conn_fd = -EBADF };

        r = address_parse(clerk_get_address(c)->string, &w->address);
        if (r < 0) {
                free(w);
                return r;
        }
        w->attempt_timeout_usec = clerk_get_attempt_timeout(c);
        w->retry_pause_usec = clerk_get_retry_pause(c);
        jitter_seed(&w->random_state);
        w->version = version;

        if ((key && !(w->key = strdup(key))) || (prefix && !(w->prefix = strdup(prefix)))) {
                mrkv_watch_free(w);
                return -ENOMEM;
        }
        r = pollable_init(&w->pollable);
        if (r < 0) {
                mrkv_watch_free(w);
                return r;
        }
        /* Readable at once: the first process() connects. */
        r = pollable_arm(&w->pollable, now_usec());
        if (r < 0) {
                mrkv_watch_free(w);
                return r;
        }

        *ret = w;
        return 0;
}

_public_ int mrkv_watch_new(mrkv_clerk *c, const char *key, uint64_t version, mrkv_watch **ret) {
        if (!key)
                return -EINVAL;
        return watch_new(c, key, NULL, version, ret);
}

_public_ int mrkv_watch_new_prefix(mrkv_clerk *c, const char *prefix, uint64_t version, mrkv_watch **ret) {
        if (!prefix)
                return -EINVAL;
        return watch_new(c, NULL, prefix, version, ret);
}

_public_ mrkv_watch *mrkv_watch_free(mrkv_watch *w) {
        if (!w)
                return NULL;
        varlink_client_free(w->conn);
        pollable_done(&w->pollable);
        json_object_put(w->current);
        address_done(&w->address);
        free(w->key);
        free(w->prefix);
        free(w);
        return NULL;
}

_public_ int mrkv_watch_get_fd(mrkv_watch *w) {
        return w ? w->pollable.epoll_fd : -EINVAL;
}

_public_ uint64_t mrkv_watch_get_version(const mrkv_watch *w) {
        return w ? w->version : 0;
}

static void watch_disconnect(mrkv_watch *w, uint64_t pause) {
        (void) pollable_set_conn(&w->pollable, -EBADF);
        w->conn = varlink_client_free(w->conn);
        w->reconnect_at = usec_add(now_usec(), pause);
        (void) pollable_arm(&w->pollable, w->reconnect_at);
}

static int watch_connect(mrkv_watch *w) {
        _cleanup_json_ json_object *parameters = NULL;
        uint64_t deadline = usec_add(now_usec(), w->attempt_timeout_usec);
        int r;

        r = json_build_object(&parameters,
                              w->key ? "key" : "prefix", json_object_new_string(w->key ?: w->prefix),
                              "version", json_object_new_uint64(w->version),
                              NULL);
        if (r < 0)
                return r;

        r = clerk_connect(&w->address, deadline, &w->conn);
        if (r < 0)
                return r;
        r = pollable_set_conn(&w->pollable, varlink_client_get_fd(w->conn));
        if (r >= 0)
                r = varlink_client_send(w->conn, KV_METHOD_WATCH, parameters, VARLINK_CLIENT_MORE,
                                        deadline - MIN(deadline, now_usec()));
        if (r >= 0)
                r = pollable_arm(&w->pollable, UINT64_MAX);
        return r;
}

/* Takes in one reply: 1 and the entry if it is a change to return, 0 if it is one
 * already returned, -EBADMSG. */
static int watch_take(mrkv_watch *w, json_object *parameters) {
        struct {
                const char *key, *value;
                uint64_t version, lease;
                bool deleted;
        } p = {};
        static const VarlinkField fields[] = {
                { "key", VARLINK_STRING, offsetof(typeof(p), key), true },
                { "version", VARLINK_UINT64, offsetof(typeof(p), version), true },
                { "value", VARLINK_STRING, offsetof(typeof(p), value), false },
                { "deleted", VARLINK_BOOL, offsetof(typeof(p), deleted), true },
                { "lease", VARLINK_UINT64, offsetof(typeof(p), lease), false },
                {},
        };
        const char *bad_field = NULL;

        if (varlink_dispatch(parameters, fields, &p, &bad_field) < 0)
                return -EBADMSG;
        if (w->key ? !streq(p.key, w->key) : strncmp(p.key, w->prefix, strlen(w->prefix)) != 0)
                return -EBADMSG;
        if (!p.deleted && !p.value)
                return -EBADMSG;

        /* After a resume the server may send again the state we have: the versions of a
         * key only go up, so anything not above the last is old. */
        if (w->key && p.version <= w->version)
                return 0;

        json_object_put(w->current);
        w->current = json_object_get(parameters);
        w->version = MAX(w->version, p.version);
        w->entry = (mrkv_entry) {
                .key = p.key,
                .value = p.deleted ? NULL : p.value,
                .version = p.version,
                .lease = p.lease,
                .deleted = p.deleted,
        };
        return 1;
}

_public_ int mrkv_watch_process(mrkv_watch *w, const mrkv_entry **ret) {
        int r;

        if (!w || !ret)
                return -EINVAL;
        if (w->failed < 0)
                return w->failed;

        for (;;) {
                _cleanup_json_ json_object *parameters = NULL;
                const char *error = NULL;
                bool continues = false;

                if (!w->conn) {
                        if (now_usec() < w->reconnect_at) {
                                r = pollable_arm(&w->pollable, w->reconnect_at);
                                return r < 0 ? r : 0;
                        }
                        r = watch_connect(w);
                        if (r < 0) {
                                if (!error_is_transient(r))
                                        return r;
                                watch_disconnect(w, jitter(&w->random_state, w->retry_pause_usec));
                                return 0;
                        }
                }

                r = varlink_client_read(w->conn, 0, &parameters, &error, &continues);
                if (r == -ETIMEDOUT)
                        return 0;
                if (r < 0) {
                        if (r == -ENOMEM)
                                return r;
                        /* Closed, reset or garbled: a new connection resumes where we are. */
                        watch_disconnect(w, jitter(&w->random_state, w->retry_pause_usec));
                        continue;
                }

                if (error) {
                        if (streq(error, KV_ERROR_WATCH_OVERFLOW)) {
                                /* We fell behind; everything it sent before is read, so
                                 * our own last version is where to resume. */
                                watch_disconnect(w, 0);
                                continue;
                        }
                        if (streq(error, KV_ERROR_TOO_MANY_WATCHERS)) {
                                watch_disconnect(w, jitter(&w->random_state, LIMIT_PAUSE_USEC));
                                return MRKV_ERR_LIMIT;
                        }
                        r = generic_error_to_errno(error);
                        watch_disconnect(w, UINT64_MAX);
                        w->failed = r;
                        return r;
                }

                r = watch_take(w, parameters);
                if (r < 0 || !continues)
                        /* A reply we cannot use, or the server ended the call: start again. */
                        watch_disconnect(w, r < 0 ? jitter(&w->random_state, w->retry_pause_usec) : 0);
                if (r > 0) {
                        *ret = &w->entry;
                        return 1;
                }
        }
}

_public_ int mrkv_watch_next(mrkv_watch *w, uint64_t timeout_usec, const mrkv_entry **ret) {
        uint64_t deadline = usec_add(now_usec(), timeout_usec);
        int r;

        if (!w || !ret)
                return -EINVAL;

        for (;;) {
                r = mrkv_watch_process(w, ret);
                if (r != 0 && r != MRKV_ERR_LIMIT)
                        return r;
                r = pollable_wait(&w->pollable, deadline);
                if (r <= 0)
                        return r;
        }
}
