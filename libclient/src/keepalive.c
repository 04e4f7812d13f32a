/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Keeping a lease alive: a single-shot KeepAlive every ttl/3 on a connection of our own.
 * Renewals sent by the client, not by the server on its behalf, so that a client that is
 * stopped or whose network is cut loses its lease, as a lock built on it must. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <json-c/json.h>

#include "clerk-internal.h"
#include "json-util.h"
#include "macro.h"
#include "mrkv/kv.h"
#include "org.mrkv.KV.varlink.h"
#include "pause.h"
#include "pollable.h"

struct mrkv_keepalive {
        Address address;
        uint64_t attempt_timeout_usec;
        uint64_t retry_pause_usec;
        uint64_t random_state;

        uint64_t lease;
        uint64_t ttl_usec;

        VarlinkClient *conn;
        Pollable pollable;
        bool in_flight;     /* a renewal is sent and its reply not read */
        uint64_t sent_at;   /* when the renewal in flight was sent */
        uint64_t next_send; /* when the next renewal is due */

        uint64_t expiry; /* atomic: read by other threads */
        int lost;        /* atomic: 0, or the result that ended it */

        pthread_t thread;
        bool has_thread;
        int stop_fd; /* an eventfd that tells the thread to end */
};

_public_ int mrkv_keepalive_new(mrkv_clerk *c, uint64_t lease, uint64_t ttl_sec, mrkv_keepalive **ret) {
        mrkv_keepalive *k;
        uint64_t now = now_usec();
        int r;

        if (!c || lease == 0 || ttl_sec == 0 || ttl_sec > UINT64_MAX / USEC_PER_SEC || !ret)
                return -EINVAL;

        k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->pollable = (Pollable) { .epoll_fd = -EBADF, .timer_fd = -EBADF, .conn_fd = -EBADF };
        k->stop_fd = -EBADF;

        r = address_parse(clerk_get_address(c)->string, &k->address);
        if (r < 0) {
                free(k);
                return r;
        }
        k->lease = lease;
        k->ttl_usec = ttl_sec * USEC_PER_SEC;
        /* A reply later than this is no use: the renewal after it would be due. */
        k->attempt_timeout_usec = MIN(clerk_get_attempt_timeout(c), MAX(k->ttl_usec / 4, (uint64_t) 1));
        k->retry_pause_usec = clerk_get_retry_pause(c);
        jitter_seed(&k->random_state);
        /* The caller has just granted or renewed it; the first renewal goes out at once
         * and tells for certain. */
        k->expiry = usec_add(now, k->ttl_usec);
        k->next_send = now;

        r = pollable_init(&k->pollable);
        if (r >= 0)
                r = pollable_arm(&k->pollable, now);
        if (r < 0) {
                mrkv_keepalive_free(k);
                return r;
        }
        *ret = k;
        return 0;
}

void keepalive_set_expiry(mrkv_keepalive *k, uint64_t usec) {
        if (usec < mrkv_keepalive_get_expiry(k))
                __atomic_store_n(&k->expiry, usec, __ATOMIC_RELEASE);
}

