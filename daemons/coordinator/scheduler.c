/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <unistd.h>

#include "access.h"
#include "log.h"
#include "scheduler.h"
#include "time-util.h"

static uint64_t system_clock(clockid_t clock, void *userdata) {
        return clock_usec(clock);
}

static uint64_t scheduler_now(Scheduler *s, clockid_t clock) {
        return s->clock(clock, s->clock_userdata);
}

int scheduler_new(const SchedulerCallbacks *callbacks, void *userdata, Scheduler **ret) {
        Scheduler *s;

        assert(callbacks);
        assert(ret);

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->callbacks = callbacks;
        s->userdata = userdata;
        s->clock = system_clock;
        s->max_ended_files_size = SCHEDULER_MAX_ENDED_FILES_SIZE;
        s->service_uid = geteuid();
        s->max_ended_jobs = SCHEDULER_MAX_ENDED_JOBS;
        *ret = s;
        return 0;
}

static Worker *worker_free(Worker *w) {
        if (!w)
                return NULL;
        free(w->description);
        free(w);
        return NULL;
}

Scheduler *scheduler_free(Scheduler *s) {
        if (!s)
                return NULL;
        while (s->workers) {
                Worker *w = s->workers;
                LIST_REMOVE(workers, s->workers, w);
                worker_free(w);
        }
        for (size_t i = 0; i < s->n_jobs; i++)
                job_free(s->jobs[i]);
        free(s->jobs);
        observer_free_all(&s->observers);
        free(s);
        return NULL;
}

void scheduler_set_clock(Scheduler *s, SchedulerClock clock, void *userdata) {
        s->clock = clock ?: system_clock;
        s->clock_userdata = userdata;
}

void scheduler_set_max_ended_jobs(Scheduler *s, size_t n) {
        s->max_ended_jobs = n;
}

void scheduler_set_exit_when_done(Scheduler *s, bool b) {
        s->exit_when_done = b;
}

int scheduler_subscribe(Scheduler *s, ObserverFunc func, void *userdata) {
        return observer_subscribe(&s->observers, func, userdata);
}

void scheduler_unsubscribe(Scheduler *s, ObserverFunc func) {
        observer_unsubscribe(&s->observers, func);
}

/* The line of waiting workers. */

static void waiting_push(Scheduler *s, Worker *w) {
        assert(!w->waiting); /* a connection has one call pending at most */
        LIST_APPEND(waiting, s->waiting, w);
        w->waiting = true;
}

static void waiting_remove(Scheduler *s, Worker *w) {
        if (!w->waiting)
                return;
        LIST_REMOVE(waiting, s->waiting, w);
        w->waiting = false;
}

/* Jobs. */

static bool all_jobs_ended(Scheduler *s) {
        for (size_t i = 0; i < s->n_jobs; i++)
                if (!job_ended(s->jobs[i]))
                        return false;
        return true;
}

static void scheduler_job_ended(Scheduler *s, Job *j) {
        double secs = (double) (j->finish_time - (j->start_time ?: j->submit_time)) / USEC_PER_SEC;

        if (j->state == JOB_DONE)
                log_info("Job %s done: %u map and %u reduce tasks in %.3f s.", j->id, j->nmap, j->nreduce, secs);
        else if (j->state == JOB_CANCELLED)
                log_info("Job %s cancelled after %.3f s.", j->id, secs);
        else
                log_error("Job %s failed after %.3f s: %s", j->id, secs, j->error ?: "unknown error");

        if (s->exit_when_done && all_jobs_ended(s) && s->callbacks->finished)
                s->callbacks->finished(j->state == JOB_DONE ? 0 : 1, s->userdata);
}

/* Keeps the file lists of the newest ended jobs that fit in max_ended_files_size bytes
 * together, and drops the others. */
void scheduler_trim_ended_files(Scheduler *s) {
        size_t kept = 0;

        for (size_t i = s->n_jobs; i > 0; i--) {
                Job *j = s->jobs[i - 1];

                if (!job_ended(j) || !j->files)
                        continue;
                if (j->files_size <= s->max_ended_files_size - kept)
                        kept += j->files_size;
                else
                        job_drop_files(j);
        }
}

/* Stamps the end of a job that just ended, and tells the observers that j changed. */
static void scheduler_job_changed(Scheduler *s, Job *j) {
        bool ended = false;

        if (job_ended(j) && j->finish_time == 0) {
                j->finish_time = scheduler_now(s, CLOCK_REALTIME);
                scheduler_job_ended(s, j);
                ended = true;
        }
        observer_notify(s->observers, EVENT_JOB_CHANGED, j);
        /* After the observers: the last reply of a GetJob stream still has the list. */
        if (ended)
                scheduler_trim_ended_files(s);
}

