/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include "kv-state.h"
#include "lease.h"
#include "log.h"
#include "snapshot.h"
#include "state-check.h"
#include "state-dir.h"
#include "time-util.h"

#define KV_RECORD_HEADER 12U    /* le64 version, le32 key size */
#define KV_RECORD_OWNED_HEADER 16U /* le64 version, le32 key size, le32 owner uid */
/* After a snapshot failed, the log's size does not start another one before this. */
#define SNAPSHOT_RETRY_USEC (10 * USEC_PER_SEC)
/* Degraded, the snapshot that repairs the log is tried again after this, doubled after
 * each failure up to the maximum: Puts resume by themselves once the disk has room. */
#define REPAIR_RETRY_MIN_USEC (1 * USEC_PER_SEC)
#define REPAIR_RETRY_MAX_USEC (30 * USEC_PER_SEC)
#define LATENCY_WINDOW_USEC (60 * USEC_PER_SEC)
#define LATENCY_SAMPLES 4096U
#define SYNCS_IN_FLIGHT 256U
/* An expiry that could not be written (the log failed) is tried again after this. */
#define LEASE_RETRY_USEC (1 * USEC_PER_SEC)
#define LEASE_TIMER_ACCURACY_USEC (10 * USEC_PER_MSEC)

typedef struct LatencySample {
        uint64_t when, usec;
} LatencySample;

typedef struct SyncStart {
        uint64_t seqnum, when;
} SyncStart;

struct KVState {
        sd_event *event;
        Store *store;
        StateDir *dir;
        Wal *wal;
        Pending *pending;
        Quota *quota;
        Leases *leases;
        sd_event_source *lease_timer;
        uint64_t max_leases, max_lease_keys;
        uint64_t floor_appended;        /* the deletion floor with the Deletes not durable yet */
        WalSyncMode sync_mode;
        char *sync_mode_string;
        uint64_t snapshot_log_size;

        sd_event_source *wal_source;
        sd_event_source *commit_source;
        sd_event_source *snapshot_source;
        Snapshot *snapshot;
        sd_event_source *repair_source;
        uint64_t repair_backoff_usec;   /* the next retry's delay; 0 when not degraded */
        uint64_t snapshot_start_bytes;  /* the log's byte count when the running snapshot started */
        uint64_t snapshot_retry_usec;   /* CLOCK_MONOTONIC */

        uint64_t log_bytes_loaded;      /* replayed at start, until the first snapshot */
        uint64_t log_bytes_base;        /* the log's byte count at the last snapshot */
        uint64_t snapshot_durable;      /* every record up to this one is in a snapshot */
        uint64_t snapshot_bytes;
        uint64_t last_snapshot_usec;
        uint64_t committed;             /* the last seqnum handed to wal_commit() */
        int degraded;

        SyncStart syncs[SYNCS_IN_FLIGHT];
        size_t syncs_head, n_syncs;
        LatencySample samples[LATENCY_SAMPLES];
        size_t samples_next, n_samples;

        kv_state_put_done_t put_done;
        void *put_done_userdata;
        kv_state_changed_t changed;
        void *changed_userdata;
        kv_state_watch_t watch;
        void *watch_userdata;
};

/* Records */

/* The header of a KV_RECORD_SET_OWNED payload; the key and the value follow it. */
static void record_encode_header(uint8_t h[KV_RECORD_OWNED_HEADER], size_t key_size, uint64_t version,
                                 uint32_t owner) {
        uint64_t v = htole64(version);
        uint32_t ks = htole32((uint32_t) key_size), o = htole32(owner);

        memcpy(h, &v, 8);
        memcpy(h + 8, &ks, 4);
        memcpy(h + 12, &o, 4);
}

static bool record_too_big(size_t key_size, size_t value_size) {
        return key_size > UINT32_MAX || value_size > RECORD_PAYLOAD_MAX ||
                key_size > RECORD_PAYLOAD_MAX - KV_RECORD_OWNED_HEADER - value_size;
}

static int record_encode(uint8_t **buf, size_t *allocated, const void *key, size_t key_size, const void *value,
                         size_t value_size, uint64_t version, uint32_t owner, size_t *ret_size) {
        size_t size;

        if (record_too_big(key_size, value_size))
                return -E2BIG;
        size = KV_RECORD_OWNED_HEADER + key_size + value_size;
        if (size > *allocated) {
                size_t a = MAX(size, MAX(*allocated * 2, (size_t) 4096));
                uint8_t *p = realloc(*buf, a);
                if (!p)
                        return -ENOMEM;
                *buf = p;
                *allocated = a;
        }
        record_encode_header(*buf, key_size, version, owner);
        if (key_size > 0)
                memcpy(*buf + KV_RECORD_OWNED_HEADER, key, key_size);
        if (value_size > 0)
                memcpy(*buf + KV_RECORD_OWNED_HEADER + key_size, value, value_size);
        *ret_size = size;
        return 0;
}

typedef struct KeyRecord {
        uint64_t version;
        uint32_t owner;
        const uint8_t *key, *value;
        size_t key_size, value_size;
} KeyRecord;

/* Both layouts: KV_RECORD_SET of format version 1 (no owner: root's), and
 * KV_RECORD_SET_OWNED. */
static int record_decode(uint32_t type, const uint8_t *p, size_t size, KeyRecord *ret) {
        size_t header = type == KV_RECORD_SET_OWNED ? KV_RECORD_OWNED_HEADER : KV_RECORD_HEADER;
        uint32_t key_size, owner = 0;
        uint64_t version;

        if ((type != KV_RECORD_SET && type != KV_RECORD_SET_OWNED) || size < header)
                return -EBADMSG;
        memcpy(&version, p, 8);
        memcpy(&key_size, p + 8, 4);
        if (type == KV_RECORD_SET_OWNED)
                memcpy(&owner, p + 12, 4);
        *ret = (KeyRecord) {
                .version = le64toh(version),
                .owner = le32toh(owner),
                .key = p + header,
                .key_size = le32toh(key_size),
        };
        if (ret->key_size > size - header || ret->version == 0)
                return -EBADMSG;
        ret->value = ret->key + ret->key_size;
        ret->value_size = size - header - ret->key_size;
        return 0;
}

typedef struct Loader {
        Store *store;
        KVState *state;
        Quota *quota;           /* charged as keys load, not in a walk of the store after */
        uint64_t records, bytes;
} Loader;

/* The snapshot's keys are distinct: the table gets its size once, before them. */
static void load_count(uint64_t records, void *userdata) {
        Loader *l = userdata;

        if (l->store)
                store_reserve(l->store, (size_t) MIN(records, (uint64_t) SIZE_MAX));
}

static int load_change(Loader *l, uint64_t seqnum, uint32_t type, const void *payload, size_t size);
static int apply_set(KVState *k, const StoreFound *found, const void *key, size_t key_size, const void *value,
                     size_t value_size, uint64_t version, uint32_t owner, uint64_t lease);
static size_t state_n_leases(const KVState *k);

/* Moves a loaded Put's key and bytes from its old owner's account to its writer's. */
static int load_charge(Loader *l, bool existed, uint32_t old_owner, size_t old_size, const KeyRecord *rec) {
        int r = 0;

        if (existed)
                r = quota_charge(l->quota, old_owner, -1, -(int64_t) (rec->key_size + old_size));
        if (r >= 0)
                r = quota_charge(l->quota, rec->owner, 1, (int64_t) (rec->key_size + rec->value_size));
        return r;
}

