/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "macro.h"
#include "record.h"

/* A write-ahead log: records numbered 1, 2, 3, ... (sequence numbers) appended to
 * segment files "log-<first seqnum, 16 hex digits>.wal" in a state directory (see
 * record.h for the format).
 *
 * Built for an event loop that never waits on the disk. wal_append() copies a record into
 * memory; wal_commit() writes what was appended with write(2) and, as the sync mode asks,
 * hands a sync to a thread of the log's own. That thread runs fdatasync() (and fsync() of
 * the directory when a segment was created) and then reports the highest sequence number
 * now durable through an eventfd (wal_get_event_fd(): watch it for EPOLLIN, then call
 * wal_process()). Appends go on while a sync runs, and the next sync covers all of them:
 * group commit.
 *
 * Sync modes: "always" (the caller replies once wal_process() reports its record
 * durable), "interval:MS" (the thread syncs at most every MS milliseconds; the caller
 * replies at once), "none" (the kernel writes back when it likes).
 *
 * A failed write or sync (EIO, ENOSPC, ...) fails the log: the kernel may have dropped
 * the pages it could not write, so a later fsync() that succeeds proves nothing. From
 * then on appends return the error, nothing more becomes durable, and only a snapshot
 * of the caller's state brings the log back: wal_rotate_after_snapshot(). In the
 * "always" mode the thread then cuts the segments back to their durable bytes, with
 * ftruncate() and fsync(): the records that were not durable may be on the disk all the
 * same, and a replay after a crash must not bring back what the caller answered as not
 * written. wal_undurable_cut() tells when that cut is durable; if it fails (the disk
 * refuses even that), only a snapshot covering those records settles them.
 *
 * In the "none" mode a finished segment is closed without a sync; wal_sync() syncs the
 * current segment only.
 *
 * At open, a torn tail (a last record cut short or failing its checksum, with no valid
 * record after it, as a crash leaves it) is truncated away with a warning; damage
 * followed by valid records refuses the open with -EBADMSG and a message naming the file
 * and byte offset. wal_check() reports, wal_repair() cuts at the damage. */

typedef struct Wal Wal;

typedef enum WalSyncMode {
        WAL_SYNC_ALWAYS,
        WAL_SYNC_INTERVAL,
        WAL_SYNC_NONE,
} WalSyncMode;

/* The system calls the log makes on its files, replaceable by tests to count them or
 * make them fail. The write hook runs in the caller's thread, the sync hooks in the
 * log's thread. Each returns as the system call would, but -errno instead of -1. */
typedef struct WalIO {
        ssize_t (*write)(int fd, const void *buf, size_t size, void *userdata);
        int (*fdatasync)(int fd, void *userdata);
        int (*fsync_dir)(int dir_fd, void *userdata);
        int (*truncate)(int fd, uint64_t size, void *userdata); /* ftruncate() and fsync() */
        void *userdata;
} WalIO;

typedef struct WalOptions {
        WalSyncMode sync_mode;
        uint64_t sync_interval_usec;    /* WAL_SYNC_INTERVAL */
        uint64_t segment_size_max;      /* a new segment starts past this size; 0: 64 MiB */
        const WalIO *io;                /* NULL: the real system calls */
} WalOptions;

typedef struct WalStats {
        uint64_t appends;       /* records appended since open */
        uint64_t writes;        /* write(2) calls */
        uint64_t syncs;         /* completed sync rounds of the thread */
        uint64_t bytes;         /* written since open */
        uint64_t segments;      /* created since open */
} WalStats;

/* "always", "none", "interval:MS" (MS > 0 milliseconds). */
int wal_sync_mode_from_string(const char *s, WalSyncMode *ret_mode, uint64_t *ret_interval_usec);
const char *wal_sync_mode_to_string(WalSyncMode mode);

/* Replays the records with sequence numbers above after_seqnum (those a snapshot does not
 * cover: 0 without one) to cb in order, truncates a torn tail, removes segments the
 * snapshot covers, starts a new segment and the sync thread. dir_fd is duplicated;
 * dir_path is for messages. */
