/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "macro.h"
#include "pending.h"
#include "quota.h"
#include "store.h"
#include "wal.h"

/* The store made durable: at start the newest snapshot and the log after it are loaded
 * into the store; every Put is a log record; snapshots are written by a forked child
 * when the log outgrows a threshold or when asked. Knows nothing of Varlink: a Put that
 * waits for its sync is answered through a callback with the waiter it was given.
 *
 * Visibility. With --sync=always the store holds exactly what is durable. A Put is
 * checked against the store and the Puts still waiting for their sync (the overlay of
 * pending.h), appended to the log, and applied to the store only when the sync thread
 * reports its record durable, just before it is answered. So a Get never reads a value
 * a crash could still take back: reads stay linearizable across crashes without ever
 * waiting for the disk, and a failed log needs no undo, the overlay is dropped. A Put
 * whose check depended on a waiting Put (a mismatch against it, say) is answered after
 * that Put is durable, for the same reason. In the other sync modes a Put is applied and
 * answered at once: a crash may lose the last of them, which is what those modes mean. */

typedef struct KVState KVState;

typedef struct KVStateOptions {
        const char *directory;
        WalSyncMode sync_mode;
        uint64_t sync_interval_usec;    /* WAL_SYNC_INTERVAL */
        uint64_t snapshot_log_size;     /* a snapshot starts when the log holds this many bytes */
        QuotaLimits quota;              /* per uid */
        uint64_t max_leases;            /* 0: no bound */
        uint64_t max_lease_keys;        /* per lease; 0: no bound */
} KVStateOptions;

#define KV_STATE_DEFAULT_SNAPSHOT_LOG_SIZE (64U << 20)
#define KV_STATE_DEFAULT_MAX_LEASES 65536U
#define KV_STATE_DEFAULT_MAX_LEASE_KEYS 1024U

/* A deferred Put, Delete, Grant or Revoke is answered: result 0 (applied), -ESTALE, -ENOENT,
 * or a storage error (-EIO, -ENOSPC, ...: not applied). pp->kind says which (a deferred
 * check of a Put or Delete is PENDING_ANSWER); a Grant's lease is pp->lease, its ttl
 * pp->version. */
typedef void (*kv_state_put_done_t)(void *waiter, int result, const PendingPut *pp, void *userdata);
/* A change of a key was applied (durable, in the store): its new value and version, or its
 * deletion at version; lease 0: none. value is valid during the call only. */
typedef void (*kv_state_watch_t)(const void *key, size_t key_size, const void *value, size_t value_size,
                                 uint64_t version, bool deleted, uint64_t lease, void *userdata);
/* Degraded, snapshot times or sizes changed. */
typedef void (*kv_state_changed_t)(KVState *k, void *userdata);

/* Locks the directory (-EBUSY if another process holds it), loads it into store, and
 * watches the log's sync thread and snapshot writers from event. Logs its failures. */
