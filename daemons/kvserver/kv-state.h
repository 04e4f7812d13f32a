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
} KVStateOptions;

#define KV_STATE_DEFAULT_SNAPSHOT_LOG_SIZE (64U << 20)

/* A deferred Put is answered: result 0 (applied), -ESTALE, -ENOENT, or a storage error
 * (-EIO, -ENOSPC, ...: not applied). */
typedef void (*kv_state_put_done_t)(void *waiter, int result, void *userdata);
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

/* The conditional write of store_put(), made durable, by uid (charged for the key, see
 * quota.h). Returns 0 when applied (answer now), 1 when the answer is deferred
 * (*ret_pending is then the entry: pass it to kv_state_forget() if the waiter goes away
 * first), -ESTALE, -ENOENT, -EOVERFLOW, -E2BIG, -EDQUOT (over uid's quota: nothing was
 * written), -ENOMEM, or a storage error (degraded: nothing was written). */
int kv_state_put(KVState *k, const void *key, size_t key_size, const void *value, size_t value_size,
                 uint64_t version, uint32_t uid, void *waiter, PendingPut **ret_pending);
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