static int load_record(uint64_t seqnum, uint32_t type, const void *payload, size_t size, void *userdata) {
        Loader *l = userdata;
        StoreFound found;
        KeyRecord rec;
        size_t old_size;
        uint32_t old_owner;
        bool existed;
        int r;

        if (type > KV_RECORD_SET_OWNED && type < RECORD_TYPE_RESERVED)
                return load_change(l, seqnum, type, payload, size);
        if (record_decode(type, payload, size, &rec) < 0)
                return log_error_errno(EBADMSG, "Record %" PRIu64 ": unknown type %" PRIu32 ", or bad size %zu, "
                                       "key size or version.", seqnum, type, size);

        l->records++;
        l->bytes += RECORD_HEADER_SIZE + size;
        if (!l->store)
                return 0;
        r = store_find(l->store, rec.key, rec.key_size, &found, &old_size, NULL, &old_owner);
        existed = r >= 0;
        /* A Put without a lease detaches its key from the one it had. */
        if ((r >= 0 || r == -ENOENT) && state_n_leases(l->state) > 0)
                r = apply_set(l->state, &found, rec.key, rec.key_size, rec.value, rec.value_size, rec.version,
                              rec.owner, 0);
        else if (r >= 0 || r == -ENOENT)
                r = store_set_found(l->store, &found, rec.key, rec.key_size, rec.value, rec.value_size, rec.version,
                                    rec.owner);
        if (r >= 0 && l->quota)
                r = load_charge(l, existed, old_owner, old_size, &rec);
        if (r < 0)
                return log_error_errno(r, "Failed to load record %" PRIu64 ": %m", seqnum);
        return 0;
}

/* Snapshots: run in the forked writer, over its copy of the store and the overlay, so
 * that it holds every record up to the last one appended. */

typedef struct SnapshotContext {
        KVState *k;
        SnapshotWriter *sw;
        uint8_t *buf;
        size_t allocated;
        uint64_t floor;
} SnapshotContext;

static uint64_t key_lease(KVState *k, const PendingPut *pp, const void *key, size_t key_size);
static bool lease_is_ending(KVState *k, uint64_t lease);
static int snapshot_add_leased(SnapshotContext *c, const void *key, size_t key_size, const void *value,
                               size_t value_size, uint64_t version, uint32_t owner, uint64_t lease);
static int snapshot_write_leases(SnapshotContext *c);
static int snapshot_write_floor(SnapshotContext *c);

static int snapshot_add(SnapshotContext *c, const void *key, size_t key_size, const void *value, size_t value_size,
                        uint64_t version, uint32_t owner) {
        size_t size;
        int r;

        r = record_encode(&c->buf, &c->allocated, key, key_size, value, value_size, version, owner, &size);
        if (r < 0)
                return r;
        return snapshot_writer_add(c->sw, KV_RECORD_SET_OWNED, c->buf, size);
}

static int snapshot_pending_add(SnapshotContext *c, const PendingPut *pp) {
        /* A Delete, or a key whose lease ends with a Revoke written: not in the snapshot. */
        if (pp->kind == PENDING_DELETE)
                return 0;
        if (lease_is_ending(c->k, pp->lease)) {
                c->floor = MAX(c->floor, pp->version + 1);
                return 0;
        }
        if (pp->lease != 0)
                return snapshot_add_leased(c, pending_key(pp), pp->key_size, pending_value(pp), pp->value_size,
                                           pp->version, pp->quota.uid, pp->lease);
        return snapshot_add(c, pending_key(pp), pp->key_size, pending_value(pp), pp->value_size, pp->version,
                            pp->quota.uid);
}

static int snapshot_store_entry(const void *key, size_t key_size, const void *value, size_t value_size,
                                uint64_t version, uint32_t owner, void *userdata) {
        SnapshotContext *c = userdata;
        const PendingPut *pp = pending_find(c->k->pending, key, key_size);
        uint64_t lease;

        if (pp)
                return snapshot_pending_add(c, pp);
        lease = key_lease(c->k, NULL, key, key_size);
        if (lease == 0)
                return snapshot_add(c, key, key_size, value, value_size, version, owner);
        if (lease_is_ending(c->k, lease)) {
                c->floor = MAX(c->floor, version + 1);
                return 0;
        }
        return snapshot_add_leased(c, key, key_size, value, value_size, version, owner, lease);
}

static int snapshot_pending_entry(const PendingPut *pp, void *userdata) {
        SnapshotContext *c = userdata;

        /* Keys the store has were written with their newest value above. */
        if (store_get(c->k->store, pending_key(pp), pp->key_size, NULL, NULL, NULL) >= 0)
                return 0;
        return snapshot_pending_add(c, pp);
}

static int snapshot_write_state(SnapshotWriter *sw, void *userdata) {
        SnapshotContext c = { .k = userdata, .sw = sw };
        int r;

        /* Leases first: the keys that name them follow. */
        r = snapshot_write_leases(&c);
        if (r >= 0)
                r = store_foreach(c.k->store, snapshot_store_entry, &c);
        if (r >= 0)
                r = pending_foreach_newest(c.k->pending, snapshot_pending_entry, &c);
        if (r >= 0)
                r = snapshot_write_floor(&c);
        free(c.buf);
        return r;
}

/* Answering */

static void notify_changed(KVState *k) {
        if (k->changed)
                k->changed(k, k->changed_userdata);
}

static void answer(KVState *k, PendingPut *pp, int result) {
        if (pp->waiter && k->put_done)
                k->put_done(pp->waiter, result, pp, k->put_done_userdata);
        free(pp);
}

static int apply_pending(KVState *k, const PendingPut *pp);

/* Applies and answers the waiting Puts whose records are durable. */
static void answer_durable(KVState *k, uint64_t durable) {
        PendingPut *pp;

        while ((pp = pending_pop(k->pending, durable))) {
                int r = pp->result;

                if (pp->kind != PENDING_ANSWER && pp->kind != PENDING_GRANT) {
                        r = apply_pending(k, pp);
                        if (r < 0) {
                                /* Durable but not in memory: only a restart, which replays it, makes
                                 * the two agree again. The Put is answered by a closed connection. */
                                log_error_errno(r, "Failed to apply a durable Put: %m. Exiting.");
                                (void) sd_event_exit(k->event, r);
                        }
                }
                answer(k, pp, r);
        }
}

static void undo_pending(KVState *k, const PendingPut *pp);

/* The log failed: the Puts still waiting were not made durable. Once the log has cut
 * their records from its files, so that no replay can bring them back, they are answered
 * with the error and dropped from the overlay, so nothing of them stays visible. Until
 * then they wait: a snapshot that holds them makes them durable after all. */
static void fail_pending(KVState *k, int error) {
        PendingPut *pp;

        if (k->sync_mode == WAL_SYNC_ALWAYS && !wal_undurable_cut(k->wal))
                return;
        while ((pp = pending_pop_any(k->pending))) {
                undo_pending(k, pp);
                answer(k, pp, error);
        }
        k->floor_appended = store_floor(k->store);
}

