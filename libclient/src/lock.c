/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "clerk-internal.h"
#include "macro.h"
#include "mrkv/kv.h"
#include "mrkv/lock.h"
#include "pause.h"

#define DEFAULT_TTL_USEC (10 * USEC_PER_SEC)
/* How long a waiter trusts a silent watch before it reads the key again: a change lost on
 * the way (a dropped message, a stuck connection) delays it by this much at most. */
#define RECHECK_USEC (1 * USEC_PER_SEC)

/* A server from before leases and watches: the waiter polls the key as it used to. */
#define BACKOFF_MIN_USEC (1 * USEC_PER_MSEC)
#define BACKOFF_MAX_USEC (100 * USEC_PER_MSEC)

#define LOCK_ID_BYTES 8

struct mrkv_lock {
        mrkv_clerk *clerk; /* borrowed */
        char *name;
        char id[LOCK_ID_BYTES * 2 + 1];

        bool held;
        uint64_t version; /* the key's version after our acquiring Put, while held: the token */
        bool created;     /* acquiring: our Put created the key, at a version we do not know */

        uint64_t wait_timeout_usec;
        uint64_t ttl_usec;
        uint64_t random_state;

        uint64_t lease;    /* 0: none yet, or it ended */
        uint64_t lease_ttl; /* seconds, as granted */
        uint64_t lease_since; /* when its grant or last renewal was sent: it lives ttl from then */
        bool old_server;    /* it knows no Grant or Watch: no lease, and waiters poll */

        /* While held: a thread keeps the lease alive and watches the key. */
        mrkv_keepalive *keepalive;
        mrkv_watch *watch;
        pthread_t guard;
        bool has_guard;
        int stop_fd; /* eventfd: the guard ends */
        int lost_fd; /* eventfd: readable once the guard found the lock lost */
        int lost;    /* atomic */
};

static int random_id(char ret[static LOCK_ID_BYTES * 2 + 1]) {
        uint8_t bytes[LOCK_ID_BYTES];
        size_t done = 0;

        /* Blocking until the pool is initialized is right here: two holders drawing the
         * same id would both believe they hold the lock. */
        while (done < sizeof(bytes)) {
                ssize_t n = getrandom(bytes + done, sizeof(bytes) - done, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) n;
        }

        for (size_t i = 0; i < sizeof(bytes); i++)
                snprintf(ret + i * 2, 3, "%02x", bytes[i]);
        return 0;
}

_public_ int mrkv_lock_new(mrkv_clerk *c, const char *name, mrkv_lock **ret) {
        mrkv_lock *l;
        int r;

        if (!c || !name || !ret)
                return -EINVAL;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->stop_fd = l->lost_fd = -EBADF;

        l->name = strdup(name);
        if (!l->name) {
                free(l);
                return -ENOMEM;
        }

        r = random_id(l->id);
        if (r < 0) {
                mrkv_lock_free(l);
                return r;
        }

        l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        l->lost_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (l->stop_fd < 0 || l->lost_fd < 0) {
                r = -errno;
                mrkv_lock_free(l);
                return r;
        }

        l->clerk = c;
        l->wait_timeout_usec = UINT64_MAX;
        l->ttl_usec = DEFAULT_TTL_USEC;
        jitter_seed(&l->random_state);

        *ret = l;
        return 0;
}

