/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "job-counters.h"

/* One MapReduce job: its map and reduce tasks and their states. The model of the
 * coordinator; it knows nothing of sockets or JSON. Workers are opaque owner pointers. */

typedef enum TaskKind {
        TASK_MAP,
        TASK_REDUCE,
        _TASK_KIND_MAX,
} TaskKind;

typedef enum TaskState {
        TASK_IDLE,
        TASK_RUNNING,
        TASK_COMMITTING, /* output in place, its journal record not yet durable */
        TASK_DONE,
} TaskState;

typedef enum JobState {
        JOB_MAPPING,
        JOB_REDUCING,
        JOB_DONE,
        JOB_FAILED,
        JOB_CANCELLED,
} JobState;

/* A running attempt of a task. */
typedef struct TaskRun {
        void *owner;       /* the worker running it; NULL in an unused slot */
        unsigned attempt;
        uint64_t start;    /* CLOCK_MONOTONIC, when it was handed out */
        uint64_t deadline; /* when it is taken back */
} TaskRun;

/* Length of a map task that reads its whole file. */
#define TASK_WHOLE_FILE UINT64_MAX

typedef struct Task {
        TaskKind kind;
        unsigned index;
        TaskState state;
        unsigned attempt;  /* of the latest assignment; attempts are numbered from 1 */
        unsigned failures; /* attempts that reported an error */
        /* A map task's split: the lines of files[file] whose first byte lies in
         * [offset, offset + length), or the whole file (length TASK_WHOLE_FILE). */
        unsigned file;
        uint64_t offset, length;
        /* While TASK_RUNNING: runs[0] is its first running attempt, runs[1] a backup (a
         * second attempt of the same task on another worker; owner NULL when none runs). */
        TaskRun runs[2];
        unsigned backup_attempt; /* the attempt that was its backup; 0: none (one per task at most) */
        uint64_t won_start;      /* when the attempt that completed it started (0: unknown) */
        uint64_t duration;       /* how long that attempt ran, µs; 0: unknown (an earlier run's) */
} Task;

#define JOB_ERROR_MAX 1024

typedef struct Job {
        char *id;
        /* Who submitted it (SO_PEERCRED on Varlink, the sender's credentials on D-Bus):
         * its tasks run only on workers of this uid, and only it and root control the job
         * (access.h). job_new() makes root the owner; submitters set it. */
        uid_t owner_uid;
        gid_t owner_gid;
        char *app;     /* NULL when workers bring their own */
        char *workdir; /* absolute */
        char **files;  /* input files, exactly as given; NULL once dropped (job_drop_files()) */
        unsigned nfiles;
        size_t files_size; /* the memory files takes, names and pointers */
        /* The files' sizes as the submitter saw them (NULL: not known, one map task per
         * file), and the bytes per map task they were cut into (0: one task per file). */
        uint64_t *sizes;
        uint64_t split_size;
        char *mapper, *reducer; /* a streaming job's commands; NULL for a plugin's */
        bool backup_tasks;      /* idle workers may get backups of long-running tasks */
        bool combine;           /* map tasks run the app's combiner (job_new(): true) */
        unsigned nmap, nreduce;
        Task *tasks;   /* nmap map tasks, then nreduce reduce tasks */
        unsigned done[_TASK_KIND_MAX];
        unsigned committing[_TASK_KIND_MAX]; /* tasks in TASK_COMMITTING */
        JobState state;
        char *error;   /* why the job failed; a worker's reason in at most JOB_ERROR_MAX bytes */
        uint64_t timeout;
        unsigned max_failures;
        /* Attempts are numbered above it: one at or below was handed out by an earlier run
         * of a coordinator that keeps a journal, and is stale (journal.c sets it). */
        unsigned attempt_base;
        /* CLOCK_REALTIME µs; 0 while it has not happened. The model does not read clocks:
         * the coordinator stamps them. */
        uint64_t submit_time, start_time, finish_time;
        /* What its tasks read and wrote (from their committed attempts) and what happened
         * to its attempts. */
        JobCounters counters;
        /* The median run time of its finished tasks of each kind, and over how many tasks
         * it was taken (job_median_duration()). */
        uint64_t median[_TASK_KIND_MAX];
        unsigned median_n[_TASK_KIND_MAX];
} Job;

int job_new(const char *id, const char *app, const char *workdir, char *const *files, unsigned nfiles,
            unsigned nreduce, uint64_t timeout, Job **ret);
Job *job_free(Job *j);

/* How many map tasks files of these sizes make in splits of split_size bytes: one per file
 * for split_size 0 and for an empty file, else one per split_size bytes begun; saturates
 * at UINT64_MAX. */
uint64_t job_count_splits(const uint64_t *sizes, unsigned nfiles, uint64_t split_size);
/* Cuts the map tasks of a job that has not started into splits of its files, of sizes
 * (nfiles of them; NULL: one task per file) and split_size; -E2BIG beyond max_maps tasks.
 * A file that is one split is read whole. */
