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
        /* Since LIBMRKV_0.2: */
        MRKV_ERR_NO_LEASE = 6,   /* no such lease (never granted, expired, revoked, or another uid's) */
        MRKV_ERR_LEASE_FULL = 7, /* Put with a lease: the lease has as many keys as the server allows */
        MRKV_ERR_LIMIT = 8,      /* the server holds as many leases or watchers as it allows */
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
 * bound (--quota-keys, --quota-bytes).
 * MRKV_ERR_NO_KEY means the Put was not applied, as before keys could be deleted; where
 * they are (mrkv_clerk_delete(), leases), a resent Put answered NoKey may have been
 * applied and the key deleted since: read it back if that matters. */
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

/* Since LIBMRKV_0.2: delete, list, watch and leases. The server's org.mrkv.KV interface
 * says what each does; versions never go back, so a key deleted and created again starts
 * above every version it had, and a version is usable as a fencing token. */

/* Deletes key if version is its current version (the deletion is the key's change at
 * version + 1). Returns MRKV_OK, MRKV_ERR_NO_KEY, MRKV_ERR_VERSION, MRKV_ERR_MAYBE or
 * MRKV_ERR_STORAGE. As for Put, a resent Delete answered VersionMismatch, or NoKey (an
 * earlier attempt may have deleted the key), returns MRKV_ERR_MAYBE. */
int mrkv_clerk_delete(mrkv_clerk *c, const char *key, uint64_t version);

/* mrkv_clerk_put() that also attaches the key to lease (0: none, which detaches it from
 * any lease): the key is deleted when the lease ends. Adds the results MRKV_ERR_NO_LEASE
 * and MRKV_ERR_LEASE_FULL; after a resend either becomes MRKV_ERR_MAYBE, since an earlier
 * attempt may have been applied before the lease ended or filled up. */
int mrkv_clerk_put_with_lease(mrkv_clerk *c, const char *key, const char *value, uint64_t version,
                              uint64_t lease);

/* Leases. A lease ends ttl seconds after its grant or last renewal, and its keys are then
 * deleted. Grant returns MRKV_OK or MRKV_ERR_LIMIT; a resent Grant whose first reply was
 * lost may leave an unused lease behind, which ends after its ttl. ret_ttl may be NULL. */
int mrkv_clerk_lease_grant(mrkv_clerk *c, uint64_t ttl_sec, uint64_t *ret_lease, uint64_t *ret_ttl_sec);
/* One renewal: MRKV_OK (with the ttl it now has again) or MRKV_ERR_NO_LEASE. */
int mrkv_clerk_lease_keepalive(mrkv_clerk *c, uint64_t lease, uint64_t *ret_ttl_sec);
/* Ends the lease at once and deletes its keys: MRKV_OK or MRKV_ERR_NO_LEASE (never that
 * after a resend: the lease is gone either way). */
int mrkv_clerk_lease_revoke(mrkv_clerk *c, uint64_t lease);

/* A key as List returns it, or a change as Watch returns it. The strings belong to the
 * object that returned it and stay valid until its next call. */
typedef struct mrkv_entry {
        const char *key;
        const char *value; /* NULL: not asked for (List), or deleted (Watch) */
        uint64_t version;  /* Watch: the version of the change; of a deletion, version + 1 */
        uint64_t lease;    /* 0: none */
        int deleted;       /* Watch: the change is a deletion (Delete, or its lease ended) */
} mrkv_entry;

/* Lists the keys under prefix (NULL: all) after start_after (NULL: from the first), in
 * bytewise order, a page at a time: mrkv_list_next() asks for the next page when the last
 * is used up, resending like a Get. Each entry is the key's state when its page was read:
 * pages are not one snapshot. */
typedef struct mrkv_list mrkv_list;
#define MRKV_LIST_VALUES 1U /* with the values */
int mrkv_list_new(mrkv_clerk *c, const char *prefix, const char *start_after, unsigned flags, mrkv_list **ret);
/* Keys per page asked for (0: the server's default, 1000; it caps it at 10000). */
int mrkv_list_set_page_size(mrkv_list *l, unsigned n);
/* Returns 1 and the next entry, 0 at the end, or a negative errno (the list may go on
 * after it: the same call asks for the same page again). */