int wal_open(int dir_fd, const char *dir_path, uint64_t after_seqnum, const WalOptions *opts, state_record_cb cb,
             void *userdata, Wal **ret);
/* Stops the thread and closes the files. Does not sync: call wal_sync() first to keep
 * what was appended in the "interval" and "none" modes. */
Wal *wal_free(Wal *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(Wal *, wal_free);

/* Appends a record (type < RECORD_TYPE_RESERVED, size <= RECORD_PAYLOAD_MAX) to the write
 * buffer and returns its sequence number. Never blocks on the disk (a buffer past 1 MiB is
 * written at once; if that write fails, the record is appended all the same and the log
 * fails, as wal_commit() and wal_process() report). Returns the log's error once it has
 * failed: then nothing is appended. */
int wal_append(Wal *w, uint32_t type, const void *payload, size_t size, uint64_t *ret_seqnum);
/* The same with the payload gathered from n pieces, copied once, into the write buffer. */
int wal_appendv(Wal *w, uint32_t type, const struct iovec *iov, size_t n, uint64_t *ret_seqnum);
/* Writes the buffered records and, in the "always" and "interval" modes, asks the thread
 * for a sync of everything written. Call it once per batch of appends (e.g. once per
 * event loop iteration). */
int wal_commit(Wal *w);
/* As wal_commit(), asking for a sync now whatever the mode. */
int wal_request_sync(Wal *w);
/* Blocks until everything appended so far is durable. For shutdown, tools and tests. */
int wal_sync(Wal *w);

/* Readable when a sync completed or the log failed. */
int wal_get_event_fd(Wal *w);
/* Empties the eventfd, sets *ret_durable to the highest durable sequence number, and
 * returns the log's error (then records up to *ret_durable are still durable). */
int wal_process(Wal *w, uint64_t *ret_durable);

uint64_t wal_last_seqnum(Wal *w);       /* of the last record appended; 0 if none */
uint64_t wal_durable_seqnum(Wal *w);
int wal_error(Wal *w);                  /* 0, or the -errno that failed the log */
/* On a failed log in the "always" mode: whether the records above wal_durable_seqnum() are
 * cut from its files, durably, so that no replay can bring them back. */
bool wal_undurable_cut(Wal *w);
void wal_get_stats(Wal *w, WalStats *ret);

/* Writes the buffer and starts a new segment at the next sequence number, so that a
 * snapshot of everything up to wal_last_seqnum() can later remove all earlier
 * segments. Does nothing when the current segment holds no record. */
int wal_rotate(Wal *w);
/* To be called once a snapshot covering all records up to seqnum is durable: removes the
 * segments it covers; on a failed log whose every record it covers (seqnum >=
 * wal_last_seqnum(), else -ESTALE), drops the failed segment without syncing it again,
 * starts a new one and clears the error. */
int wal_rotate_after_snapshot(Wal *w, uint64_t seqnum);

typedef struct WalCheckReport {
        char *file;             /* the damaged or torn segment, NULL if none */
        uint64_t offset;        /* of the first byte that is not a valid record */
        uint64_t records;       /* valid records before it (all, when clean) */
        uint64_t last_seqnum;   /* of the last valid record */
        bool torn;              /* a torn tail (truncated at open), not damage */
        char *cut_file;         /* wal_repair(): where the cut bytes were kept */
} WalCheckReport;

void wal_check_report_done(WalCheckReport *r);

/* Reads the log without changing it. 0 if it is clean or only torn, -EBADMSG if damaged
 * (the report says where), -EPROTONOSUPPORT for another format version. */
int wal_check(int dir_fd, const char *dir_path, uint64_t after_seqnum, WalCheckReport *ret);
/* Truncates the log at its first damage as wal_check() finds it. The bytes cut from the
 * damaged segment are kept in "<segment>.cut-<offset>" beside it; later segments, now
 * behind a gap, are renamed to "<segment>.cut-0". */
int wal_repair(int dir_fd, const char *dir_path, uint64_t after_seqnum, WalCheckReport *ret);