/* Forgets the oldest ended jobs beyond max_ended_jobs. */
static void scheduler_prune(Scheduler *s) {
        size_t ended = 0;

        for (size_t i = 0; i < s->n_jobs; i++)
                ended += job_ended(s->jobs[i]);
        for (size_t i = 0; i < s->n_jobs && ended > s->max_ended_jobs;) {
                if (!job_ended(s->jobs[i])) {
                        i++;
                        continue;
                }
                observer_notify(s->observers, EVENT_JOB_REMOVED, s->jobs[i]);
                job_free(s->jobs[i]);
                memmove(s->jobs + i, s->jobs + i + 1, (s->n_jobs - i - 1) * sizeof(Job *));
                s->n_jobs--;
                ended--;
        }
}

int scheduler_add_job(Scheduler *s, Job *job) {
        Job **n;

        n = reallocarray(s->jobs, s->n_jobs + 1, sizeof(Job *));
        if (!n)
                return -ENOMEM;
        s->jobs = n;
        s->jobs[s->n_jobs++] = job;
        if (job->submit_time == 0)
                job->submit_time = scheduler_now(s, CLOCK_REALTIME);
        observer_notify(s->observers, EVENT_JOB_ADDED, job);
        log_info("Job %s: %u input file(s) in %u map task(s), %u reduce task(s), app %s, in %s.", job->id,
                 job->nfiles, job->nmap, job->nreduce, job->app ?: "(the workers')", job->workdir);
        scheduler_prune(s);
        scheduler_job_changed(s, job);
        scheduler_dispatch(s);
        return 0;
}

Job *scheduler_find_job(Scheduler *s, const char *id) {
        for (size_t i = 0; i < s->n_jobs; i++)
                if (streq(s->jobs[i]->id, id))
                        return s->jobs[i];
        return NULL;
}

int scheduler_cancel_job(Scheduler *s, Job *j) {
        int r = job_cancel(j);
        if (r < 0)
                return r;
        scheduler_job_changed(s, j);
        scheduler_dispatch(s);
        return 0;
}

/* Workers. */

int scheduler_add_worker(Scheduler *s, const char *description, uid_t uid, void *userdata, Worker **ret) {
        Worker *w;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->description = strdup(description);
        if (!w->description)
                return worker_free(w), -ENOMEM;
        w->userdata = userdata;
        w->uid = uid;
        LIST_PREPEND(workers, s->workers, w);
        observer_notify(s->observers, EVENT_WORKERS_CHANGED, NULL);
        *ret = w;
        return 0;
}

void scheduler_remove_worker(Scheduler *s, Worker *w) {
        waiting_remove(s, w);
        LIST_REMOVE(workers, s->workers, w);

        for (size_t i = 0; i < s->n_jobs; i++) {
                unsigned n = job_release_owner(s->jobs[i], w);
                if (n > 0)
                        log_notice("Worker %s went away with %u task(s) of job %s; handing them out again.",
                                   w->description, n, s->jobs[i]->id);
        }
        worker_free(w);
        observer_notify(s->observers, EVENT_WORKERS_CHANGED, NULL);
        scheduler_dispatch(s);
}

unsigned scheduler_n_workers(Scheduler *s) {
        unsigned n = 0;

        LIST_FOREACH(workers, w, s->workers)
                n++;
        return n;
}

bool scheduler_job_has_worker(Scheduler *s, const Job *j) {
        LIST_FOREACH(workers, w, s->workers)
                if (access_worker_may_run(w->uid, j, s->service_uid))
                        return true;
        return false;
}

bool scheduler_worker_holds(const Worker *w, const Job *j, const Task *t, unsigned attempt) {
        return streq(w->assigned.job, j->id) && w->assigned.kind == t->kind && w->assigned.index == t->index &&
               w->assigned.attempt == attempt && attempt > 0;
}

static void worker_set_assigned(Worker *w, const Job *j, const Task *t) {
        snprintf(w->assigned.job, sizeof(w->assigned.job), "%s", j->id);
        w->assigned.kind = t->kind;
        w->assigned.index = t->index;
        w->assigned.attempt = t->attempt;
}

/* Tasks. */

/* The oldest job with a task for this worker: 1 and the task, 0 if none now, -ESHUTDOWN
 * if every job has ended. A task no worker runs yet goes before a backup of any job's. */
