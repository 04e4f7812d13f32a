/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A distributed lock built only on a clerk's Get and Put (6.5840 lab 2's lock).
 *
 * The lock's state is the value of the key named after it: "" (or no key) when free,
 * else the id of its holder, a random 16-hex-digit string drawn for each mrkv_lock.
 * Acquire writes its id with a conditional Put; release writes "" back with the version
 * of that write, so only the holder can release. An ambiguous Put (MRKV_ERR_MAYBE) is
 * resolved by reading the key back.
 *
 * There is no lease: a holder that dies keeps the lock until someone writes the key.
 * A mrkv_lock borrows its clerk, which must outlive it; the same one-thread rule holds. */

#include <stdint.h>

#include <mrkv/kv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mrkv_lock mrkv_lock;

int mrkv_lock_new(mrkv_clerk *c, const char *name, mrkv_lock **ret);
/* Does not release a held lock (that needs the network and may fail): release first. */
mrkv_lock *mrkv_lock_free(mrkv_lock *l);

/* Blocks until the lock is held. Waiting polls the key with exponential backoff
 * (1 ms to 100 ms, jittered). Returns 0, -ETIMEDOUT after the wait timeout, -EIO when the
 * server cannot store the lock (MRKV_ERR_STORAGE: not taken), or an error of the clerk. An acquire that failed with a clerk error may have taken the lock: the
 * next acquire of the same mrkv_lock recognizes its own id and succeeds at once. */
int mrkv_lock_acquire(mrkv_lock *l);
/* Returns 0, -ENOLCK if this mrkv_lock does not hold the lock (never acquired, or the
 * key was overwritten behind its back), or -EIO (MRKV_ERR_STORAGE) or an error of the
 * clerk (the lock is then still considered held, and release may be called again). */
int mrkv_lock_release(mrkv_lock *l);

/* How long acquire waits while someone else holds the lock (default UINT64_MAX:
 * forever). It gives up only at a moment it knows it does not hold the lock. */
int mrkv_lock_set_wait_timeout(mrkv_lock *l, uint64_t usec);

/* The value the key holds while this mrkv_lock holds the lock. */
const char *mrkv_lock_get_id(const mrkv_lock *l);
const char *mrkv_lock_get_name(const mrkv_lock *l);

#ifdef __cplusplus
}
#endif