int kv_state_open(sd_event *event, Store *store, const KVStateOptions *opts, KVState **ret);
/* Kills a running snapshot writer; does not answer waiting Puts (see kv_state_flush()). */
KVState *kv_state_free(KVState *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(KVState *, kv_state_free);

void kv_state_set_put_done(KVState *k, kv_state_put_done_t cb, void *userdata);
void kv_state_set_change_handler(KVState *k, kv_state_changed_t cb, void *userdata);
void kv_state_set_watch_handler(KVState *k, kv_state_watch_t cb, void *userdata);

/* The conditional write of store_put(), made durable, by uid (charged for the key, see
 * quota.h), attaching the key to lease (0: none; a Put without one detaches it). Returns 0
 * when applied (answer now), 1 when the answer is deferred (*ret_pending is then the entry:
 * pass it to kv_state_forget() if the waiter goes away first), -ESTALE, -ENOENT, -EOVERFLOW,
 * -E2BIG, -EDQUOT (over uid's quota: nothing was written), -ENXIO (no such lease of uid's,
 * or it is ending), -EXFULL (the lease has max_lease_keys), -ENOMEM, or a storage error
 * (degraded: nothing was written). */
int kv_state_put(KVState *k, const void *key, size_t key_size, const void *value, size_t value_size,
                 uint64_t version, uint64_t lease, uint32_t uid, void *waiter, PendingPut **ret_pending);
/* The conditional delete of store_delete(), made durable; returns as kv_state_put(). Any uid
 * may delete a key, as any may write it. */
int kv_state_delete(KVState *k, const void *key, size_t key_size, uint64_t version, void *waiter,
                    PendingPut **ret_pending);

/* Leases (lease.h), of uid: only uid or root may renew or revoke one. Grant returns 0 or 1
 * (deferred) as kv_state_put() with the lease's id in *ret_lease, -EINVAL for a ttl (s)
 * outside 1..LEASE_TTL_MAX, -EUSERS at max_leases, or a storage error. KeepAlive renews
 * the lease for its ttl (*ret_ttl) and needs no log: after a restart every lease has its
 * full ttl anyway. Revoke ends the lease and deletes its keys, 0 or 1 as Put. Both: -ENXIO
 * for no such lease of uid's. An expired lease ends as if revoked. */
int kv_state_grant(KVState *k, uint64_t ttl, uint32_t uid, void *waiter, PendingPut **ret_pending,
                   uint64_t *ret_lease);
int kv_state_keepalive(KVState *k, uint64_t lease, uint32_t uid, uint64_t *ret_ttl);
int kv_state_revoke(KVState *k, uint64_t lease, uint32_t uid, void *waiter, PendingPut **ret_pending);
bool kv_state_lease_exists(KVState *k, uint64_t lease);
size_t kv_state_n_leases(const KVState *k);
/* The highest version at which a key was deleted (applied), 0 if none ever was. */
uint64_t kv_state_floor(const KVState *k);
void kv_state_forget(KVState *k, PendingPut *pp);

/* Starts a snapshot unless one is running. 0, or a negative errno. */
int kv_state_snapshot(KVState *k);
/* For shutdown: syncs what was appended and answers the waiting Puts. Blocks. */
void kv_state_flush(KVState *k);

WalSyncMode kv_state_sync_mode(const KVState *k);
const char *kv_state_sync_mode_string(const KVState *k); /* "always", "interval:MS", "none" */
const char *kv_state_directory(const KVState *k);
/* 0, or the error that failed the log: Puts get StorageError until a snapshot succeeds. */
int kv_state_degraded(const KVState *k);
uint64_t kv_state_log_bytes(KVState *k);        /* in the log since the last snapshot */
uint64_t kv_state_syncs(KVState *k);            /* syncs of the log completed since the start */
uint64_t kv_state_snapshot_bytes(const KVState *k);
uint64_t kv_state_last_snapshot_usec(const KVState *k); /* CLOCK_REALTIME; 0: none yet */
uint64_t kv_state_sync_latency_p99(KVState *k); /* µs, syncs of the last minute */
bool kv_state_snapshot_running(const KVState *k);
size_t kv_state_n_pending(const KVState *k);
const Quota *kv_state_quota(const KVState *k);

/* Offline, for --check and --repair: reports the state in path on stdout. 0 if it loads
 * (a torn tail is cut at the next start), -EBADMSG if damaged; with repair, cuts the log
 * at the damage and returns 0 once it loads. */
int kv_state_check(const char *path, bool repair);

/* The log record of a key: le64 version, le32 key size, le32 uid of its writer (charged
 * for it by the quota), the key, the value. Snapshots hold the same records, one per key.
 * Files of format version 1 hold KV_RECORD_SET, the same without the uid: read as
 * root's. */
#define KV_RECORD_SET 1U
#define KV_RECORD_SET_OWNED 2U
/* Format version 3 adds: a Put with a lease (the KV_RECORD_SET_OWNED payload, then le64
 * lease), a Delete (le64 deletion version, the key), a Grant (le64 lease, le64 ttl in
 * seconds, le64 uid), a Revoke or expiry, which deletes the lease's keys (le64 lease), and
 * in snapshots, after the keys, the deletion floor (le64 floor, le64 next lease id). A
 * snapshot has a Grant for every lease before the keys. */
#define KV_RECORD_SET_LEASED 3U
#define KV_RECORD_DELETE 4U
#define KV_RECORD_LEASE_GRANT 5U
#define KV_RECORD_LEASE_REVOKE 6U
#define KV_RECORD_FLOOR 7U