int mrkv_list_next(mrkv_list *l, const mrkv_entry **ret);
mrkv_list *mrkv_list_free(mrkv_list *l);

/* Watches a key, or every key under a prefix, for changes after version. A key watch
 * whose key is already past version gets its current state at once (from 0: any key that
 * exists); a prefix watch with version above 0 gets at once every key under the prefix
 * whose version is above it, with 0 only the changes from then on.
 * Changes come in version order per key, each once; the watch reconnects and resumes by
 * itself after a lost connection or an overflow, so it may skip states in between (it
 * gets the latest state of a key, never an older one after a newer). A prefix watch
 * that resumes gets the keys changed meanwhile, but not the deletions in between.
 *
 * For an event loop, as sd-bus does: add mrkv_watch_get_fd() for POLLIN (it stays the same
 * descriptor across reconnects) and, when it is readable, call mrkv_watch_process() until
 * it returns 0. mrkv_watch_next() is the blocking form. Uses its own connection, to the
 * clerk's address with its timeouts; the clerk may be freed afterwards. */
typedef struct mrkv_watch mrkv_watch;
int mrkv_watch_new(mrkv_clerk *c, const char *key, uint64_t version, mrkv_watch **ret);
int mrkv_watch_new_prefix(mrkv_clerk *c, const char *prefix, uint64_t version, mrkv_watch **ret);
mrkv_watch *mrkv_watch_free(mrkv_watch *w);
int mrkv_watch_get_fd(mrkv_watch *w);
/* Never blocks (but to connect over TCP). Returns 1 and a change, 0 when none is ready,
 * MRKV_ERR_LIMIT (the server's watcher bound; the watch tries again after a pause), or a
 * negative errno: -EINVAL (the server refused the key or prefix) and the like. */
int mrkv_watch_process(mrkv_watch *w, const mrkv_entry **ret);
/* Waits up to timeout_usec (UINT64_MAX: forever) for the next change: as process, but 0
 * only when the time has passed, and MRKV_ERR_LIMIT never (it waits on). */
int mrkv_watch_next(mrkv_watch *w, uint64_t timeout_usec, const mrkv_entry **ret);
/* The highest version it has returned (or was started after). */
uint64_t mrkv_watch_get_version(const mrkv_watch *w);

/* Keeps a lease alive: renews it every ttl/3 on a connection of its own, as a
 * single-shot KeepAlive each time, so a process that is stopped or cut off loses its
 * lease within ttl, as it should. For an event loop: mrkv_keepalive_get_fd() is readable
 * whenever mrkv_keepalive_process() has something to do; or mrkv_keepalive_start_thread()
 * does it in a thread of its own (then only get_expiry, is_lost and free may be called). */
typedef struct mrkv_keepalive mrkv_keepalive;
int mrkv_keepalive_new(mrkv_clerk *c, uint64_t lease, uint64_t ttl_sec, mrkv_keepalive **ret);
/* Stops the thread if there is one; does not revoke the lease. */
mrkv_keepalive *mrkv_keepalive_free(mrkv_keepalive *k);
int mrkv_keepalive_get_fd(mrkv_keepalive *k);
/* Returns 0 while the lease is alive, MRKV_ERR_NO_LEASE once it is lost: the server
 * refused a renewal, or no renewal was confirmed in time (the expiry below passed), so
 * the server may have ended it. */
int mrkv_keepalive_process(mrkv_keepalive *k);
int mrkv_keepalive_start_thread(mrkv_keepalive *k);
/* Until when (CLOCK_MONOTONIC usec) the lease is known to live: the moment the last
 * confirmed renewal was sent, plus its ttl. */
uint64_t mrkv_keepalive_get_expiry(const mrkv_keepalive *k);
int mrkv_keepalive_is_lost(const mrkv_keepalive *k);

#ifdef __cplusplus
}
#endif
