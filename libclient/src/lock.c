/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "macro.h"
#include "mrkv/kv.h"
#include "mrkv/lock.h"
#include "pause.h"

#define BACKOFF_MIN_USEC (1 * USEC_PER_MSEC)
#define BACKOFF_MAX_USEC (100 * USEC_PER_MSEC)

#define LOCK_ID_BYTES 8

struct mrkv_lock {
        mrkv_clerk *clerk; /* borrowed */
        char *name;
        char id[LOCK_ID_BYTES * 2 + 1];

        bool held;
        uint64_t version; /* the key's version after our acquiring Put, while held */

        uint64_t wait_timeout_usec;
        uint64_t random_state;
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

        l->name = strdup(name);
        if (!l->name) {
                free(l);
                return -ENOMEM;
        }

        r = random_id(l->id);
        if (r < 0) {
                free(l->name);
                free(l);
                return r;
        }

        l->clerk = c;
        l->wait_timeout_usec = UINT64_MAX;
        jitter_seed(&l->random_state);

        *ret = l;
        return 0;
}

_public_ mrkv_lock *mrkv_lock_free(mrkv_lock *l) {
        if (!l)
                return NULL;
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

_public_ const char *mrkv_lock_get_id(const mrkv_lock *l) {
        return l ? l->id : NULL;
}

_public_ const char *mrkv_lock_get_name(const mrkv_lock *l) {
        return l ? l->name : NULL;
}

_public_ int mrkv_lock_acquire(mrkv_lock *l) {
        uint64_t backoff = BACKOFF_MIN_USEC, deadline;

        if (!l)
                return -EINVAL;
        if (l->held)
                return -EBUSY; /* not recursive: a second acquire would wait for itself forever */

        deadline = usec_add(now_usec(), l->wait_timeout_usec);

        for (;;) {
                _cleanup_free_ char *value = NULL;
                uint64_t version = 0;
                int r;

                r = mrkv_clerk_get(l->clerk, l->name, &value, &version);
                if (r < 0)
                        return r;

                /* Ours already: an earlier Put of ours was applied though we did not learn
                 * it (MAYBE, or an acquire that failed after its Put went out). */
                if (r == MRKV_OK && streq(value, l->id)) {
                        l->held = true;
                        l->version = version;
                        return 0;
                }

                if (r == MRKV_ERR_NO_KEY || streq(value, "")) {
                        r = mrkv_clerk_put(l->clerk, l->name, l->id, version);
                        if (r < 0)
                                return r;
                        if (r == MRKV_OK) {
                                l->held = true;
                                l->version = version + 1;
                                return 0;
                        }
                        /* Not applied, and no Put is until the server recovers. */
                        if (r == MRKV_ERR_STORAGE)
                                return -EIO;
                        if (r == MRKV_ERR_QUOTA)
                                return -EDQUOT;
                        /* MAYBE: the Get at the top tells whether our Put was applied.
                         * VERSION or NO_KEY: someone else got there first; look again
                         * at once, since they may already be done. */
                        continue;
                }

                /* Held by someone else. Only here do we know we do not hold the lock,
                 * so only here may we give up. */
                if (now_usec() >= deadline)
                        return -ETIMEDOUT;
                pause_until(jitter(&l->random_state, backoff), deadline);
                backoff = MIN(backoff * 2, BACKOFF_MAX_USEC);
        }
}

_public_ int mrkv_lock_release(mrkv_lock *l) {
        _cleanup_free_ char *value = NULL;
        int r;

        if (!l)
                return -EINVAL;
        if (!l->held)
                return -ENOLCK;

        r = mrkv_clerk_put(l->clerk, l->name, "", l->version);
        if (r < 0)
                return r;

        switch (r) {
        case MRKV_OK:
                l->held = false;
                return 0;

        case MRKV_ERR_STORAGE:
                /* Not applied: still held, release may be called again. */
                return -EIO;

        case MRKV_ERR_QUOTA:
                /* Not applied: still held. */
                return -EDQUOT;

        case MRKV_ERR_MAYBE:
                /* While we hold the lock nobody else writes the key, so a moved version
                 * is our own release, unless the key no longer names us. */
                r = mrkv_clerk_get(l->clerk, l->name, &value, NULL);
                if (r < 0)
                        return r;
                l->held = false;
                return r == MRKV_OK && !streq(value, l->id) ? 0 : -ENOLCK;

        default:
                /* VERSION at the first attempt: the key moved on without us, so the
                 * lock was not ours any more. */
                l->held = false;
                return -ENOLCK;
        }
}
