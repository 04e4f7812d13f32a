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
        Quota *quota;           /* charged as keys load, not in a walk of the store after */
        uint64_t records, bytes;
} Loader;

/* The snapshot's keys are distinct: the table gets its size once, before them. */
static void load_count(uint64_t records, void *userdata) {
        Loader *l = userdata;

        if (l->store)
                store_reserve(l->store, (size_t) MIN(records, (uint64_t) SIZE_MAX));
}

static int load_record(uint64_t seqnum, uint32_t type, const void *payload, size_t size, void *userdata) {
        Loader *l = userdata;
        StoreFound found;
        KeyRecord rec;
        size_t old_size;
        uint32_t old_owner;
        bool existed;
        int r;

        if (record_decode(type, payload, size, &rec) < 0)
                return log_error_errno(EBADMSG, "Record %" PRIu64 ": unknown type %" PRIu32 ", or bad size %zu, "
                                       "key size or version.", seqnum, type, size);

        l->records++;
        l->bytes += RECORD_HEADER_SIZE + size;
        if (!l->store)
                return 0;
        r = store_find(l->store, rec.key, rec.key_size, &found, &old_size, NULL, &old_owner);
        existed = r >= 0;
        if (r >= 0 || r == -ENOENT)
                r = store_set_found(l->store, &found, rec.key, rec.key_size, rec.value, rec.value_size, rec.version,
                                    rec.owner);
        if (r >= 0 && l->quota) {
                if (existed)
                        r = quota_charge(l->quota, old_owner, -1, -(int64_t) (rec.key_size + old_size));
                if (r >= 0)
                        r = quota_charge(l->quota, rec.owner, 1, (int64_t) (rec.key_size + rec.value_size));
        }
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
} SnapshotContext;

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
        return snapshot_add(c, pending_key(pp), pp->key_size, pending_value(pp), pp->value_size, pp->version,
                            pp->quota.uid);
}

static int snapshot_store_entry(const void *key, size_t key_size, const void *value, size_t value_size,
                                uint64_t version, uint32_t owner, void *userdata) {
        SnapshotContext *c = userdata;
        const PendingPut *pp = pending_find(c->k->pending, key, key_size);

        if (pp)
                return snapshot_pending_add(c, pp);
        return snapshot_add(c, key, key_size, value, value_size, version, owner);
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

        r = store_foreach(c.k->store, snapshot_store_entry, &c);
        if (r >= 0)
                r = pending_foreach_newest(c.k->pending, snapshot_pending_entry, &c);
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
                k->put_done(pp->waiter, result, k->put_done_userdata);
        free(pp);
}

/* Applies and answers the waiting Puts whose records are durable. */
static void answer_durable(KVState *k, uint64_t durable) {
        PendingPut *pp;

        while ((pp = pending_pop(k->pending, durable))) {
                int r = pp->result;

                if (pp->version > 0) {
                        r = store_set(k->store, pending_key(pp), pp->key_size, pending_value(pp), pp->value_size,
                                      pp->version, pp->quota.uid);
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

/* The log failed: the Puts still waiting were not made durable. Once the log has cut
 * their records from its files, so that no replay can bring them back, they are answered
 * with the error and dropped from the overlay, so nothing of them stays visible. Until
 * then they wait: a snapshot that holds them makes them durable after all. */
static void fail_pending(KVState *k, int error) {
        PendingPut *pp;

        if (k->sync_mode == WAL_SYNC_ALWAYS && !wal_undurable_cut(k->wal))
                return;
        while ((pp = pending_pop_any(k->pending))) {
                if (pp->version > 0)
                        quota_move(k->quota, &pp->quota, true);
                answer(k, pp, error);
        }
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

static int check_version(bool exists, uint64_t current, uint64_t version, uint64_t *ret_new) {
        if (!exists) {
                if (version != 0)
                        return -ENOENT;
                *ret_new = 1;
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
                      uint64_t version, uint64_t seqnum, const QuotaMove *move, const StoreFound *found,
                      void *waiter, PendingPut **ret_pending) {
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
                quota_move(k->quota, move, false);
                return 1;
        }

        r = store_set_found(k->store, found, key, key_size, value, value_size, version, move->uid);
        if (r < 0) {
                /* Logged but not in memory: a restart, which replays it, makes them agree. */
                log_error_errno(r, "Failed to apply a logged Put: %m. Exiting.");
                (void) sd_event_exit(k->event, r);
                return r;
        }
        quota_move(k->quota, move, false);
        return 0;
}

int kv_state_put(KVState *k, const void *key, size_t key_size, const void *value, size_t value_size,
                 uint64_t version, uint32_t uid, void *waiter, PendingPut **ret_pending) {
        QuotaMove move = { .uid = uid, .bytes = key_size + value_size };
        uint64_t current = 0, new_version = 0, seqnum;
        uint8_t header[KV_RECORD_OWNED_HEADER];
        StoreFound found = {};
        PendingPut *newest;
        bool exists;
        int r;

        assert(k);
        assert(ret_pending);

        if (key_size > STORE_SIZE_MAX || value_size > STORE_SIZE_MAX)
                return -E2BIG;

        exists = put_lookup(k, key, key_size, &newest, &current, &move, &found);

        /* A check that fails writes nothing, and needs no log: answered also when degraded. */
        r = check_version(exists, current, version, &new_version);
        if (r < 0) {
                if (!newest || r == -EOVERFLOW)
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

        /* Encoded straight into the log's buffer, without a copy of the record first. */
        record_encode_header(header, key_size, new_version, uid);
        r = wal_appendv(k->wal, KV_RECORD_SET_OWNED,
                        (const struct iovec[]) {
                                { .iov_base = header, .iov_len = sizeof(header) },
                                { .iov_base = (void *) key, .iov_len = key_size },
                                { .iov_base = (void *) value, .iov_len = value_size },
                        }, 3, &seqnum);
        if (r == -ENOMEM)
                return r;
        if (r == -EMSGSIZE)
                return -E2BIG;
        if (r < 0) {
                state_process(k);
                return r;
        }
        return put_logged(k, key, key_size, value, value_size, new_version, seqnum, &move, &found, waiter,
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
        Loader loader = { .store = k->store, .quota = k->quota };
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

        r = pending_new(&k->pending);
        if (r >= 0)
                r = quota_new(&opts->quota, &k->quota);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate: %m");

        r = kv_state_load(k, opts, &after);
        if (r < 0)
                return r;
        k->committed = wal_last_seqnum(k->wal);

        r = sd_event_add_io(event, &k->wal_source, wal_get_event_fd(k->wal), EPOLLIN, on_wal_event, k);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the log: %m");
        /* Runs after every dispatch of another source, e.g. the one that reads every ready
         * connection: one write(2) and one sync request for all their Puts. */
        r = sd_event_add_post(event, &k->commit_source, on_commit, k);
        if (r < 0)
                return log_error_errno(r, "Failed to add the commit source: %m");

        log_info("Loaded %zu keys from %s (snapshot of record %" PRIu64 ", %" PRIu64 " log records) in %" PRIu64
                 " ms; sync mode %s.",
                 store_n_keys(store), state_dir_path(k->dir), after, wal_last_seqnum(k->wal) - after,
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
        wal_free(k->wal);
        pending_free(k->pending);
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