static void record_sync_latency(KVState *k, uint64_t durable) {
        uint64_t now = now_usec();

        while (k->n_syncs > 0 && k->syncs[k->syncs_head].seqnum <= durable) {
                LatencySample *s = &k->samples[k->samples_next];

                *s = (LatencySample) { .when = now, .usec = now - k->syncs[k->syncs_head].when };
                k->samples_next = (k->samples_next + 1) % LATENCY_SAMPLES;
                k->n_samples = MIN(k->n_samples + 1, (size_t) LATENCY_SAMPLES);
                k->syncs_head = (k->syncs_head + 1) % SYNCS_IN_FLIGHT;
                k->n_syncs--;
        }
}

static void state_failed(KVState *k, int error);

static void state_process(KVState *k) {
        uint64_t durable = 0;
        int r;

        r = wal_process(k->wal, &durable);
        record_sync_latency(k, durable);
        if (k->sync_mode == WAL_SYNC_ALWAYS)
                answer_durable(k, MAX(durable, k->snapshot_durable));
        if (r < 0)
                state_failed(k, r);
}

static int on_wal_event(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        state_process(userdata);
        return 0;
}

/* Snapshots */

static void snapshot_done(KVState *k) {
        k->snapshot_source = sd_event_source_disable_unref(k->snapshot_source);
        k->snapshot = snapshot_free(k->snapshot);
}

static char *snapshot_file_name(uint64_t seqnum) {
        char *s;

        if (asprintf(&s, "snap-%016" PRIx64 ".snap", seqnum) < 0)
                return NULL;
        return s;
}

static void snapshot_stat(KVState *k, uint64_t seqnum) {
        _cleanup_free_ char *name = snapshot_file_name(seqnum);
        struct stat st;

        if (name && fstatat(state_dir_fd(k->dir), name, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                k->snapshot_bytes = (uint64_t) st.st_size;
                k->last_snapshot_usec = (uint64_t) st.st_mtim.tv_sec * USEC_PER_SEC +
                        (uint64_t) st.st_mtim.tv_nsec / NSEC_PER_USEC;
        }
}

static int on_repair_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        KVState *k = userdata;

        if (k->degraded < 0 && !k->snapshot) {
                log_info("Trying again to write the snapshot that brings the log in %s back.",
                         state_dir_path(k->dir));
                (void) kv_state_snapshot(k);
        }
        return 0;
}

/* Degraded, and the snapshot that would bring the log back failed: tries again later,
 * backing off, so that Puts resume by themselves once the disk has room again. */
