/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

#include "address.h"
#include "clerk-internal.h"
#include "json-util.h"
#include "macro.h"
#include "mrkv/kv.h"
#include "org.mrkv.KV.varlink.h"
#include "pause.h"
#include "varlink-client.h"
#include "varlink-message.h"

#define DEFAULT_ATTEMPT_TIMEOUT_USEC (1 * USEC_PER_SEC)
#define DEFAULT_RETRY_PAUSE_USEC (20 * USEC_PER_MSEC)

struct mrkv_clerk {
        Address address;
        VarlinkClient *conn; /* kept between calls; NULL until the next attempt connects */

        uint64_t attempt_timeout_usec;
        uint64_t deadline_usec; /* per call, relative; UINT64_MAX: none */
        uint64_t retry_pause_usec;
        uint64_t random_state;

        uint64_t n_resends; /* atomic: other threads may read it */
};

_public_ int mrkv_clerk_new(const char *address, mrkv_clerk **ret) {
        _cleanup_free_ char *def = NULL;
        mrkv_clerk *c;
        int r;

        if (!ret)
                return -EINVAL;

        if (!address) {
                r = address_default(MRKV_KV_ADDRESS_ENV, MRKV_KV_SOCKET, &def);
                if (r < 0)
                        return r;
                address = def;
        }

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;

        r = address_parse(address, &c->address);
        if (r < 0) {
                free(c);
                return r;
        }

        c->attempt_timeout_usec = DEFAULT_ATTEMPT_TIMEOUT_USEC;
        c->deadline_usec = UINT64_MAX;
        c->retry_pause_usec = DEFAULT_RETRY_PAUSE_USEC;
        jitter_seed(&c->random_state);

        *ret = c;
        return 0;
}

_public_ mrkv_clerk *mrkv_clerk_free(mrkv_clerk *c) {
        if (!c)
                return NULL;

        varlink_client_free(c->conn);
        address_done(&c->address);
        free(c);
        return NULL;
}

_public_ int mrkv_clerk_set_attempt_timeout(mrkv_clerk *c, uint64_t usec) {
        if (!c || usec == 0)
                return -EINVAL;
        c->attempt_timeout_usec = usec;
        return 0;
}

_public_ int mrkv_clerk_set_deadline(mrkv_clerk *c, uint64_t usec) {
        if (!c || usec == 0)
                return -EINVAL;
        c->deadline_usec = usec;
        return 0;
}

_public_ int mrkv_clerk_set_retry_pause(mrkv_clerk *c, uint64_t usec) {
        if (!c)
                return -EINVAL;
        c->retry_pause_usec = usec;
        return 0;
}

_public_ const char *mrkv_clerk_get_address(const mrkv_clerk *c) {
        return c ? c->address.string : NULL;
}

_public_ uint64_t mrkv_clerk_get_resends(const mrkv_clerk *c) {
        return c ? __atomic_load_n(&c->n_resends, __ATOMIC_RELAXED) : 0;
}

_public_ const char *mrkv_result_to_string(int r) {
        switch (r) {
        case MRKV_OK:
                return "ok";
        case MRKV_ERR_NO_KEY:
                return "no-key";
        case MRKV_ERR_VERSION:
                return "version-mismatch";
        case MRKV_ERR_MAYBE:
                return "maybe";
        case MRKV_ERR_STORAGE:
                return "storage-error";
        case MRKV_ERR_QUOTA:
                return "quota-exceeded";
        case MRKV_ERR_NO_LEASE:
                return "no-lease";
        case MRKV_ERR_LEASE_FULL:
                return "lease-full";
        case MRKV_ERR_LIMIT:
                return "limit-reached";
        default:
                return r < 0 ? strerror(-r) : "unknown result";
        }
}

/* Failures that another attempt on a new connection may cure: the server is down,
 * restarting, overloaded, or the network lost a message. */
bool error_is_transient(int r) {
        switch (-r) {
        case ECONNREFUSED:
        case ENOENT: /* a Unix socket between the server's exit and its restart */
        case ECONNRESET:
        case ECONNABORTED:
        case EPIPE:
        case ENOTCONN:
        case ESHUTDOWN:
        case ETIMEDOUT:
        case EAGAIN: /* a Unix socket's listen backlog is full */
        case EINPROGRESS:
        case EHOSTUNREACH:
        case EHOSTDOWN:
        case ENETUNREACH:
        case ENETDOWN:
        case EADDRNOTAVAIL:
                return true;
        default:
                return false;
        }
}