static void lock_guard_stop(mrkv_lock *l) {
        uint64_t v;

        if (l->has_guard) {
                (void) !write(l->stop_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
                (void) pthread_join(l->guard, NULL);
                l->has_guard = false;
        }
        (void) !read(l->stop_fd, &v, sizeof(v));
        l->keepalive = mrkv_keepalive_free(l->keepalive);
        l->watch = mrkv_watch_free(l->watch);
}

_public_ mrkv_lock *mrkv_lock_free(mrkv_lock *l) {
        if (!l)
                return NULL;
        lock_guard_stop(l);
        closep(&l->stop_fd);
        closep(&l->lost_fd);
        free(l->name);
        free(l);
        return NULL;
}

_public_ int mrkv_lock_set_wait_timeout(mrkv_lock *l, uint64_t usec) {
        if (!l)
                return -EINVAL;
        l->wait_timeout_usec = usec;
        return 0;
}

_public_ int mrkv_lock_set_ttl(mrkv_lock *l, uint64_t usec) {
        if (!l || usec == 0 || usec > UINT64_MAX - USEC_PER_SEC)
                return -EINVAL;
        l->ttl_usec = usec;
        return 0;
}

_public_ const char *mrkv_lock_get_id(const mrkv_lock *l) {
        return l ? l->id : NULL;
}

_public_ const char *mrkv_lock_get_name(const mrkv_lock *l) {
        return l ? l->name : NULL;
}

_public_ uint64_t mrkv_lock_get_token(const mrkv_lock *l) {
        return l && l->held ? l->version : 0;
}

_public_ int mrkv_lock_get_fd(const mrkv_lock *l) {
        if (!l)
                return -EINVAL;
        return l->held ? l->lost_fd : -EBADF;
}

_public_ int mrkv_lock_is_held(const mrkv_lock *l) {
        return l && l->held && !__atomic_load_n(&l->lost, __ATOMIC_ACQUIRE) &&
               (!l->keepalive || !mrkv_keepalive_is_lost(l->keepalive));
}

/* The guard: renews the lease and watches the key until told to stop, or until the lock
 * is lost, which it then tells through lost_fd. */
static void *lock_guard(void *userdata) {
        mrkv_lock *l = userdata;

        for (;;) {
                struct pollfd p[] = {
                        { .fd = mrkv_keepalive_get_fd(l->keepalive), .events = POLLIN },
                        { .fd = mrkv_watch_get_fd(l->watch), .events = POLLIN },
                        { .fd = l->stop_fd, .events = POLLIN },
                };
                const mrkv_entry *e;
                bool lost = false;
                int r;

                if (mrkv_keepalive_process(l->keepalive) != 0)
                        lost = true;
                /* Any change after ours is someone else's: our own release stops us first.
                 * A watch that fails leaves the lease to tell. */
                while (!lost && (r = mrkv_watch_process(l->watch, &e)) != 0)
                        if (r > 0 && e->version > l->version)
                                lost = true;
                        else if (r < 0)
                                break;
                if (lost) {
                        __atomic_store_n(&l->lost, 1, __ATOMIC_RELEASE);
                        (void) !write(l->lost_fd, &(uint64_t) { 1 }, sizeof(uint64_t));
                        return NULL;
                }

                if (poll(p, ELEMENTSOF(p), -1) < 0 && errno != EINTR)
                        return NULL;
                if (p[2].revents)
                        return NULL;
        }
}

static int lock_guard_start(mrkv_lock *l) {
        sigset_t all, old;
        uint64_t v;
        int r;

        (void) !read(l->lost_fd, &v, sizeof(v));
        __atomic_store_n(&l->lost, 0, __ATOMIC_RELEASE);

        r = mrkv_keepalive_new(l->clerk, l->lease, l->lease_ttl, &l->keepalive);
        if (r >= 0)
                keepalive_set_expiry(l->keepalive, usec_add(l->lease_since, l->lease_ttl * USEC_PER_SEC));
        if (r >= 0)
                r = mrkv_watch_new(l->clerk, l->name, l->version, &l->watch);
        if (r < 0)
                goto fail;

        /* Signals are the application's: the thread takes none of them. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&l->guard, NULL, lock_guard, l);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                goto fail;
        l->has_guard = true;
        return 0;

fail:
        lock_guard_stop(l);
        return r;
}

/* A lease for the next acquiring Put. */
static int lock_lease(mrkv_lock *l) {
        uint64_t now = now_usec();
        int r;

        if (l->old_server)
                return 0;
        /* A lease taken for an earlier try, and unused since the wait that followed: renew
         * it, so that the lock is not taken with a lease about to end. */
        if (l->lease > 0 && now - l->lease_since >= l->lease_ttl * USEC_PER_SEC / 3) {
                r = mrkv_clerk_lease_keepalive(l->clerk, l->lease, &l->lease_ttl);
                if (r < 0)
                        return r;
                if (r == MRKV_OK)
                        l->lease_since = now;
                else
                        l->lease = 0;
        }
        if (l->lease > 0)
                return 0;
        l->lease_since = now;
        r = mrkv_clerk_lease_grant(l->clerk, (l->ttl_usec + USEC_PER_SEC - 1) / USEC_PER_SEC, &l->lease,
                                   &l->lease_ttl);
        if (r < 0)
                return r;
        switch (r) {
        case MRKV_OK:
                return 0;
        case MRKV_ERR_LIMIT:
                return -EUSERS;
        case MRKV_ERR_STORAGE:
                return -EIO;
        default:
                return -EPROTO;
        }
}

static void lock_lease_end(mrkv_lock *l) {
        /* Best effort: a lease we fail to revoke ends by itself within its ttl. */
        if (l->lease > 0)
                (void) mrkv_clerk_lease_revoke(l->clerk, l->lease);
        l->lease = 0;
}

/* Puts our id with our lease at version. 1: it is ours (l->version set when known, else
 * 0), 0: look again, < 0: give up. */
static int lock_put(mrkv_lock *l, uint64_t version) {
        int r;

        r = lock_lease(l);
        if (r == -EOPNOTSUPP)
                l->old_server = true;
        else if (r < 0)
                return r;

        r = mrkv_clerk_put_with_lease(l->clerk, l->name, l->id, version, l->lease);
        if (r < 0)
                return r;
        switch (r) {
        case MRKV_OK:
                /* A key created anew starts above the deletion floor, which we do not
                 * know: the Get at the top tells the version then. */
                l->version = version > 0 ? version + 1 : 0;
                l->created = version == 0;
                return 1;
        case MRKV_ERR_STORAGE:
                /* Not applied, and no Put is until the server recovers. */
                return -EIO;
        case MRKV_ERR_QUOTA:
                return -EDQUOT;
        case MRKV_ERR_LEASE_FULL:
                return -ENOSPC;
        case MRKV_ERR_NO_LEASE:
                /* It ended while we waited: take a new one. */
                l->lease = 0;
                return 0;
        default:
                /* MAYBE: the Get at the top tells whether our Put was applied.
                 * VERSION or NO_KEY: someone else got there first; look again at once,
                 * since they may already be done. */
                return 0;
        }
}

/* The key is ours at l->version, on our lease: guard it. */
static int lock_hold(mrkv_lock *l) {
        l->watch = mrkv_watch_free(l->watch);
        if (!l->old_server) {
                int r = lock_guard_start(l);
                if (r < 0)
                        return r;
        }
        l->held = true;
        return 0;
}

_public_ int mrkv_lock_acquire(mrkv_lock *l) {
        uint64_t backoff = BACKOFF_MIN_USEC, deadline;
        int r;

        if (!l)
                return -EINVAL;
        if (l->held)
                return -EBUSY; /* not recursive: a second acquire would wait for itself forever */

        deadline = usec_add(now_usec(), l->wait_timeout_usec);
        l->version = 0;
        l->created = false;

        for (;;) {
                _cleanup_free_ char *value = NULL;
                const mrkv_entry *e;
                uint64_t version = 0;

                r = mrkv_clerk_get(l->clerk, l->name, &value, &version);
                if (r < 0)
                        break;

                if (r == MRKV_OK && streq(value, l->id)) {
                        /* Ours already: an earlier Put of ours was applied though we did
                         * not learn it (MAYBE, an acquire that failed after its Put went
                         * out), or we just created the key. Unless we know the key is on
                         * our lease, put it there. */
                        if (l->version != version && !l->created) {
                                r = lock_put(l, version);
                                if (r < 0)
                                        break;
                                continue;
                        }
                        l->version = version;
                        r = lock_hold(l);
                        if (r < 0)
                                break;
                        return 0;
                }

                l->created = false;
                if (r == MRKV_ERR_NO_KEY || streq(value, "")) {
                        r = lock_put(l, r == MRKV_ERR_NO_KEY ? 0 : version);
                        if (r < 0)
                                break;
                        /* Taken at a version we know: ours. Otherwise (taken by
                         * creating the key, or not) the Get at the top tells. */
                        if (r > 0 && l->version > 0) {
                                r = lock_hold(l);
                                if (r < 0)
                                        break;
                                return 0;
                        }
                        continue;
                }

                /* Held by someone else. Only here do we know we do not hold the lock,
                 * so only here may we give up. */
                l->version = 0;
                if (now_usec() >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }

                if (l->old_server) {
                        pause_until(jitter(&l->random_state, backoff), deadline);
                        backoff = MIN(backoff * 2, BACKOFF_MAX_USEC);
                        continue;
                }

                /* Wait for a change of the key: its deletion (a release, or the
                 * holder's lease ended) or "" (a release). */
                if (!l->watch) {
                        r = mrkv_watch_new(l->clerk, l->name, version, &l->watch);
                        if (r < 0)
                                break;
                }
                for (;;) {
                        uint64_t n = now_usec();

                        r = mrkv_watch_next(l->watch, MIN(RECHECK_USEC, deadline - MIN(deadline, n)), &e);
                        if (r <= 0 || e->deleted || streq(e->value, ""))
                                break;
                }
                if (r == -EOPNOTSUPP) {
                        l->old_server = true;
                        l->watch = mrkv_watch_free(l->watch);
                        continue;
                }
                if (r < 0)
                        break;
        }

        /* Not held: a key of ours on our lease goes when the lease ends. */
        l->watch = mrkv_watch_free(l->watch);
        if (r == -ETIMEDOUT)
                lock_lease_end(l);
        return r;
}

_public_ int mrkv_lock_release(mrkv_lock *l) {
        _cleanup_free_ char *value = NULL;
        int r;

        if (!l)
                return -EINVAL;
        if (!l->held)
                return -ENOLCK;

        /* Our own Put below would look like a loss to the guard. */
        lock_guard_stop(l);

        /* Without a lease: a free lock stays "", as it always was. */
        r = mrkv_clerk_put(l->clerk, l->name, "", l->version);
        if (r == MRKV_ERR_MAYBE) {
                /* While we hold the lock nobody else writes the key, so a moved version
                 * is our own release, unless the key no longer names us. */
                r = mrkv_clerk_get(l->clerk, l->name, &value, NULL);
                if (r >= 0)
                        r = r == MRKV_OK && !streq(value, l->id) ? MRKV_OK : MRKV_ERR_VERSION;
        }
        if (r < 0 || r == MRKV_ERR_STORAGE || r == MRKV_ERR_QUOTA) {
                /* Not applied, or not known to be: still held, and release may be called
                 * again. Meanwhile the lease is kept alive. */
                int k = l->old_server ? 0 : lock_guard_start(l);
                if (k < 0)
                        return k;
                return r < 0 ? r : r == MRKV_ERR_STORAGE ? -EIO : -EDQUOT;
        }
        /* VERSION or NO_KEY at the first attempt: the key moved on without us (written,
         * or deleted when our lease ended), so the lock was not ours any more. */
        r = r == MRKV_OK ? 0 : -ENOLCK;

        l->held = false;
        lock_lease_end(l);
        return r;
}