static void repair_schedule(KVState *k) {
        int r;

        k->repair_backoff_usec = k->repair_backoff_usec == 0 ?
                REPAIR_RETRY_MIN_USEC : MIN(k->repair_backoff_usec * 2, REPAIR_RETRY_MAX_USEC);
        if (k->repair_source) {
                r = sd_event_source_set_time_relative(k->repair_source, k->repair_backoff_usec);
                if (r >= 0)
                        r = sd_event_source_set_enabled(k->repair_source, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(k->event, &k->repair_source, CLOCK_MONOTONIC,
                                               k->repair_backoff_usec, 0, on_repair_timer, k);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule another snapshot, Snapshot() starts one: %m");
}

static void snapshot_check(KVState *k) {
        uint64_t seqnum;
        bool written;
        int r, e;

        r = snapshot_finish(k->snapshot, k->wal);
        if (r == -EAGAIN)
                return;
        seqnum = snapshot_get_seqnum(k->snapshot);
        snapshot_done(k);

        /* -ESTALE: written, but records appended after it started keep the failed log
         * failed. Any other error: not written. */
        written = r >= 0 || r == -ESTALE;
        if (written) {
                k->snapshot_durable = MAX(k->snapshot_durable, seqnum);
                k->log_bytes_loaded = 0;
                k->log_bytes_base = k->snapshot_start_bytes;
                snapshot_stat(k, seqnum);
                log_info("Snapshot of record %" PRIu64 " written to %s, %" PRIu64 " bytes.", seqnum,
                         state_dir_path(k->dir), k->snapshot_bytes);
        } else
                k->snapshot_retry_usec = usec_add(now_usec(), SNAPSHOT_RETRY_USEC);

        /* What the snapshot holds is durable, whatever became of the log. */
        if (k->sync_mode == WAL_SYNC_ALWAYS)
                answer_durable(k, MAX(wal_durable_seqnum(k->wal), k->snapshot_durable));

        e = wal_error(k->wal);
        if (e < 0) {
                fail_pending(k, e);
                if (written)
                        /* The next one covers everything appended: it brings the log back. */
                        (void) kv_state_snapshot(k);
                else
                        repair_schedule(k);
        } else if (k->degraded < 0) {
                k->degraded = 0;
                k->repair_backoff_usec = 0;
                log_notice("The log in %s is trusted again after a snapshot: Puts are accepted.",
                           state_dir_path(k->dir));
        }
        notify_changed(k);
}

static int on_snapshot_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        snapshot_check(userdata);
        return 0;
}

static uint64_t log_bytes_written(KVState *k) {
        WalStats st;

        wal_get_stats(k->wal, &st);
        return st.bytes;
}

int kv_state_snapshot(KVState *k) {
        int r;

        assert(k);

        if (k->snapshot)
                return 0;

        r = snapshot_start(state_dir_fd(k->dir), state_dir_path(k->dir), k->wal, snapshot_write_state, k, NULL,
                           &k->snapshot);
        if (r < 0) {
                k->snapshot_retry_usec = usec_add(now_usec(), SNAPSHOT_RETRY_USEC);
                if (k->degraded < 0)
                        repair_schedule(k);
                return r;
        }
        k->snapshot_start_bytes = log_bytes_written(k);

        /* sd-event watches the writer through a pidfd, or through SIGCHLD on kernels (and
         * under valgrind) without pidfd_open(); kv_state_open() blocked SIGCHLD for that. */
        r = sd_event_add_child(k->event, &k->snapshot_source, snapshot_get_pid(k->snapshot), WEXITED,
                               on_snapshot_exit, k);
        if (r < 0) {
                snapshot_done(k);
                if (k->degraded < 0)
                        repair_schedule(k);
                return log_error_errno(r, "Failed to watch the snapshot writer: %m");
        }
        log_info("Snapshot of record %" PRIu64 " started (pid %d).", snapshot_get_seqnum(k->snapshot),
                 (int) snapshot_get_pid(k->snapshot));
        return 0;
}

static void state_failed(KVState *k, int error) {
        bool first = k->degraded == 0;

        if (first) {
                k->degraded = error;
                log_error_errno(error, "The log in %s failed (%m): Puts get StorageError until a snapshot succeeds.",
                                state_dir_path(k->dir));
                notify_changed(k);
        }
        /* A running snapshot may hold the waiting Puts: it decides, when it ends. */
        if (k->snapshot)
                return;
        fail_pending(k, error);
        if (first)
                (void) kv_state_snapshot(k);
}

/* Commit: once per event loop iteration, whatever was appended meanwhile. */

static int on_commit(sd_event_source *s, void *userdata) {
        KVState *k = userdata;
        uint64_t last = wal_last_seqnum(k->wal);
        int r;

        if (last <= k->committed)
                return 0;

        r = wal_commit(k->wal);
        if (r >= 0 && k->sync_mode != WAL_SYNC_NONE && k->n_syncs < SYNCS_IN_FLIGHT) {
                k->syncs[(k->syncs_head + k->n_syncs) % SYNCS_IN_FLIGHT] = (SyncStart) {
                        .seqnum = last,
                        .when = now_usec(),
                };
                k->n_syncs++;
        }
        k->committed = last;
        if (r < 0) {
                state_process(k);
                return 0;
        }

        if (!k->snapshot && k->degraded == 0 && k->snapshot_log_size > 0 &&
            kv_state_log_bytes(k) >= k->snapshot_log_size && now_usec() >= k->snapshot_retry_usec)
                (void) kv_state_snapshot(k);
        return 0;
}

/* Puts */

static int check_version(bool exists, uint64_t current, uint64_t version, uint64_t floor, uint64_t *ret_new) {
        if (!exists) {
                if (version != 0)
                        return -ENOENT;
                if (floor == UINT64_MAX)
                        return -EOVERFLOW;
                *ret_new = floor + 1;
                return 0;
        }
        if (current != version)
                return -ESTALE;
        if (version == UINT64_MAX)
                return -EOVERFLOW;
        *ret_new = version + 1;
        return 0;
}

/* The newest version of key a Put is checked against (the overlay's, else the store's),
 * and the move between quota accounts the Put makes; where the store has the key, for
 * the write. Whether the key exists. */
static bool put_lookup(KVState *k, const void *key, size_t key_size, PendingPut **ret_newest,
                       uint64_t *ret_current, QuotaMove *move, StoreFound *ret_found) {
        PendingPut *newest = NULL;
        size_t old_size = 0;

        if (k->sync_mode == WAL_SYNC_ALWAYS)
                newest = pending_find(k->pending, key, key_size);
        if (newest && newest->kind == PENDING_DELETE) {
                *ret_newest = newest;
                move->old_bytes = 0;
                return false;
        }
        if (newest) {
                move->existed = true;
                move->old_uid = newest->quota.uid;
                old_size = newest->value_size;
                *ret_current = newest->version;
        } else if (store_find(k->store, key, key_size, ret_found, &old_size, ret_current, &move->old_uid) >= 0)
                move->existed = true;
        move->old_bytes = move->existed ? key_size + old_size : 0;
        *ret_newest = newest;
        return move->existed;
}

/* A logged Put: waits for its sync in the overlay, or is applied at once. */
static int put_logged(KVState *k, const void *key, size_t key_size, const void *value, size_t value_size,
                      uint64_t version, uint64_t lease, uint64_t seqnum, const QuotaMove *move,
                      const StoreFound *found, void *waiter, PendingPut **ret_pending) {
        int r;

        if (k->sync_mode == WAL_SYNC_ALWAYS) {
                r = pending_add_put(k->pending, key, key_size, value, value_size, version, seqnum, waiter,
                                    ret_pending);
                if (r < 0) {
                        /* Logged but never to be applied: a restart, which replays it, makes the
                         * memory and the log agree again. */
                        log_error_errno(r, "Failed to queue a logged Put: %m. Exiting.");
                        (void) sd_event_exit(k->event, r);
                        return r;
                }
                (*ret_pending)->quota = *move;
                (*ret_pending)->lease = lease;
                quota_move(k->quota, move, false);
                return 1;
        }

        r = apply_set(k, found, key, key_size, value, value_size, version, move->uid, lease);
        if (r < 0) {
                /* Logged but not in memory: a restart, which replays it, makes them agree. */
                log_error_errno(r, "Failed to apply a logged Put: %m. Exiting.");
                (void) sd_event_exit(k->event, r);
                return r;
        }
        quota_move(k->quota, move, false);
        return 0;
}

static bool key_view(KVState *k, const void *key, size_t key_size, PendingPut **ret_newest, uint64_t *ret_current,
                     QuotaMove *move, StoreFound *ret_found, uint64_t *ret_floor, bool *ret_depends);
static int record_add_lease(uint8_t **buf, size_t *allocated, uint64_t lease, size_t *size);

int kv_state_put(KVState *k, const void *key, size_t key_size, const void *value, size_t value_size,
                 uint64_t version, uint64_t lease, uint32_t uid, void *waiter, PendingPut **ret_pending) {
        QuotaMove move = { .uid = uid, .bytes = key_size + value_size };
        uint64_t current = 0, new_version = 0, seqnum, floor, lease_le = htole64(lease);
        uint8_t header[KV_RECORD_OWNED_HEADER];
        StoreFound found = {};
        PendingPut *newest;
        Lease *l = NULL;
        bool exists, depends;
        int r;

        assert(k);
        assert(ret_pending);

        if (key_size > STORE_SIZE_MAX || value_size > STORE_SIZE_MAX)
                return -E2BIG;
        if (lease != 0) {
                l = leases_get(k->leases, lease);
                if (!l || l->ending || (uid != 0 && l->uid != uid))
                        return -ENXIO;
        }

        exists = key_view(k, key, key_size, &newest, &current, &move, &found, &floor, &depends);

        /* A check that fails writes nothing, and needs no log: answered also when degraded. */
        r = check_version(exists, current, version, floor, &new_version);
        if (r >= 0 && l && k->max_lease_keys > 0 && l->n_keys >= k->max_lease_keys &&
            !lease_has_key(l, key, key_size))
                return -EXFULL;
        if (r < 0) {
                if (!depends || r == -EOVERFLOW)
                        return r;
                /* It saw a Put that a crash may still take back: answered once that is durable. */
                r = pending_add_answer(k->pending, r, wal_last_seqnum(k->wal), waiter, ret_pending);
                if (r < 0)
                        return r;
                return 1;
        }

        r = quota_check_move(k->quota, &move);
        if (r < 0) {
                quota_count_refused(k->quota);
                return r;
        }
        if (k->degraded < 0)
                return k->degraded;

        r = quota_prepare_move(k->quota, &move);
        if (r < 0)
                return r;
        if (record_too_big(key_size, value_size))
                return -E2BIG;

        /* Encoded straight into the log's buffer, without a copy of the record first; a
         * Put with a lease has it after the value (KV_RECORD_SET_LEASED). */
        record_encode_header(header, key_size, new_version, uid);
        r = wal_appendv(k->wal, lease != 0 ? KV_RECORD_SET_LEASED : KV_RECORD_SET_OWNED,
                        (const struct iovec[]) {
                                { .iov_base = header, .iov_len = sizeof(header) },
                                { .iov_base = (void *) key, .iov_len = key_size },
                                { .iov_base = (void *) value, .iov_len = value_size },
                                { .iov_base = &lease_le, .iov_len = sizeof(lease_le) },
                        }, lease != 0 ? 4 : 3, &seqnum);
        if (r == -ENOMEM)
                return r;
        if (r == -EMSGSIZE)
                return -E2BIG;
        if (r < 0) {
                state_process(k);
                return r;
        }
        return put_logged(k, key, key_size, value, value_size, new_version, lease, seqnum, &move, &found, waiter,
                          ret_pending);
}

void kv_state_forget(KVState *k, PendingPut *pp) {
        assert(k);
        if (pp)
                pp->waiter = NULL;
}

void kv_state_flush(KVState *k) {
        int r;

        assert(k);

        if (wal_error(k->wal) == 0) {
                r = wal_sync(k->wal);
                if (r < 0)
                        log_error_errno(r, "Failed to sync the log at shutdown: %m");
        }
        state_process(k);
        /* Whatever still waits (the log failed) was not made durable. */
        fail_pending(k, wal_error(k->wal) ?: -EIO);
}

/* Setup */

/* Locks the directory, loads the newest snapshot into the store and replays the log
 * after it. */
static int kv_state_load(KVState *k, const KVStateOptions *opts, uint64_t *ret_after) {
        Loader loader = { .store = k->store, .state = k, .quota = k->quota };
        uint64_t after = 0;
        pid_t holder;
        int r;

        state_dir_wait_orphaned_lock(opts->directory);
        r = state_dir_open(opts->directory, &k->dir, &holder);
        if (r == -EBUSY)
                return log_error_errno(r, "Refusing to start: another mrkv-kvserver%s serves %s.",
                                       holder > 0 ? " (see above)" : "", opts->directory);
        if (r < 0)
                return r;
        (void) state_dir_remove_tmp(state_dir_fd(k->dir));

        r = snapshot_load_counted(state_dir_fd(k->dir), state_dir_path(k->dir), load_count, load_record, &loader,
                                  &after);
        if (r < 0)
                return log_error_errno(r, "Failed to load the snapshot in %s: %m", state_dir_path(k->dir));
        k->snapshot_durable = after;
        if (after > 0)
                snapshot_stat(k, after);
        loader.bytes = 0;

        r = wal_open(state_dir_fd(k->dir), state_dir_path(k->dir), after,
                     &(const WalOptions) {
                             .sync_mode = opts->sync_mode,
                             .sync_interval_usec = opts->sync_interval_usec,
                     },
                     load_record, &loader, &k->wal);
        if (r == -EBADMSG)
                return log_error_errno(r, "The log in %s is damaged (see above); mrkv-kvserver --check "
                                       "reports and --repair cuts the damage. Refusing to start.",
                                       state_dir_path(k->dir));
        if (r < 0)
                return log_error_errno(r, "Failed to open the log in %s: %m", state_dir_path(k->dir));
        k->log_bytes_loaded = loader.bytes;
        *ret_after = after;
        return 0;
}

static int block_sigchld(void) {
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        return -pthread_sigmask(SIG_BLOCK, &mask, NULL);
}

static void lease_timer_update(KVState *k);

int kv_state_open(sd_event *event, Store *store, const KVStateOptions *opts, KVState **ret) {
        _cleanup_(kv_state_freep) KVState *k = NULL;
        uint64_t after = 0, started = now_usec();
        int r;

        assert(event);
        assert(store);
        assert(opts);
        assert(opts->directory);
        assert(ret);

        /* sd_event_add_child() wants SIGCHLD blocked, for its fallback without pidfds. */
        r = block_sigchld();
        if (r < 0)
                return log_error_errno(r, "Failed to block SIGCHLD: %m");

        k = calloc(1, sizeof(*k));
        if (!k)
                return log_oom();
        k->event = sd_event_ref(event);
        k->store = store;
        k->sync_mode = opts->sync_mode;
        k->snapshot_log_size = opts->snapshot_log_size;

        if (opts->sync_mode == WAL_SYNC_INTERVAL)
                r = asprintf(&k->sync_mode_string, "interval:%" PRIu64, opts->sync_interval_usec / USEC_PER_MSEC);
        else
                r = asprintf(&k->sync_mode_string, "%s", wal_sync_mode_to_string(opts->sync_mode));
        if (r < 0)
                return log_oom();

        k->max_leases = opts->max_leases;
        k->max_lease_keys = opts->max_lease_keys;
        r = pending_new(&k->pending);
        if (r >= 0)
                r = quota_new(&opts->quota, &k->quota);
        if (r >= 0)
                r = leases_new(&k->leases);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate: %m");

        r = kv_state_load(k, opts, &after);
        if (r < 0)
                return r;
        k->committed = wal_last_seqnum(k->wal);
        k->floor_appended = store_floor(store);
        lease_timer_update(k);

        r = sd_event_add_io(event, &k->wal_source, wal_get_event_fd(k->wal), EPOLLIN, on_wal_event, k);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the log: %m");
        /* Runs after every dispatch of another source, e.g. the one that reads every ready
         * connection: one write(2) and one sync request for all their Puts. */
        r = sd_event_add_post(event, &k->commit_source, on_commit, k);
        if (r < 0)
                return log_error_errno(r, "Failed to add the commit source: %m");

        log_info("Loaded %zu keys and %zu leases from %s (snapshot of record %" PRIu64 ", %" PRIu64 " log records) in %" PRIu64
                 " ms; sync mode %s.",
                 store_n_keys(store), leases_size(k->leases), state_dir_path(k->dir), after, wal_last_seqnum(k->wal) - after,
                 (now_usec() - started) / USEC_PER_MSEC, k->sync_mode_string);

        *ret = TAKE_PTR(k);
        return 0;
}

KVState *kv_state_free(KVState *k) {
        if (!k)
                return NULL;
        snapshot_done(k);
        sd_event_source_disable_unref(k->repair_source);
        sd_event_source_disable_unref(k->wal_source);
        sd_event_source_disable_unref(k->commit_source);
        sd_event_source_disable_unref(k->lease_timer);
        wal_free(k->wal);
        pending_free(k->pending);
        leases_free(k->leases);
        quota_free(k->quota);
        state_dir_free(k->dir);
        sd_event_unref(k->event);
        free(k->sync_mode_string);
        return mfree(k);
}

void kv_state_set_put_done(KVState *k, kv_state_put_done_t cb, void *userdata) {
        assert(k);
        k->put_done = cb;
        k->put_done_userdata = userdata;
}

void kv_state_set_change_handler(KVState *k, kv_state_changed_t cb, void *userdata) {
        assert(k);
        k->changed = cb;
        k->changed_userdata = userdata;
}

WalSyncMode kv_state_sync_mode(const KVState *k) {
        return k->sync_mode;
}

const char *kv_state_sync_mode_string(const KVState *k) {
        return k->sync_mode_string;
}

const char *kv_state_directory(const KVState *k) {
        return state_dir_path(k->dir);
}

int kv_state_degraded(const KVState *k) {
        return k->degraded;
}

uint64_t kv_state_log_bytes(KVState *k) {
        return k->log_bytes_loaded + (log_bytes_written(k) - k->log_bytes_base);
}

uint64_t kv_state_syncs(KVState *k) {
        WalStats st;

        wal_get_stats(k->wal, &st);
        return st.syncs;
}

uint64_t kv_state_snapshot_bytes(const KVState *k) {
        return k->snapshot_bytes;
}

uint64_t kv_state_last_snapshot_usec(const KVState *k) {
        return k->last_snapshot_usec;
}

bool kv_state_snapshot_running(const KVState *k) {
        return k->snapshot;
}

size_t kv_state_n_pending(const KVState *k) {
        return pending_size(k->pending);
}

const Quota *kv_state_quota(const KVState *k) {
        return k->quota;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

uint64_t kv_state_sync_latency_p99(KVState *k) {
        uint64_t v[LATENCY_SAMPLES], now = now_usec();
        size_t n = 0;

        for (size_t i = 0; i < k->n_samples; i++)
                if (k->samples[i].when + LATENCY_WINDOW_USEC >= now)
                        v[n++] = k->samples[i].usec;
        if (n == 0)
                return 0;
        qsort(v, n, sizeof(uint64_t), cmp_u64);
        return v[(n * 99 + 99) / 100 - 1];
}

/* Deletes, leases and the changes watchers see. Every change of the store goes through
 * apply_set(), apply_delete() and apply_revoke(), which keep the leases' key lists and
 * tell the watch handler; the records they come from are encoded and loaded here too. */

static void tell_watchers(KVState *k, const void *key, size_t key_size, const void *value, size_t value_size,
                          uint64_t version, bool deleted, uint64_t lease) {
        if (k->watch)
                k->watch(key, key_size, value, value_size, version, deleted, lease, k->watch_userdata);
}

/* found: where store_find() found the key, or NULL. */
static int apply_set(KVState *k, const StoreFound *found, const void *key, size_t key_size, const void *value,
                     size_t value_size, uint64_t version, uint32_t owner, uint64_t lease) {
        uint64_t old = 0;
        Lease *l;
        int r;

        /* Without leases no key has one: a Put costs no lookup more. */
        if (leases_size(k->leases) > 0)
                (void) store_get_lease(k->store, key, key_size, &old);
        if (found)
                r = store_set_found(k->store, found, key, key_size, value, value_size, version, owner);
        else
                r = store_set(k->store, key, key_size, value, value_size, version, owner);
        if (r < 0)
                return r;
        if (old != lease) {
                if (old != 0 && (l = leases_get(k->leases, old)))
                        lease_detach(l, key, key_size);
                /* A lease a replayed record names is there: its Grant came first. */
                l = lease != 0 ? leases_get(k->leases, lease) : NULL;
                if (!l)
                        lease = 0;
                else {
                        r = lease_attach(l, key, key_size);
                        if (r < 0)
                                return r;
                }
                (void) store_set_lease(k->store, key, key_size, lease);
        }
        /* value is the caller's (a request, a waiting Put, a record), never the store's. */
        tell_watchers(k, key, key_size, value, value_size, version, false, lease);
        return 0;
}

/* Removes key, deleted at deletion_version; with charge, also from its writer's quota
 * (a Delete was charged when written, a lease's keys only now). */
static void apply_delete(KVState *k, const void *key, size_t key_size, uint64_t deletion_version, bool charge) {
        const char *value;
        size_t value_size;
        uint64_t lease = 0;
        uint32_t owner = 0;
        Lease *l;

        if (store_get(k->store, key, key_size, &value, &value_size, NULL) < 0) {
                store_raise_floor(k->store, deletion_version);
                return;
        }
        (void) store_get_lease(k->store, key, key_size, &lease);
        (void) store_get_owner(k->store, key, key_size, &owner);
        if (lease != 0 && (l = leases_get(k->leases, lease)))
                lease_detach(l, key, key_size);
        if (charge)
                (void) quota_charge(k->quota, owner, -1, -(int64_t) (key_size + value_size));
        (void) store_remove(k->store, key, key_size, deletion_version);
        k->floor_appended = MAX(k->floor_appended, deletion_version);
        tell_watchers(k, key, key_size, NULL, 0, deletion_version, true, lease);
}

/* Ends a lease: each of its keys is deleted at its version + 1. */
static void apply_revoke(KVState *k, uint64_t id, bool charge) {
        Lease *l = leases_get(k->leases, id);

        if (!l)
                return;
        while (l->n_keys > 0) {
                LeaseKey key = l->keys[--l->n_keys];
                uint64_t version;

                if (store_get(k->store, key.data, key.size, NULL, NULL, &version) >= 0 && version < UINT64_MAX)
                        apply_delete(k, key.data, key.size, version + 1, charge);
                free(key.data);
        }
        leases_remove(k->leases, l);
}

static int apply_pending(KVState *k, const PendingPut *pp) {
        switch (pp->kind) {
        case PENDING_PUT:
                return apply_set(k, NULL, pending_key(pp), pp->key_size, pending_value(pp), pp->value_size, pp->version,
                                 pp->quota.uid, pp->lease);
        case PENDING_DELETE:
                apply_delete(k, pending_key(pp), pp->key_size, pp->version, false);
                return 0;
        case PENDING_REVOKE:
                apply_revoke(k, pp->lease, true);
                lease_timer_update(k);
                return 0;
        default:
                return 0;
        }
}

/* The log failed and pp will never be durable: what it changed in memory goes back. */
static void undo_pending(KVState *k, const PendingPut *pp) {
        Lease *l;

        switch (pp->kind) {
        case PENDING_PUT:
                quota_move(k->quota, &pp->quota, true);
                break;
        case PENDING_DELETE:
                (void) quota_charge(k->quota, pp->quota.old_uid, 1, (int64_t) pp->quota.old_bytes);
                break;
        case PENDING_GRANT:
                l = leases_get(k->leases, pp->lease);
                if (l)
                        leases_remove(k->leases, l);
                lease_timer_update(k);
                break;
        case PENDING_REVOKE:
                l = leases_get(k->leases, pp->lease);
                if (l)
                        leases_set_ending(k->leases, l, false, now_usec());
                lease_timer_update(k);
                break;
        default:
                break;
        }
}

static bool lease_is_ending(KVState *k, uint64_t lease) {
        Lease *l;

        if (lease == 0)
                return false;
        l = leases_get(k->leases, lease);
        return l && l->ending;
}

/* The lease a key has once everything written is applied: its newest waiting Put's, or the
 * store's. */
static uint64_t key_lease(KVState *k, const PendingPut *pp, const void *key, size_t key_size) {
        uint64_t lease = 0;

        if (pp)
                return pp->kind == PENDING_PUT ? pp->lease : 0;
        if (leases_size(k->leases) > 0)
                (void) store_get_lease(k->store, key, key_size, &lease);
        return lease;
}

/* A key as the next write sees it: put_lookup(), and a key whose lease ends with a Revoke
 * not applied yet counts as deleted by it. *ret_floor is what a new key is created above,
 * *ret_depends whether the answer depends on a change not durable yet. */
static bool key_view(KVState *k, const void *key, size_t key_size, PendingPut **ret_newest, uint64_t *ret_current,
                     QuotaMove *move, StoreFound *ret_found, uint64_t *ret_floor, bool *ret_depends) {
        bool exists = put_lookup(k, key, key_size, ret_newest, ret_current, move, ret_found);

        *ret_floor = MAX(k->floor_appended, store_floor(k->store));
        *ret_depends = *ret_newest != NULL;
        if (exists && lease_is_ending(k, key_lease(k, *ret_newest, key, key_size))) {
                *ret_floor = MAX(*ret_floor, *ret_current + 1);
                *ret_depends = true;
                move->existed = false;
                move->old_bytes = 0;
                return false;
        }
        return exists;
}

/* KV_RECORD_SET_LEASED: a KV_RECORD_SET_OWNED payload, then the le64 lease. */
static int record_add_lease(uint8_t **buf, size_t *allocated, uint64_t lease, size_t *size) {
        uint64_t le = htole64(lease);

        if (*size + 8 > RECORD_PAYLOAD_MAX)
                return -E2BIG;
        if (*size + 8 > *allocated) {
                uint8_t *p = realloc(*buf, *size + 8);

                if (!p)
                        return -ENOMEM;
                *buf = p;
                *allocated = *size + 8;
        }
        memcpy(*buf + *size, &le, 8);
        *size += 8;
        return 0;
}

/* The small records: a Delete (le64 deletion version, the key), a Grant (le64 lease, le64
 * ttl, le32 uid), a Revoke (le64 lease), a snapshot's floor (le64 floor, le64 next lease). */
static int record_encode_u64s(uint8_t **buf, size_t *allocated, const uint64_t *v, size_t n, const void *tail,
                              size_t tail_size, size_t *ret_size) {
        size_t size = n * 8 + tail_size;

        if (tail_size > RECORD_PAYLOAD_MAX - n * 8)
                return -E2BIG;
        if (size > *allocated) {
                size_t a = MAX(size, (size_t) 4096);
                uint8_t *p = realloc(*buf, a);

                if (!p)
                        return -ENOMEM;
                *buf = p;
                *allocated = a;
        }
        for (size_t i = 0; i < n; i++) {
                uint64_t le = htole64(v[i]);

                memcpy(*buf + i * 8, &le, 8);
        }
        if (tail_size > 0)
                memcpy(*buf + n * 8, tail, tail_size);
        *ret_size = size;
        return 0;
}

static uint64_t record_u64(const uint8_t *p, size_t i) {
        uint64_t le;

        memcpy(&le, p + i * 8, 8);
        return le64toh(le);
}

static int snapshot_add_leased(SnapshotContext *c, const void *key, size_t key_size, const void *value,
                               size_t value_size, uint64_t version, uint32_t owner, uint64_t lease) {
        size_t size;
        int r;

        r = record_encode(&c->buf, &c->allocated, key, key_size, value, value_size, version, owner, &size);
        if (r >= 0)
                r = record_add_lease(&c->buf, &c->allocated, lease, &size);
        if (r < 0)
                return r;
        return snapshot_writer_add(c->sw, KV_RECORD_SET_LEASED, c->buf, size);
}

static int snapshot_lease(Lease *l, void *userdata) {
        SnapshotContext *c = userdata;
        size_t size;
        int r;

        if (l->ending)
                return 0;
        /* The uid rides in a u64 of its own: the record stays three aligned words. */
        r = record_encode_u64s(&c->buf, &c->allocated, (const uint64_t[]) { l->id, l->ttl, l->uid }, 3, NULL, 0,
                               &size);
        if (r < 0)
                return r;
        return snapshot_writer_add(c->sw, KV_RECORD_LEASE_GRANT, c->buf, size);
}

static int snapshot_write_leases(SnapshotContext *c) {
        return leases_foreach(c->k->leases, snapshot_lease, c);
}

static int snapshot_write_floor(SnapshotContext *c) {
        size_t size;
        int r;

        c->floor = MAX(c->floor, MAX(c->k->floor_appended, store_floor(c->k->store)));
        if (c->floor == 0 && leases_next_id(c->k->leases) == 1)
                return 0; /* nothing was ever deleted or granted: as older snapshots */
        r = record_encode_u64s(&c->buf, &c->allocated,
                               (const uint64_t[]) { c->floor, leases_next_id(c->k->leases) }, 2, NULL, 0, &size);
        if (r < 0)
                return r;
        return snapshot_writer_add(c->sw, KV_RECORD_FLOOR, c->buf, size);
}

static int load_change(Loader *l, uint64_t seqnum, uint32_t type, const void *payload, size_t size) {
        const uint8_t *p = payload;
        KVState *k = l->state;
        KeyRecord rec;
        int r = 0;

        switch (type) {
        case KV_RECORD_SET_LEASED:
                if (size < 8 || record_decode(KV_RECORD_SET_OWNED, p, size - 8, &rec) < 0)
                        goto bad;
                if (l->store) {
                        uint64_t lease = record_u64(p + size - 8, 0);
                        size_t old_size = 0;
                        uint32_t old_owner = 0;
                        StoreFound found;
                        bool existed;

                        r = store_find(l->store, rec.key, rec.key_size, &found, &old_size, NULL, &old_owner);
                        existed = r >= 0;
                        r = apply_set(k, r >= 0 || r == -ENOENT ? &found : NULL, rec.key, rec.key_size, rec.value,
                                      rec.value_size, rec.version, rec.owner, lease);
                        if (r >= 0 && l->quota)
                                r = load_charge(l, existed, old_owner, old_size, &rec);
                }
                break;
        case KV_RECORD_DELETE:
                if (size < 8 || record_u64(p, 0) == 0)
                        goto bad;
                /* Loaded keys are charged as they load: a deleted one is taken back. */
                if (l->store)
                        apply_delete(k, p + 8, size - 8, record_u64(p, 0), l->quota);
                break;
        case KV_RECORD_LEASE_GRANT:
                if (size != 24 || record_u64(p, 0) == 0 || record_u64(p, 1) == 0 || record_u64(p, 1) > LEASE_TTL_MAX ||
                    record_u64(p, 2) > UINT32_MAX)
                        goto bad;
                /* Every lease gets its full ttl from the start, as after a renewal. */
                if (l->store)
                        r = leases_add(k->leases, record_u64(p, 0), (uint32_t) record_u64(p, 2), record_u64(p, 1),
                                       now_usec(), NULL);
                if (r == -EEXIST)
                        goto bad;
                break;
        case KV_RECORD_LEASE_REVOKE:
                if (size != 8)
                        goto bad;
                if (l->store)
                        apply_revoke(k, record_u64(p, 0), l->quota);
                break;
        case KV_RECORD_FLOOR:
                if (size != 16)
                        goto bad;
                if (l->store) {
                        store_raise_floor(l->store, record_u64(p, 0));
                        leases_saw_id(k->leases, record_u64(p, 1) - 1);
                }
                break;
        default:
                goto bad;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to load record %" PRIu64 ": %m", seqnum);
        l->records++;
        l->bytes += RECORD_HEADER_SIZE + size;
        return 0;

bad:
        return log_error_errno(EBADMSG, "Record %" PRIu64 ": bad record of type %" PRIu32 ", size %zu.", seqnum,
                               type, size);
}

/* Appends a record of the small kinds; on a failed log processes the failure. */
static int append_small(KVState *k, uint32_t type, const uint64_t *v, size_t n, const void *tail, size_t tail_size,
                        uint64_t *ret_seqnum) {
        uint64_t le[3];
        int r;

        assert(n <= ELEMENTSOF(le));
        if (k->degraded < 0)
                return k->degraded;
        if (tail_size > RECORD_PAYLOAD_MAX - n * 8)
                return -E2BIG;
        for (size_t i = 0; i < n; i++)
                le[i] = htole64(v[i]);
        /* Encoded straight into the log's buffer, as a Put is. */
        r = wal_appendv(k->wal, type,
                        (const struct iovec[]) {
                                { .iov_base = le, .iov_len = n * 8 },
                                { .iov_base = (void *) tail, .iov_len = tail_size },
                        }, tail_size > 0 ? 2 : 1, ret_seqnum);
        if (r == -EMSGSIZE)
                return -E2BIG;
        if (r < 0 && r != -ENOMEM)
                state_process(k);
        return r;
}

/* Queues the answer to a logged change; failing that, exits, as put_logged() does. */
static int wait_logged(KVState *k, PendingKind kind, uint64_t seqnum, void *waiter, PendingPut **ret_pending) {
        int r;

        r = pending_add_answer(k->pending, 0, seqnum, waiter, ret_pending);
        if (r < 0) {
                log_error_errno(r, "Failed to queue a logged change: %m. Exiting.");
                (void) sd_event_exit(k->event, r);
                return r;
        }
        (*ret_pending)->kind = kind;
        return 1;
}

int kv_state_delete(KVState *k, const void *key, size_t key_size, uint64_t version, void *waiter,
                    PendingPut **ret_pending) {
        StoreFound found = {};
        QuotaMove move = {};
        uint64_t current = 0, floor, seqnum;
        PendingPut *newest;
        bool exists, depends;
        int r = 0;

        assert(k);
        assert(ret_pending);

        if (key_size > STORE_SIZE_MAX)
                return -ENOENT;
        exists = key_view(k, key, key_size, &newest, &current, &move, &found, &floor, &depends);
        if (!exists)
                r = -ENOENT;
        else if (current != version)
                r = -ESTALE;
        else if (version == UINT64_MAX)
                r = -EOVERFLOW;
        if (r < 0) {
                if (!depends || r == -EOVERFLOW)
                        return r;
                r = pending_add_answer(k->pending, r, wal_last_seqnum(k->wal), waiter, ret_pending);
                return r < 0 ? r : 1;
        }

        r = append_small(k, KV_RECORD_DELETE, (const uint64_t[]) { version + 1 }, 1, key, key_size, &seqnum);
        if (r < 0)
                return r;
        k->floor_appended = MAX(k->floor_appended, version + 1);
        (void) quota_charge(k->quota, move.old_uid, -1, -(int64_t) move.old_bytes);

        if (k->sync_mode != WAL_SYNC_ALWAYS) {
                apply_delete(k, key, key_size, version + 1, false);
                return 0;
        }
        r = pending_add_put(k->pending, key, key_size, NULL, 0, version + 1, seqnum, waiter, ret_pending);
        if (r < 0) {
                log_error_errno(r, "Failed to queue a logged Delete: %m. Exiting.");
                (void) sd_event_exit(k->event, r);
                return r;
        }
        (*ret_pending)->kind = PENDING_DELETE;
        (*ret_pending)->quota = move;
        return 1;
}

/* Leases */

static int on_lease_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void lease_timer_update(KVState *k) {
        Lease *l = leases_earliest(k->leases);
        int r;

        if (!l || l->deadline == UINT64_MAX) {
                if (k->lease_timer)
                        (void) sd_event_source_set_enabled(k->lease_timer, SD_EVENT_OFF);
                return;
        }
        if (!k->lease_timer) {
                r = sd_event_add_time(k->event, &k->lease_timer, CLOCK_MONOTONIC, l->deadline,
                                      LEASE_TIMER_ACCURACY_USEC, on_lease_timer, k);
                if (r < 0)
                        log_error_errno(r, "Failed to add the lease timer, leases do not expire: %m");
                return;
        }
        r = sd_event_source_set_time(k->lease_timer, l->deadline);
        if (r >= 0)
                r = sd_event_source_set_enabled(k->lease_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                log_error_errno(r, "Failed to set the lease timer, leases do not expire: %m");
}

/* Writes the end of a lease; its keys go once that is durable. */
static int lease_end(KVState *k, Lease *l, void *waiter, PendingPut **ret_pending) {
        uint64_t seqnum, id = l->id;
        int r;

        r = append_small(k, KV_RECORD_LEASE_REVOKE, &id, 1, NULL, 0, &seqnum);
        if (r < 0)
                return r;
        if (k->sync_mode != WAL_SYNC_ALWAYS) {
                apply_revoke(k, id, true);
                lease_timer_update(k);
                return 0;
        }
        leases_set_ending(k->leases, l, true, 0);
        lease_timer_update(k);
        r = wait_logged(k, PENDING_REVOKE, seqnum, waiter, ret_pending);
        if (r > 0)
                (*ret_pending)->lease = id;
        return r;
}

static int on_lease_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        KVState *k = userdata;
        uint64_t now = now_usec();
        Lease *l;
        int r;

        while ((l = leases_earliest(k->leases)) && l->deadline <= now) {
                PendingPut *pp;

                log_debug("Lease %" PRIu64 " of uid %" PRIu32 " expired.", l->id, l->uid);
                r = lease_end(k, l, NULL, &pp);
                if (r < 0) {
                        log_warning_errno(r, "Failed to write the end of expired lease %" PRIu64 ", trying again: %m",
                                          l->id);
                        leases_set_deadline(k->leases, l, now + LEASE_RETRY_USEC);
                        break;
                }
        }
        lease_timer_update(k);
        return 0;
}

int kv_state_grant(KVState *k, uint64_t ttl, uint32_t uid, void *waiter, PendingPut **ret_pending,
                   uint64_t *ret_lease) {
        uint64_t id, seqnum;
        int r;

        assert(k);
        assert(ret_pending);
        assert(ret_lease);

        if (ttl == 0 || ttl > LEASE_TTL_MAX)
                return -EINVAL;
        if (k->max_leases > 0 && leases_size(k->leases) >= k->max_leases)
                return -EUSERS;
        id = leases_next_id(k->leases);
        if (id == UINT64_MAX)
                return -EUSERS;

        r = append_small(k, KV_RECORD_LEASE_GRANT, (const uint64_t[]) { id, ttl, uid }, 3, NULL, 0, &seqnum);
        if (r < 0)
                return r;
        r = leases_add(k->leases, id, uid, ttl, now_usec(), NULL);
        if (r < 0) {
                log_error_errno(r, "Failed to add a logged lease: %m. Exiting.");
                (void) sd_event_exit(k->event, r);
                return r;
        }
        lease_timer_update(k);
        *ret_lease = id;
        if (k->sync_mode != WAL_SYNC_ALWAYS)
                return 0;
        r = wait_logged(k, PENDING_GRANT, seqnum, waiter, ret_pending);
        if (r > 0) {
                (*ret_pending)->lease = id;
                (*ret_pending)->version = ttl;
        }
        return r;
}

static Lease *lease_of(KVState *k, uint64_t id, uint32_t uid) {
        Lease *l = leases_get(k->leases, id);

        if (!l || l->ending || (uid != 0 && l->uid != uid))
                return NULL;
        return l;
}

int kv_state_keepalive(KVState *k, uint64_t id, uint32_t uid, uint64_t *ret_ttl) {
        Lease *l;

        assert(k);
        l = lease_of(k, id, uid);
        if (!l)
                return -ENXIO;
        leases_renew(k->leases, l, now_usec());
        lease_timer_update(k);
        if (ret_ttl)
                *ret_ttl = l->ttl;
        return 0;
}

int kv_state_revoke(KVState *k, uint64_t id, uint32_t uid, void *waiter, PendingPut **ret_pending) {
        Lease *l;

        assert(k);
        assert(ret_pending);
        l = lease_of(k, id, uid);
        if (!l)
                return -ENXIO;
        return lease_end(k, l, waiter, ret_pending);
}

bool kv_state_lease_exists(KVState *k, uint64_t id) {
        return lease_of(k, id, 0);
}

size_t kv_state_n_leases(const KVState *k) {
        return leases_size(k->leases);
}

static size_t state_n_leases(const KVState *k) {
        return k ? leases_size(k->leases) : 0;
}

uint64_t kv_state_floor(const KVState *k) {
        return store_floor(k->store);
}

void kv_state_set_watch_handler(KVState *k, kv_state_watch_t cb, void *userdata) {
        assert(k);
        k->watch = cb;
        k->watch_userdata = userdata;
}

/* --check and --repair */

int kv_state_check(const char *path, bool repair) {
        static const StateCheckWords words = {
                .daemon = "server",
                .items = "keys",
                .repair_option = "--repair",
        };
        Loader loader = {};

        return state_check(path, repair, load_record, &loader, &loader.records, &words);
}
