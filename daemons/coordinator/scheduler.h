/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "job.h"
#include "list.h"
#include "macro.h"
#include "observer.h"

/* Which worker runs what: the jobs in submission order, the connected workers and the
 * line of those waiting for a task, task deadlines, and the end of a lab-mode run. The
 * oldest job that can use a worker gets it, so a newer job's maps may run while an
 * older job waits for its last map before its reduces.
 *
 * No sockets and no JSON: the owner passes a worker's transport as an opaque pointer,
 * hears of assignments through SchedulerCallbacks, and reads the time through a clock
 * it may replace (tests drive the scheduler with a fake one). Every change to a job or
 * to the workers is told to the subscribed observers. */

typedef struct Scheduler Scheduler;
typedef struct Worker Worker;

struct Worker {
        void *userdata;    /* the owner's: the worker's connection */
        char *description; /* for log messages */
        uid_t uid;         /* it runs as: it gets only tasks of jobs it may run (access.h) */
        bool waiting;      /* in the line of workers waiting for a task */
        unsigned takes;    /* the optional task fields it said it takes (worker-api.c) */
        /* The attempt last handed to it, the only one it may report finished. */
        struct {
                char job[64];
                TaskKind kind;
                unsigned index, attempt;
        } assigned;
        LIST_FIELDS(Worker, workers);
        LIST_FIELDS(Worker, waiting);
};

typedef struct SchedulerCallbacks {
        /* A waiting worker gets task t of job j, or with j NULL the word to exit (lab
         * mode). A callback that cannot tell the worker gives the task back with
         * job_release_owner() and may close the worker's connection, which ends in
         * scheduler_remove_worker(): the scheduler does not touch w afterwards. */
        void (*assign)(Worker *w, Job *j, Task *t, void *userdata);
        /* The earliest deadline of a running task (on CLOCK_MONOTONIC), or while a worker
         * waits the time a task becomes old enough for a backup, or UINT64_MAX for none:
         * call scheduler_expire() then. */
        void (*wake_at)(uint64_t usec, void *userdata);
        /* Lab mode: every job has ended; status 0 if the last one to end is done, else 1. */
        void (*finished)(int status, void *userdata);
} SchedulerCallbacks;

/* Microseconds on clock (CLOCK_MONOTONIC for deadlines, CLOCK_REALTIME for job times). */
typedef uint64_t (*SchedulerClock)(clockid_t clock, void *userdata);

/* Read-only outside scheduler.c. */
struct Scheduler {
        Job **jobs;      /* in submission order */
        size_t n_jobs;
        Worker *workers; /* every connected worker */
        Worker *waiting; /* those whose request for a task is pending, in arrival order */
        Observer *observers;
        const SchedulerCallbacks *callbacks;
        void *userdata;
        SchedulerClock clock;
        void *clock_userdata;
        bool exit_when_done; /* lab mode: workers are told to exit once every job has ended */
        size_t max_ended_files_size; /* SCHEDULER_MAX_ENDED_FILES_SIZE unless changed */
        uid_t service_uid;   /* the coordinator's own: its workers also run root's jobs */
        size_t max_ended_jobs; /* ended jobs kept; SCHEDULER_MAX_ENDED_JOBS unless set */
};

/* callbacks must outlive the scheduler. */
int scheduler_new(const SchedulerCallbacks *callbacks, void *userdata, Scheduler **ret);
Scheduler *scheduler_free(Scheduler *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Scheduler *, scheduler_free);

void scheduler_set_clock(Scheduler *s, SchedulerClock clock, void *userdata);
void scheduler_set_exit_when_done(Scheduler *s, bool b);

int scheduler_subscribe(Scheduler *s, ObserverFunc func, void *userdata);
void scheduler_unsubscribe(Scheduler *s, ObserverFunc func);

/* Takes the job and starts handing out its tasks (after those of older jobs). Ended jobs
 * beyond the newest max_ended_jobs (SCHEDULER_MAX_ENDED_JOBS by default) are forgotten; of
 * the input file names of ended jobs, only the newest lists that fit in
 * max_ended_files_size bytes are kept. */
#define SCHEDULER_MAX_ENDED_JOBS 100
#define SCHEDULER_MAX_ENDED_FILES_SIZE (32U * 1024U * 1024U)
void scheduler_set_max_ended_jobs(Scheduler *s, size_t n);
/* Drops the file lists of ended jobs beyond max_ended_files_size, oldest first (done
 * whenever a job ends; for jobs that were added ended, from a journal, call it). */
void scheduler_trim_ended_files(Scheduler *s);
int scheduler_add_job(Scheduler *s, Job *job);
Job *scheduler_find_job(Scheduler *s, const char *id);
/* Ends a job that has not ended; -ESTALE if it had. */
int scheduler_cancel_job(Scheduler *s, Job *j);

/* A worker running as uid connected; userdata is the owner's (its connection). */
int scheduler_add_worker(Scheduler *s, const char *description, uid_t uid, void *userdata, Worker **ret);
/* A worker went away: its running tasks are handed out again at once. Frees w. */
void scheduler_remove_worker(Scheduler *s, Worker *w);
unsigned scheduler_n_workers(Scheduler *s);
/* Whether a connected worker may run the job's tasks; a job without one waits. */
bool scheduler_job_has_worker(Scheduler *s, const Job *j);
/* Whether attempt of task t of job j is the one last handed to w, which alone may report
 * it finished. */
bool scheduler_worker_holds(const Worker *w, const Job *j, const Task *t, unsigned attempt);

/* The worker waits in line for a task; the answer comes through callbacks->assign, now
 * or once there is a task for it. */
void scheduler_request_task(Scheduler *s, Worker *w);
/* A worker's report on an attempt: ok means its output was committed (only an attempt
 * for which job_may_complete() holds may be). Returns what job_finish() returns; when the
 * attempt completes the task, its counters (NULL: none) join the job's. */
int scheduler_finish_task(Scheduler *s, Job *j, Task *t, unsigned attempt, bool ok, const char *error,
                          const JobCounters *counters);
/* Takes back the running tasks past their deadline and hands them out again. */
void scheduler_expire(Scheduler *s);
/* The earliest deadline of a running task, or UINT64_MAX. */
uint64_t scheduler_next_deadline(Scheduler *s);
/* Hands tasks to the waiting workers, in arrival order, while there are tasks to hand
 * out (in lab mode, "exit" once every job has ended). */
void scheduler_dispatch(Scheduler *s);
