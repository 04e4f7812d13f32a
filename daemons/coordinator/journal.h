/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "job-submit.h"
#include "macro.h"
#include "scheduler.h"

/* The job journal of a job server: what it must not forget when it restarts, in a
 * write-ahead log with snapshots (lib/state) in a locked directory. Every job submitted,
 * every task committed and every job's end is a record (journal-record.h); at start the
 * journal is replayed into the scheduler: ended jobs are listed again, queued and running
 * jobs go on, and a committed task whose files are still as they were is not run again.
 *
 * Durability. The log syncs on a thread of its own (group commit); the event loop never
 * waits for it. What a reply depends on is answered once its record is durable, through
 * job_journal_wait(): SubmitJob's reply (the job will run even if the coordinator dies
 * the next instant) and CancelJob's. A committed task counts as done in the model only
 * once its record is durable (TASK_COMMITTING until then): nobody sees progress that a
 * crash could take back, and a task done is not run again. FinishTask's answer promises
 * the worker nothing, and is given at once, so that the worker does not wait for the sync.
 * Reduce tasks go out once every map is committing (job_maps_in_place()): the log is
 * durable as a prefix, and a reduce's COMMIT follows those of the maps it read, so it is
 * never durable without them; a restart that lost them runs the maps and the reduces
 * again. The last COMMIT of a job is followed at once by its END (the job as it will be
 * once the committing tasks are done), so that one sync makes both durable.
 *
 * Attempts. Every start is a new generation, written and synced before the first task is
 * handed out; attempts of generation G are numbered from G × 65536 + 1. A FinishTask of
 * an attempt handed out before the restart is refused: no connection of the new run
 * holds it (TaskNotAssigned, worker-api.c), and its number is stale anyway (job.h,
 * attempt_base). The task, which the restart made runnable again, runs as a new attempt.
 * Refusing it costs that task's work once, and it can never count an attempt of a job
 * the restart forgot (a submission whose record was lost) for a new job that got the
 * same id. Workers rename a successful attempt's files into place before reporting it,
 * and attempts write the same bytes: a late duplicate that renames over a committed
 * task's files changes their inode, and only makes the task run again after a restart.
 *
 * A failed write or sync of the log ends the coordinator (sd_event_exit()): systemd
 * restarts it, and the replay brings back exactly what was durable. */

typedef struct JobJournal JobJournal;

typedef struct JobJournalOptions {
        const char *directory;  /* created 0700 if missing; its parent must exist */
        size_t keep_jobs;       /* ended jobs kept at start and in snapshots */
        uint64_t compact_size;  /* a snapshot once the log holds this many bytes; 0: the default */
} JobJournalOptions;

#define JOB_JOURNAL_COMPACT_SIZE_DEFAULT (4U << 20)
#define JOB_JOURNAL_ATTEMPT_SHIFT 16

/* Called once the records appended before job_journal_wait() are durable (error 0), or
 * with the error that failed the log. owner is NULL if job_journal_forget() was called. */
typedef void (*JobJournalDone)(void *owner, void *userdata, int error);

/* Locks the directory (-EBUSY if another coordinator holds it), replays it into the
 * scheduler, syncs a new generation and watches the log from event. Logs its failures;
 * -EBADMSG for damage in the middle of the log. */
int job_journal_open(sd_event *event, Scheduler *scheduler, JobSubmitter *submitter,
                     const JobJournalOptions *opts, JobJournal **ret);
/* Syncs what was appended (blocking: for shutdown), then frees. */
JobJournal *job_journal_free(JobJournal *jj);
DEFINE_TRIVIAL_CLEANUP_FUNC(JobJournal *, job_journal_free);

/* cb(owner, userdata, 0) once every record appended so far is durable: later, or at
 * once when there is nothing to wait for. */
int job_journal_wait(JobJournal *jj, void *owner, JobJournalDone cb, void *userdata);
/* For shutdown: syncs what was appended (blocking) and answers the waiters. */
void job_journal_flush(JobJournal *jj);
/* owner went away (a closed connection): its waiters are called with owner NULL. */
void job_journal_forget(JobJournal *jj, void *owner);

/* Appends the COMMIT record of an attempt whose files were just renamed into place, with
 * its counters, and marks the task TASK_COMMITTING; job_finish() completes it once the
 * record is durable. */
int job_journal_commit_task(JobJournal *jj, Job *j, Task *t, unsigned attempt, const JobCounters *counters);

unsigned job_journal_generation(const JobJournal *jj);

/* Offline, for --check-journal and --repair-journal: reports on stdout. 0 if the
 * coordinator can start from it (a torn tail is cut at the next start), -EBADMSG if it
 * is damaged; with repair, cuts the log at the damage (keeping the cut bytes beside it)
 * and returns 0 once it loads. */
int job_journal_check(const char *directory, bool repair);