const Address *clerk_get_address(const mrkv_clerk *c) {
        return &c->address;
}

uint64_t clerk_get_attempt_timeout(const mrkv_clerk *c) {
        return c->attempt_timeout_usec;
}

uint64_t clerk_get_retry_pause(const mrkv_clerk *c) {
        return c->retry_pause_usec;
}

int clerk_connect(const Address *address, uint64_t deadline, VarlinkClient **ret) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        fd = address_connect_until(address, deadline);
        if (fd < 0)
                return fd;
        r = varlink_client_new_fd(fd, ret);
        if (r < 0)
                return r;
        TAKE_FD(fd);
        return 0;
}

static void clerk_disconnect(mrkv_clerk *c) {
        c->conn = varlink_client_free(c->conn);
}

/* One attempt: connects if needed, sends, reads one reply. *ret_sent tells whether the
 * call may have reached the server. */
static int clerk_attempt(mrkv_clerk *c, const char *method, json_object *parameters, uint64_t deadline,
                         json_object **ret_reply, char **ret_error, bool *ret_sent) {
        _cleanup_json_ json_object *reply = NULL;
        const char *error = NULL;
        char *error_copy = NULL;
        uint64_t n;
        bool continues = false;
        int r;

        *ret_sent = false;

        /* A server sends nothing unasked: anything to read now is its close (of an idle
         * connection, say). Then connect again, and nothing was sent on the dead one. */
        if (c->conn && poll(&(struct pollfd) { .fd = varlink_client_get_fd(c->conn), .events = POLLIN }, 1, 0) != 0)
                clerk_disconnect(c);

        if (!c->conn) {
                r = clerk_connect(&c->address, deadline, &c->conn);
                if (r < 0)
                        return r;
        }

        *ret_sent = true;

        n = now_usec();
        if (n >= deadline)
                return -ETIMEDOUT;
        r = varlink_client_send(c->conn, method, parameters, 0, deadline - n);
        if (r < 0)
                return r;

        n = now_usec();
        if (n >= deadline)
                return -ETIMEDOUT;
        r = varlink_client_read(c->conn, deadline - n, &reply, &error, &continues);
        if (r < 0)
                return r;

        if (error) {
                error_copy = strdup(error);
                if (!error_copy)
                        return -ENOMEM;
        }

        *ret_reply = TAKE_PTR(reply);
        *ret_error = error_copy;
        return 0;
}

int clerk_call(mrkv_clerk *c, const char *method, json_object *parameters, json_object **ret_reply,
                      char **ret_error, bool *ret_unanswered) {
        uint64_t deadline = usec_add(now_usec(), c->deadline_usec);
        bool unanswered = false;

        for (;;) {
                uint64_t n = now_usec(), attempt_deadline;
                bool sent;
                int r;

                if (n >= deadline)
                        return -ETIMEDOUT;
                attempt_deadline = MIN(deadline, usec_add(n, c->attempt_timeout_usec));

                r = clerk_attempt(c, method, parameters, attempt_deadline, ret_reply, ret_error, &sent);
                if (r >= 0) {
                        *ret_unanswered = unanswered;
                        return 0;
                }

                /* Whatever happened, this connection may still carry the reply to this
                 * attempt; a fresh one can never confuse that reply with the next's. */
                clerk_disconnect(c);

                if (!error_is_transient(r))
                        return r;
                if (sent)
                        unanswered = true;

                __atomic_add_fetch(&c->n_resends, 1, __ATOMIC_RELAXED);
                pause_until(jitter(&c->random_state, c->retry_pause_usec), deadline);
        }
}

int generic_error_to_errno(const char *error) {
        if (streq(error, VARLINK_ERROR_INVALID_PARAMETER))
                return -EINVAL;
        if (streq(error, VARLINK_ERROR_METHOD_NOT_FOUND) || streq(error, VARLINK_ERROR_INTERFACE_NOT_FOUND) ||
            streq(error, VARLINK_ERROR_METHOD_NOT_IMPLEMENTED))
                return -EOPNOTSUPP;
        if (streq(error, VARLINK_ERROR_PERMISSION_DENIED))
                return -EACCES;
        return -EPROTO;
}

