/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "macro.h"
#include "record.h"
#include "wal.h"

/* Snapshots: the caller's whole state as a stream of records (the framing of record.h),
 * in "snap-<seqnum, 16 hex digits>.snap", covering the log up to that record. Written
 * under a temporary name, synced, renamed into place, the directory synced; then the log
 * segments it covers and older snapshots are removed. A crash at any point leaves a
 * directory that loads: the newest complete snapshot, then the log after it.
 *
 * snapshot_start() forks: the child, a copy-on-write image of the caller's memory,
 * writes the records through the caller's callback while the caller's event loop goes
 * on; the caller watches the child exit (sd_event_add_child() on snapshot_get_pid(), which
 * takes a pidfd where the kernel has pidfd_open() and SIGCHLD where not, or EPOLLIN on
 * snapshot_get_pidfd()) and then calls snapshot_finish(). The child shares the directory's
 * lock and dies with its parent. One snapshot at a time. */

typedef struct SnapshotWriter SnapshotWriter;
typedef struct Snapshot Snapshot;

/* Writes the state: snapshot_writer_add() for each record. Runs in the child after
 * snapshot_start(); must not touch the Wal. A negative return fails the snapshot. */
typedef int (*snapshot_write_cb)(SnapshotWriter *sw, void *userdata);

/* type < RECORD_TYPE_RESERVED, size <= RECORD_PAYLOAD_MAX. */
int snapshot_writer_add(SnapshotWriter *sw, uint32_t type, const void *payload, size_t size);

typedef enum SnapshotStep {
        SNAPSHOT_STEP_WRITTEN,  /* the records are written and synced, not renamed yet */
        SNAPSHOT_STEP_RENAMED,  /* renamed into place and the directory synced */
} SnapshotStep;

typedef struct SnapshotOptions {
        /* Tests: called in the writer at each step, to simulate a crash there (_exit()). */
        void (*step_hook)(SnapshotStep step, void *userdata);
        void *step_userdata;
} SnapshotOptions;

/* Starts a new log segment (wal_rotate()), then forks a child that writes a snapshot of
 * everything up to wal_last_seqnum(). Works on a failed log too: that is how it is
 * brought back. opts may be NULL. */
int snapshot_start(int dir_fd, const char *dir_path, Wal *wal, snapshot_write_cb cb, void *userdata,
                   const SnapshotOptions *opts, Snapshot **ret);
int snapshot_get_pidfd(Snapshot *s);    /* -1 without pidfd_open() (kernels before 5.3, valgrind 3.19) */
pid_t snapshot_get_pid(Snapshot *s);
uint64_t snapshot_get_seqnum(Snapshot *s);
/* Reaps the child. -EAGAIN while it runs. Once it succeeded: removes older snapshots and
 * the segments the snapshot covers (wal_rotate_after_snapshot()) and returns 0. Else
 * removes its temporary file and returns < 0 (-EIO if it was killed). */
int snapshot_finish(Snapshot *s, Wal *wal);
/* Kills and reaps a child still running. The directory loads as before it started. */
Snapshot *snapshot_free(Snapshot *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Snapshot *, snapshot_free);

/* As snapshot_start() and snapshot_finish(), in this process: it blocks on the disk. For
 * small states, tools and tests. */
int snapshot_write(int dir_fd, const char *dir_path, Wal *wal, snapshot_write_cb cb, void *userdata);

/* Delivers the records of the newest complete snapshot to cb and returns the seqnum it
 * covers in *ret_seqnum (0 without a snapshot): pass it to wal_open(). The snapshot is
 * checked whole before the first record is delivered; a damaged one is passed over for
 * an older one with an error message (the log then proves whether the older one still
 * connects), and -EBADMSG if none is complete. */
int snapshot_load(int dir_fd, const char *dir_path, state_record_cb cb, void *userdata, uint64_t *ret_seqnum);
/* As snapshot_load(), first telling count_cb how many records the snapshot delivers
 * (after its check, before the first record), e.g. to size a table once. */
typedef void (*snapshot_count_cb)(uint64_t records, void *userdata);
int snapshot_load_counted(int dir_fd, const char *dir_path, snapshot_count_cb count_cb, state_record_cb cb,
                          void *userdata, uint64_t *ret_seqnum);
/* Removes the snapshots older than seqnum. */
int snapshot_remove_older(int dir_fd, const char *dir_path, uint64_t seqnum);