_public_ mrkv_keepalive *mrkv_keepalive_free(mrkv_keepalive *k) {
        if (!k)
                return NULL;
        if (k->has_thread) {
                (void) !write(k->stop_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
                (void) pthread_join(k->thread, NULL);
        }
        closep(&k->stop_fd);
        varlink_client_free(k->conn);
        pollable_done(&k->pollable);
        address_done(&k->address);
        free(k);
        return NULL;
}

_public_ int mrkv_keepalive_get_fd(mrkv_keepalive *k) {
        return k ? k->pollable.epoll_fd : -EINVAL;
}

_public_ uint64_t mrkv_keepalive_get_expiry(const mrkv_keepalive *k) {
        return k ? __atomic_load_n(&k->expiry, __ATOMIC_ACQUIRE) : 0;
}

_public_ int mrkv_keepalive_is_lost(const mrkv_keepalive *k) {
        if (!k)
                return -EINVAL;
        /* The expiry as well: a thread that was stopped with the process may not have
         * run since it woke up. */
        return __atomic_load_n(&k->lost, __ATOMIC_ACQUIRE) != 0 || now_usec() >= mrkv_keepalive_get_expiry(k);
}

static void keepalive_disconnect(mrkv_keepalive *k, uint64_t pause) {
        (void) pollable_set_conn(&k->pollable, -EBADF);
        k->conn = varlink_client_free(k->conn);
        k->in_flight = false;
        k->next_send = usec_add(now_usec(), pause);
}

static int keepalive_lose(mrkv_keepalive *k, int r) {
        keepalive_disconnect(k, UINT64_MAX);
        __atomic_store_n(&k->lost, r, __ATOMIC_RELEASE);
        (void) pollable_arm(&k->pollable, UINT64_MAX);
        return r;
}

/* Reads what has arrived: 0, or the result that ends the lease. */
static int keepalive_read(mrkv_keepalive *k) {
        while (k->conn) {
                _cleanup_json_ json_object *parameters = NULL;
                const char *error = NULL;
                json_object *v;
                int r;

                r = varlink_client_read(k->conn, 0, &parameters, &error, NULL);
                if (r == -ETIMEDOUT)
                        return 0;
                if (r < 0 || !k->in_flight) {
                        keepalive_disconnect(k, jitter(&k->random_state, k->retry_pause_usec));
                        return r == -ENOMEM ? r : 0;
                }
                if (error)
                        return streq(error, KV_ERROR_NO_LEASE) ? MRKV_ERR_NO_LEASE : generic_error_to_errno(error);
                if (!json_object_object_get_ex(parameters, "ttl", &v) || !json_object_is_type(v, json_type_int) ||
                    json_object_get_int64(v) <= 0 || (uint64_t) json_object_get_int64(v) > UINT64_MAX / USEC_PER_SEC)
                        return -EBADMSG;

                /* The server renewed it when the call arrived, which was after we sent it. */
                k->ttl_usec = (uint64_t) json_object_get_int64(v) * USEC_PER_SEC;
                __atomic_store_n(&k->expiry, usec_add(k->sent_at, k->ttl_usec), __ATOMIC_RELEASE);
                k->in_flight = false;
                k->next_send = usec_add(k->sent_at, k->ttl_usec / 3);
        }
        return 0;
}

static int keepalive_send(mrkv_keepalive *k, uint64_t now) {
        _cleanup_json_ json_object *parameters = NULL;
        uint64_t deadline = usec_add(now, k->attempt_timeout_usec);
        int r;

        r = json_build_object(&parameters, "lease", json_object_new_uint64(k->lease), NULL);
        if (r < 0)
                return r;
        if (!k->conn) {
                r = clerk_connect(&k->address, deadline, &k->conn);
                if (r >= 0)
                        r = pollable_set_conn(&k->pollable, varlink_client_get_fd(k->conn));
                if (r < 0)
                        return r;
        }
        r = varlink_client_send(k->conn, KV_METHOD_KEEP_ALIVE, parameters, 0, deadline - MIN(deadline, now_usec()));
        if (r < 0)
                return r;
        k->sent_at = now;
        k->in_flight = true;
        return 0;
}

_public_ int mrkv_keepalive_process(mrkv_keepalive *k) {
        uint64_t now;
        int r;

        if (!k)
                return -EINVAL;
        r = __atomic_load_n(&k->lost, __ATOMIC_ACQUIRE);
        if (r != 0)
                return r;

        r = keepalive_read(k);
        if (r != 0)
                return keepalive_lose(k, r);

        now = now_usec();
        if (now >= mrkv_keepalive_get_expiry(k))
                return keepalive_lose(k, MRKV_ERR_NO_LEASE);

        /* No reply in time: lost on the way, or the connection is stuck. A new one. */
        if (k->in_flight && now >= usec_add(k->sent_at, k->attempt_timeout_usec))
                keepalive_disconnect(k, 0);

        if (!k->in_flight && now >= k->next_send) {
                r = keepalive_send(k, now);
                if (r < 0) {
                        if (!error_is_transient(r))
                                return keepalive_lose(k, r);
                        keepalive_disconnect(k, jitter(&k->random_state, k->retry_pause_usec));
                }
        }

        r = pollable_arm(&k->pollable, MIN(mrkv_keepalive_get_expiry(k),
                                           k->in_flight ? usec_add(k->sent_at, k->attempt_timeout_usec) : k->next_send));
        return r < 0 ? r : 0;
}

static void *keepalive_thread(void *userdata) {
        mrkv_keepalive *k = userdata;

        while (mrkv_keepalive_process(k) == 0) {
                struct pollfd p[] = {
                        { .fd = k->pollable.epoll_fd, .events = POLLIN },
                        { .fd = k->stop_fd, .events = POLLIN },
                };

                if (poll(p, ELEMENTSOF(p), -1) < 0 && errno != EINTR)
                        break;
                if (p[1].revents)
                        break;
        }
        return NULL;
}

_public_ int mrkv_keepalive_start_thread(mrkv_keepalive *k) {
        sigset_t all, old;
        int r;

        if (!k)
                return -EINVAL;
        if (k->has_thread)
                return -EBUSY;

        k->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (k->stop_fd < 0)
                return -errno;

        /* Signals are the application's: the thread takes none of them. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&k->thread, NULL, keepalive_thread, k);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                closep(&k->stop_fd);
                return r;
        }
        k->has_thread = true;
        return 0;
}