_public_ int mrkv_clerk_get(mrkv_clerk *c, const char *key, char **ret_value, uint64_t *ret_version) {
        _cleanup_json_ json_object *parameters = NULL, *reply = NULL;
        _cleanup_free_ char *error = NULL;
        struct {
                const char *value;
                uint64_t version;
        } p = {};
        static const VarlinkField fields[] = {
                { "value", VARLINK_STRING, offsetof(typeof(p), value), true },
                { "version", VARLINK_UINT64, offsetof(typeof(p), version), true },
                {},
        };
        const char *bad_field = NULL;
        bool unanswered;
        int r;

        if (!c || !key)
                return -EINVAL;

        r = json_build_object(&parameters, "key", json_object_new_string(key), NULL);
        if (r < 0)
                return r;

        r = clerk_call(c, KV_METHOD_GET, parameters, &reply, &error, &unanswered);
        if (r < 0)
                return r;

        /* A Get changes nothing, so a resent one is answered as if it were the first. */
        if (error)
                return streq(error, KV_ERROR_NO_KEY) ? MRKV_ERR_NO_KEY : generic_error_to_errno(error);

        if (varlink_dispatch(reply, fields, &p, &bad_field) < 0)
                return -EBADMSG;

        if (ret_value) {
                char *v = strdup(p.value);
                if (!v)
                        return -ENOMEM;
                *ret_value = v;
        }
        if (ret_version)
                *ret_version = p.version;
        return MRKV_OK;
}

/* The result of a Put or Delete that got a reply; unanswered: an earlier attempt may
 * have been applied. */
static int write_result(const char *error, bool unanswered, bool delete) {
        if (!error)
                return MRKV_OK;
        if (streq(error, KV_ERROR_VERSION_MISMATCH))
                /* An attempt whose reply we lost may have been applied and moved the
                 * version on; then this mismatch is our own doing, and we cannot tell. */
                return unanswered ? MRKV_ERR_MAYBE : MRKV_ERR_VERSION;
        /* A Delete's earlier attempt may have deleted the key. For a Put, NoKey says
         * no attempt was applied, as it always has (kv.h says when deletes blur that). */
        if (streq(error, KV_ERROR_NO_KEY))
                return delete && unanswered ? MRKV_ERR_MAYBE : MRKV_ERR_NO_KEY;
        /* Not applied, whatever earlier attempts did: the server answers it only to a
         * write whose version still matches, which an applied earlier attempt would
         * have moved. */
        if (streq(error, KV_ERROR_STORAGE_ERROR))
                return MRKV_ERR_STORAGE;
        if (streq(error, KV_ERROR_QUOTA_EXCEEDED))
                return MRKV_ERR_QUOTA;
        /* The lease may have ended, or filled up, after an earlier attempt was applied. */
        if (streq(error, KV_ERROR_NO_LEASE))
                return unanswered ? MRKV_ERR_MAYBE : MRKV_ERR_NO_LEASE;
        if (streq(error, KV_ERROR_LEASE_FULL))
                return unanswered ? MRKV_ERR_MAYBE : MRKV_ERR_LEASE_FULL;
        return generic_error_to_errno(error);
}

static int clerk_put(mrkv_clerk *c, const char *key, const char *value, uint64_t version, uint64_t lease) {
        _cleanup_json_ json_object *parameters = NULL, *reply = NULL;
        _cleanup_free_ char *error = NULL;
        bool unanswered;
        int r;

        if (!c || !key || !value)
                return -EINVAL;

        r = json_build_object(&parameters,
                              "key", json_object_new_string(key),
                              "value", json_object_new_string(value),
                              "version", json_object_new_uint64(version),
                              NULL);
        /* Absent unless asked for: a Put without a lease is the call it always was. */
        if (r >= 0 && lease > 0)
                r = json_object_add(parameters, "lease", json_object_new_uint64(lease));
        if (r < 0)
                return r;

        r = clerk_call(c, KV_METHOD_PUT, parameters, &reply, &error, &unanswered);
        if (r < 0)
                return r;
        return write_result(error, unanswered, false);
}

_public_ int mrkv_clerk_put(mrkv_clerk *c, const char *key, const char *value, uint64_t version) {
        return clerk_put(c, key, value, version, 0);
}

_public_ int mrkv_clerk_put_with_lease(mrkv_clerk *c, const char *key, const char *value, uint64_t version,
                                       uint64_t lease) {
        return clerk_put(c, key, value, version, lease);
}

