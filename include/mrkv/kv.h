/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The mrkv key/value clerk: the client of mrkv-kvserver (Varlink interface org.mrkv.KV).
 *
 * Every key holds a string value and a version. Put(key, value, version) succeeds only
 * when version is the key's current version (0 creates a missing key); each successful
 * Put increments the version by one. Get and Put are linearizable.
 *
 * A call whose reply does not arrive (the connection is refused, closed or reset, or
 * no reply comes within the attempt timeout) is sent again, with the same arguments,
 * on a new connection, until a reply arrives or the call's deadline passes. Because a
 * lost reply may belong to a Put the server applied, a resent Put that is answered
 * VersionMismatch returns MRKV_ERR_MAYBE: the Put may or may not have been applied.
 *
 * A clerk is not thread-safe: use one clerk per thread. Clerks share no state, so any
 * number of them may run in parallel in one process. The library never raises SIGPIPE
 * and never writes to stdout or stderr.
 *
 * Functions return one of the MRKV_OK/MRKV_ERR_* results (>= 0), or a negative errno
 * for failures of the call itself: -EINVAL (bad arguments, or the server refused them
 * as invalid), -ENOMEM, -ETIMEDOUT (the deadline passed; a Put may have been applied),
 * -EPROTO or -EBADMSG (the server answered something this library does not understand). */

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mrkv_clerk mrkv_clerk;

enum {
        MRKV_OK = 0,
        MRKV_ERR_NO_KEY = 1,   /* Get: no such key; Put: no such key and version > 0 */
        MRKV_ERR_VERSION = 2,  /* Put: version is not the key's current version */
        MRKV_ERR_MAYBE = 3,    /* Put: VersionMismatch after a resend; may have been applied */
        MRKV_ERR_STORAGE = 4,  /* Put: the server could not make it durable; not applied */
        MRKV_ERR_QUOTA = 5,    /* Put: over the caller's per-uid quota of keys or bytes; not applied */
};

/* address: "unix:/path", "/path" or "tcp:host:port"; NULL means $MRKV_KV_ADDRESS, else
 * the kv.sock of the default runtime directory ($RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR/mrkv,
 * /run/mrkv). Does not connect: the first call does. */
int mrkv_clerk_new(const char *address, mrkv_clerk **ret);
/* Accepts NULL; returns NULL. */
mrkv_clerk *mrkv_clerk_free(mrkv_clerk *c);

/* *ret_value is malloc'd (the caller frees it); ret_value and ret_version may be NULL.
 * Returns MRKV_OK or MRKV_ERR_NO_KEY; never MRKV_ERR_MAYBE. */
int mrkv_clerk_get(mrkv_clerk *c, const char *key, char **ret_value, uint64_t *ret_version);
/* Returns MRKV_OK, MRKV_ERR_NO_KEY, MRKV_ERR_VERSION, MRKV_ERR_MAYBE, MRKV_ERR_STORAGE or
 * MRKV_ERR_QUOTA.
 * MRKV_ERR_STORAGE (the server's StorageError: its disk is full or failing) means that
 * the Put was not applied, also after resends: an earlier attempt that had been applied
 * would have moved the version on, and the server checks the version first. The server
 * keeps answering Gets, and accepts Puts again once it has written a snapshot.
 * MRKV_ERR_QUOTA (the server's QuotaExceeded) means, for the same reason, that the Put
 * was not applied: the keys or bytes charged to the caller's uid would pass the server's
 * bound (--quota-keys, --quota-bytes). */
int mrkv_clerk_put(mrkv_clerk *c, const char *key, const char *value, uint64_t version);

/* How long one attempt waits for its reply before it is resent (default 1 s). > 0. */
int mrkv_clerk_set_attempt_timeout(mrkv_clerk *c, uint64_t usec);
/* How long one Get or Put may take in all, resends included, before it fails with
 * -ETIMEDOUT. Default UINT64_MAX: retry forever, as the lab's clerk does. */
int mrkv_clerk_set_deadline(mrkv_clerk *c, uint64_t usec);
/* The pause before a resend (default 20 ms); each pause is drawn from [usec/2, usec*3/2)
 * so that clients that failed together do not retry in lockstep. */
int mrkv_clerk_set_retry_pause(mrkv_clerk *c, uint64_t usec);

/* The address the clerk connects to, as given or as the default resolved. */
const char *mrkv_clerk_get_address(const mrkv_clerk *c);
/* How many times the clerk has resent a call so far. May be read from any thread. */
uint64_t mrkv_clerk_get_resends(const mrkv_clerk *c);

/* A static string naming a result: "ok", "no-key", "version-mismatch", "maybe",
 * "storage-error", or strerror() text for a negative errno. */
const char *mrkv_result_to_string(int r);

#ifdef __cplusplus
}
#endif
