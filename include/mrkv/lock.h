/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A distributed lock on a key (6.5840 lab 2's lock), with a lease and a fencing token.
 *
 * The lock's state is the value of the key named after it: "" (or no key) when free,
 * else the id of its holder, a random 16-hex-digit string drawn for each mrkv_lock.
 * Acquire writes its id with a conditional Put; release writes "" back with the version
 * of that write, so only the holder can release. An ambiguous Put (MRKV_ERR_MAYBE) is
 * resolved by reading the key back.
 *
 * The key is attached to a lease the lock grants when it acquires (ttl: 10 s unless
 * mrkv_lock_set_ttl() says otherwise) and keeps alive from a thread of its own while it
 * holds the lock; the server deletes the key when the lease ends. So a holder that dies,
 * is stopped or is cut off from the server loses the lock within ttl, and a waiter, which
 * watches the key rather than polling it, takes it over. The thread also watches the key:
 * mrkv_lock_get_fd() becomes readable once the lock is lost.
 *
 * A holder may not know it lost the lock (it was stopped past its ttl, say). Whatever it
 * protects should therefore check the fencing token, mrkv_lock_get_token(): the key's
 * version after the acquiring Put. A later holder's token is always higher, also when
 * the key was deleted in between (versions never go back), so a resource that keeps the
 * highest token it has seen and refuses lower ones is never written by a holder that lost
 * the lock to another.
 *
 * A mrkv_lock borrows its clerk, which must outlive it; the same one-thread rule holds. */

#include <stdint.h>

#include <mrkv/kv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mrkv_lock mrkv_lock;

int mrkv_lock_new(mrkv_clerk *c, const char *name, mrkv_lock **ret);
/* Does not release a held lock (that needs the network and may fail): release first. A
 * lock freed while held stops being kept alive, and ends within its ttl. */
mrkv_lock *mrkv_lock_free(mrkv_lock *l);

/* Blocks until the lock is held. Waiting watches the key (re-reading it when the watch
 * is silent for a second, in case a change was lost on the way). Returns 0, -ETIMEDOUT after the wait timeout, -EIO when the
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

/* Since LIBMRKV_0.2. */

/* The fencing token of the held lock (see above); 0 when not held. */
uint64_t mrkv_lock_get_token(const mrkv_lock *l);
/* The ttl of the lease of the next acquire, in usec (rounded up to whole seconds; at least
 * one). A holder that stops renewing loses the lock within it. */
int mrkv_lock_set_ttl(mrkv_lock *l, uint64_t usec);
/* A descriptor that becomes readable (POLLIN) once the held lock is lost: its lease could
 * not be renewed in time, or the key changed under it. -EBADF when not held. */
int mrkv_lock_get_fd(const mrkv_lock *l);
/* 1 while held and not known to be lost; 0 otherwise. */
int mrkv_lock_is_held(const mrkv_lock *l);

#ifdef __cplusplus
}
#endif