_public_ int mrkv_clerk_delete(mrkv_clerk *c, const char *key, uint64_t version) {
        _cleanup_json_ json_object *parameters = NULL, *reply = NULL;
        _cleanup_free_ char *error = NULL;
        bool unanswered;
        int r;

        if (!c || !key)
                return -EINVAL;

        r = json_build_object(&parameters,
                              "key", json_object_new_string(key),
                              "version", json_object_new_uint64(version),
                              NULL);
        if (r < 0)
                return r;

        r = clerk_call(c, KV_METHOD_DELETE, parameters, &reply, &error, &unanswered);
        if (r < 0)
                return r;
        return write_result(error, unanswered, true);
}

/* The errors of the lease calls. */
static int lease_error(const char *error) {
        if (streq(error, KV_ERROR_NO_LEASE))
                return MRKV_ERR_NO_LEASE;
        if (streq(error, KV_ERROR_TOO_MANY_LEASES))
                return MRKV_ERR_LIMIT;
        if (streq(error, KV_ERROR_STORAGE_ERROR))
                return MRKV_ERR_STORAGE;
        return generic_error_to_errno(error);
}

/* KeepAlive or Revoke of lease; the reply's ttl (KeepAlive) in *ret if not NULL. */
static int lease_call(mrkv_clerk *c, const char *method, uint64_t lease, uint64_t *ret, bool *ret_unanswered) {
        _cleanup_json_ json_object *parameters = NULL, *reply = NULL;
        _cleanup_free_ char *error = NULL;
        json_object *v;
        int r;

        if (!c || lease == 0)
                return -EINVAL;

        r = json_build_object(&parameters, "lease", json_object_new_uint64(lease), NULL);
        if (r < 0)
                return r;
        r = clerk_call(c, method, parameters, &reply, &error, ret_unanswered);
        if (r < 0)
                return r;
        if (error)
                return lease_error(error);
        if (!ret)
                return MRKV_OK;
        if (!json_object_object_get_ex(reply, "ttl", &v) || !json_object_is_type(v, json_type_int) ||
            json_object_get_int64(v) < 0)
                return -EBADMSG;
        *ret = json_object_get_uint64(v);
        return MRKV_OK;
}

_public_ int mrkv_clerk_lease_grant(mrkv_clerk *c, uint64_t ttl_sec, uint64_t *ret_lease, uint64_t *ret_ttl_sec) {
        _cleanup_json_ json_object *parameters = NULL, *reply = NULL;
        _cleanup_free_ char *error = NULL;
        struct {
                uint64_t lease, ttl;
        } p = {};
        static const VarlinkField fields[] = {
                { "lease", VARLINK_UINT64, offsetof(typeof(p), lease), true },
                { "ttl", VARLINK_UINT64, offsetof(typeof(p), ttl), true },
                {},
        };
        const char *bad_field = NULL;
        bool unanswered;
        int r;

        if (!c || ttl_sec == 0 || ttl_sec > INT64_MAX || !ret_lease)
                return -EINVAL;

        r = json_build_object(&parameters, "ttl", json_object_new_uint64(ttl_sec), NULL);
        if (r < 0)
                return r;

        r = clerk_call(c, KV_METHOD_GRANT, parameters, &reply, &error, &unanswered);
        if (r < 0)
                return r;
        if (error)
                return lease_error(error);
        if (varlink_dispatch(reply, fields, &p, &bad_field) < 0 || p.lease == 0)
                return -EBADMSG;

        *ret_lease = p.lease;
        if (ret_ttl_sec)
                *ret_ttl_sec = p.ttl;
        return MRKV_OK;
}

_public_ int mrkv_clerk_lease_keepalive(mrkv_clerk *c, uint64_t lease, uint64_t *ret_ttl_sec) {
        uint64_t ttl = 0;
        bool unanswered;
        int r;

        /* A renewal is the same whether it is the first or a resent one. */
        r = lease_call(c, KV_METHOD_KEEP_ALIVE, lease, &ttl, &unanswered);
        if (r == MRKV_OK && ret_ttl_sec)
                *ret_ttl_sec = ttl;
        return r;
}

_public_ int mrkv_clerk_lease_revoke(mrkv_clerk *c, uint64_t lease) {
        bool unanswered = false;
        int r;

        r = lease_call(c, KV_METHOD_REVOKE, lease, NULL, &unanswered);
        /* NoLease after a lost reply: our earlier attempt may have revoked it; gone either way. */
        if (r == MRKV_ERR_NO_LEASE && unanswered)
                return MRKV_OK;
        return r;
}