static int scheduler_pick(Scheduler *s, Worker *w, uint64_t now, Job **ret_job, Task **ret_task) {
        bool any = false;

        for (size_t i = 0; i < 2 * s->n_jobs; i++) {
                bool backup = i >= s->n_jobs;
                Job *j = s->jobs[i % s->n_jobs];
                int r;

                if (job_ended(j))
                        continue;
                any = true;
                if (!access_worker_may_run(w->uid, j, s->service_uid))
                        continue;
                r = backup ? job_assign_backup(j, w, now, ret_task) : job_assign(j, w, now, ret_task);
                if (r > 0 && backup)
                        log_info("Job %s: a backup of %s task %u (attempt %u) to %s, the first ran %.1f s.", j->id,
                                 task_kind_to_string((*ret_task)->kind), (*ret_task)->index, (*ret_task)->attempt,
                                 w->description, (double) (now - (*ret_task)->runs[0].start) / USEC_PER_SEC);
                if (r > 0) {
                        *ret_job = j;
                        if (j->start_time == 0) {
                                j->start_time = scheduler_now(s, CLOCK_REALTIME);
                                scheduler_job_changed(s, j);
                        }
                        return 1;
                }
        }
        return any ? 0 : -ESHUTDOWN;
}

uint64_t scheduler_next_deadline(Scheduler *s) {
        uint64_t d = UINT64_MAX;

        for (size_t i = 0; i < s->n_jobs; i++)
                if (!job_ended(s->jobs[i]))
                        d = MIN(d, job_next_deadline(s->jobs[i]));
        return d;
}

/* When scheduler_expire() has something to do: a deadline, or while a worker waits, a
 * task that becomes old enough for a backup. */
static uint64_t scheduler_next_wake(Scheduler *s) {
        uint64_t d = scheduler_next_deadline(s);

        for (size_t i = 0; s->waiting && i < s->n_jobs; i++)
                if (!job_ended(s->jobs[i]))
                        d = MIN(d, job_next_backup(s->jobs[i]));
        return d;
}

/* The first waiting worker that gets something now, and what: 1 with a task, 0 with the
 * word to exit (lab mode), -ENOENT if no waiting worker gets anything. Workers of
 * different users may wait for different jobs, so one without a task does not stop the
 * others'. */
static int scheduler_next_assignment(Scheduler *s, uint64_t now, Worker **ret_worker, Job **ret_job,
                                     Task **ret_task) {
        LIST_FOREACH(waiting, w, s->waiting) {
                int r = scheduler_pick(s, w, now, ret_job, ret_task);
                if (r > 0 || (r == -ESHUTDOWN && s->exit_when_done && s->n_jobs > 0)) {
                        *ret_worker = w;
                        return r > 0;
                }
        }
        return -ENOENT;
}

void scheduler_dispatch(Scheduler *s) {
        uint64_t now = scheduler_now(s, CLOCK_MONOTONIC);
        Worker *w;
        Job *j;
        Task *t;
        int r;

        /* Each callback may remove workers (a connection that closes), so the line is
         * searched afresh after each. */
        while ((r = scheduler_next_assignment(s, now, &w, &j, &t)) >= 0) {
                waiting_remove(s, w);
                if (r == 0) {
                        /* Lab mode: the job is over, and so is the worker's work. */
                        s->callbacks->assign(w, NULL, NULL, s->userdata);
                        continue;
                }
                worker_set_assigned(w, j, t);
                s->callbacks->assign(w, j, t, s->userdata);
        }
        if (s->callbacks->wake_at)
                s->callbacks->wake_at(scheduler_next_wake(s), s->userdata);
}

void scheduler_request_task(Scheduler *s, Worker *w) {
        waiting_push(s, w);
        scheduler_dispatch(s);
}

int scheduler_finish_task(Scheduler *s, Job *j, Task *t, unsigned attempt, bool ok, const char *error,
                          const JobCounters *counters) {
        JobState before = j->state;
        unsigned done_before = j->done[TASK_MAP] + j->done[TASK_REDUCE];
        uint64_t failed_before = j->counters.v[COUNTER_TASK_ATTEMPTS_FAILED];
        int r;

        r = job_finish(j, t, attempt, ok, error);
        if (r > 0) {
                /* Only the committed attempt's counters count, and its time makes the median. */
                uint64_t now = scheduler_now(s, CLOCK_MONOTONIC);
                if (counters)
                        job_counters_add_worker(&j->counters, counters);
                t->duration = t->won_start > 0 && now > t->won_start ? now - t->won_start : 0;
        }
        if (j->state != before || j->done[TASK_MAP] + j->done[TASK_REDUCE] != done_before ||
            j->counters.v[COUNTER_TASK_ATTEMPTS_FAILED] != failed_before)
                scheduler_job_changed(s, j);
        scheduler_dispatch(s);
        return r;
}

void scheduler_expire(Scheduler *s) {
        uint64_t now = scheduler_now(s, CLOCK_MONOTONIC);

        for (size_t i = 0; i < s->n_jobs; i++) {
                Job *j = s->jobs[i];
                unsigned n = job_ended(j) ? 0 : job_expire(j, now);
                if (n > 0)
                        log_notice("%u task(s) of job %s not finished within %.1f s, handing them out again.", n,
                                   j->id, (double) j->timeout / USEC_PER_SEC);
        }
        scheduler_dispatch(s);
}