int job_split(Job *j, const uint64_t *sizes, uint64_t split_size, unsigned max_maps);
/* A streaming job's commands (both, or neither). */
int job_set_commands(Job *j, const char *mapper, const char *reducer);

/* The next task to run, assigned to owner: 1 and *ret set; 0 when none is runnable now
 * (everything is running, or the reduce phase waits for the maps); -ESHUTDOWN when the job
 * has ended. Reduce tasks are handed out once every map's output is in place, its task
 * done or committing (job_maps_in_place()): a reduce may read the files of a map whose
 * COMMIT record is still on its way to the disk, as that record precedes the reduce's
 * own in the journal (journal.h). */
int job_assign(Job *j, void *owner, uint64_t now, Task **ret);

/* Whether every map task is done or committing: its files are in place. */
bool job_maps_in_place(const Job *j);
/* Whether every task is done or committing: once the records are durable, the job is done. */
bool job_all_in_place(const Job *j);

/* Backup tasks. Once a job that has them enabled has no task of its phase left to hand
 * out, a backup of the running task that started first goes to owner, if it runs on
 * another worker, has had no backup, and has run longer than job_backup_after(): 1 and
 * *ret set, else 0. Both attempts then run; the first to finish completes the task. */
#define JOB_BACKUP_MIN_USEC (1000ULL * 1000ULL)
int job_assign_backup(Job *j, void *owner, uint64_t now, Task **ret);
/* How long a task of the job's phase must have run for a backup: twice the median time of
 * its finished tasks of that kind; with none finished yet (a job of one map or one
 * reduce), twice that of the other kind, or with none of either the job's task time-out
 * divided by JOB_BACKUP_TIMEOUT_SHARE; at least JOB_BACKUP_MIN_USEC. UINT64_MAX when
 * backups are off. */
#define JOB_BACKUP_TIMEOUT_SHARE 4
uint64_t job_backup_after(Job *j);
/* When the next backup could be handed out (CLOCK_MONOTONIC), or UINT64_MAX. */
uint64_t job_next_backup(Job *j);
/* The median run time of the finished tasks of a kind whose time is known, 0 if none. */
uint64_t job_median_duration(Job *j, TaskKind kind);
/* The running attempt with this number, or NULL. */
TaskRun *task_find_run(Task *t, unsigned attempt);

Task *job_find_task(Job *j, TaskKind kind, unsigned index);

/* A finish report. Returns 1 when this attempt is the one that completes the task (its
 * output must be committed), 0 when it is stale (another attempt was or will be accepted;
 * its output must be discarded). A failed attempt makes the task runnable again; after
 * max_failures the job fails. */
/* Whether a successful finish of this attempt would complete the task: the job runs, the
 * task is not done yet, and the attempt was handed out. */
bool job_may_complete(const Job *j, const Task *t, unsigned attempt);
int job_finish(Job *j, Task *t, unsigned attempt, bool ok, const char *error);
/* A successful attempt's output is in place and its journal record on its way to the
 * disk: no other attempt may complete the task meanwhile, and job_finish() with ok then
 * completes it (unless the job ended in between). */
void job_begin_commit(Job *j, Task *t, unsigned attempt);
/* Marks a task done, as a successful job_finish() does (replaying a journal). */
void job_mark_done(Job *j, Task *t);
/* Numbers this run's attempts above base (see attempt_base). */
void job_set_attempt_base(Job *j, unsigned base);

/* Makes the tasks of a vanished worker runnable again; returns how many. */
unsigned job_release_owner(Job *j, void *owner);
/* Takes back running tasks past their deadline; returns how many. */
unsigned job_expire(Job *j, uint64_t now);
/* The earliest deadline of a running task, or UINT64_MAX. */
uint64_t job_next_deadline(Job *j);

static inline bool job_ended(const Job *j) {
        return j->state == JOB_DONE || j->state == JOB_FAILED || j->state == JOB_CANCELLED;
}

/* Ends a job that has not ended: running attempts are abandoned (their output will be
 * discarded when they report). Returns -ESTALE if it had ended already. */
int job_cancel(Job *j);

/* Whether any attempt of task t runs on owner. */
bool task_runs_on(const Task *t, const void *owner);

/* Forgets the input file names of an ended job, to keep the memory of ended jobs
 * bounded; only map tasks need them. */
void job_drop_files(Job *j);

/* The path of reduce task r's output file, mr-out-<r> in the job's directory (malloc'd). */
int job_output_path(const Job *j, unsigned r, char **ret);

/* Tasks done over all tasks, 0..1. */
double job_progress(const Job *j);

const char *task_kind_to_string(TaskKind k);
int task_kind_from_string(const char *s);
const char *job_state_to_string(JobState s);
/* The state as clients see it: "queued" for a job no worker has started yet. */
const char *job_display_state(const Job *j);
