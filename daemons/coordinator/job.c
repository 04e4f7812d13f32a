/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "job.h"
#include "macro.h"
#include "mr-files.h"
#include "strv.h"

#define DEFAULT_MAX_FAILURES 3

static const char *const task_kind_table[_TASK_KIND_MAX] = {
        [TASK_MAP] = "map",
        [TASK_REDUCE] = "reduce",
};

const char *task_kind_to_string(TaskKind k) {
        return k < _TASK_KIND_MAX ? task_kind_table[k] : NULL;
}

int task_kind_from_string(const char *s) {
        for (int i = 0; i < _TASK_KIND_MAX; i++)
                if (streq(s, task_kind_table[i]))
                        return i;
        return -EINVAL;
}

const char *job_state_to_string(JobState s) {
        static const char *const table[] = {
                [JOB_MAPPING] = "mapping",
                [JOB_REDUCING] = "reducing",
                [JOB_DONE] = "done",
                [JOB_FAILED] = "failed",
                [JOB_CANCELLED] = "cancelled",
        };
        return s < ELEMENTSOF(table) ? table[s] : NULL;
}

const char *job_display_state(const Job *j) {
        return j->state == JOB_MAPPING && j->start_time == 0 ? "queued" : job_state_to_string(j->state);
}

int job_new(const char *id, const char *app, const char *workdir, char *const *files, unsigned nfiles,
            unsigned nreduce, uint64_t timeout, Job **ret) {
        Job *j;

        assert(id);
        assert(workdir);
        assert(ret);

        if (nfiles == 0 || nreduce == 0)
                return -EINVAL;

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->nmap = nfiles;
        j->nfiles = nfiles;
        j->nreduce = nreduce;
        j->timeout = timeout;
        j->max_failures = DEFAULT_MAX_FAILURES;
        j->combine = true;
        j->state = JOB_MAPPING;
        j->id = strdup(id);
        j->app = app ? strdup(app) : NULL;
        j->workdir = strdup(workdir);
        j->files = calloc(nfiles + 1, sizeof(char *));
        j->tasks = calloc(nfiles + nreduce, sizeof(Task));
        if (!j->id || (app && !j->app) || !j->workdir || !j->files || !j->tasks)
                return job_free(j), -ENOMEM;

        j->files_size = (nfiles + 1) * sizeof(char *);
        for (unsigned i = 0; i < nfiles; i++) {
                j->files[i] = strdup(files[i]);
                if (!j->files[i])
                        return job_free(j), -ENOMEM;
                j->files_size += strlen(files[i]) + 1;
        }
        for (unsigned i = 0; i < nfiles + nreduce; i++)
                j->tasks[i] = (Task) {
                        .kind = i < nfiles ? TASK_MAP : TASK_REDUCE,
                        .index = i < nfiles ? i : i - nfiles,
                        .state = TASK_IDLE,
                        .file = i < nfiles ? i : 0,
                        .length = TASK_WHOLE_FILE,
                };

        *ret = j;
        return 0;
}

uint64_t job_count_splits(const uint64_t *sizes, unsigned nfiles, uint64_t split_size) {
        uint64_t n = 0;

        for (unsigned i = 0; i < nfiles; i++) {
                uint64_t k = !sizes || split_size == 0 || sizes[i] == 0
                                     ? 1 : sizes[i] / split_size + (sizes[i] % split_size != 0);
                if (n > UINT64_MAX - k)
                        return UINT64_MAX;
                n += k;
        }
        return n;
}

int job_split(Job *j, const uint64_t *sizes, uint64_t split_size, unsigned max_maps) {
        uint64_t nmap = job_count_splits(sizes, j->nfiles, split_size);
        _cleanup_free_ uint64_t *copy = NULL;
        Task *tasks;
        unsigned m = 0;

        assert(j->start_time == 0);

        if (nmap > max_maps)
                return -E2BIG;
        if (sizes) {
                copy = calloc(MAX(j->nfiles, 1U), sizeof(uint64_t));
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, sizes, j->nfiles * sizeof(uint64_t));
        }
        tasks = calloc(nmap + j->nreduce, sizeof(Task));
        if (!tasks)
                return -ENOMEM;
        for (unsigned f = 0; f < j->nfiles; f++) {
                uint64_t k = job_count_splits(sizes ? &sizes[f] : NULL, 1, split_size);

                for (uint64_t s = 0; s < k; s++, m++)
                        tasks[m] = (Task) {
                                .kind = TASK_MAP,
                                .index = m,
                                .state = TASK_IDLE,
                                .file = f,
                                .offset = k == 1 ? 0 : s * split_size,
                                /* The last split ends where the file did. */
                                .length = k == 1 ? TASK_WHOLE_FILE : MIN(split_size, sizes[f] - s * split_size),
                        };
        }
        for (unsigned r = 0; r < j->nreduce; r++)
                tasks[nmap + r] = (Task) { .kind = TASK_REDUCE, .index = r, .state = TASK_IDLE };

        free(j->tasks);
        j->tasks = tasks;
        j->nmap = (unsigned) nmap;
        free(j->sizes);
        j->sizes = TAKE_PTR(copy);
        j->split_size = split_size;
        if (j->sizes)
                j->files_size += j->nfiles * sizeof(uint64_t);
        return 0;
}

int job_set_commands(Job *j, const char *mapper, const char *reducer) {
        assert(!mapper == !reducer);

        j->mapper = mapper ? strdup(mapper) : NULL;
        j->reducer = reducer ? strdup(reducer) : NULL;
        return (mapper && !j->mapper) || (reducer && !j->reducer) ? -ENOMEM : 0;
}

void job_drop_files(Job *j) {
        assert(job_ended(j));
        j->files = strv_free(j->files);
        j->sizes = mfree(j->sizes);
        j->files_size = 0;
}

Job *job_free(Job *j) {
        if (!j)
                return NULL;
        strv_free(j->files);
        free(j->sizes);
        free(j->mapper);
        free(j->reducer);
        free(j->tasks);
        free(j->id);
        free(j->app);
        free(j->workdir);
        free(j->error);
        free(j);
        return NULL;
}

Task *job_find_task(Job *j, TaskKind kind, unsigned index) {
        if (kind == TASK_MAP && index < j->nmap)
                return &j->tasks[index];
        if (kind == TASK_REDUCE && index < j->nreduce)
                return &j->tasks[j->nmap + index];
        return NULL;
}

/* Slots of running attempts. */

TaskRun *task_find_run(Task *t, unsigned attempt) {
        for (unsigned i = 0; i < ELEMENTSOF(t->runs); i++)
                if (t->runs[i].owner && t->runs[i].attempt == attempt)
                        return &t->runs[i];
        return NULL;
}

bool task_runs_on(const Task *t, const void *owner) {
        return t->state == TASK_RUNNING && (t->runs[0].owner == owner || t->runs[1].owner == owner);
}

/* Ends one running attempt; with none left the task is runnable again. */
static void task_drop_run(Task *t, TaskRun *run) {
        if (run == &t->runs[0])
                t->runs[0] = t->runs[1];
        t->runs[1] = (TaskRun) {};
        if (!t->runs[0].owner)
                t->state = TASK_IDLE;
}

static void task_clear_runs(Task *t) {
        t->runs[0] = t->runs[1] = (TaskRun) {};
}

static TaskRun *task_start_run(Job *j, Task *t, TaskRun *run, void *owner, uint64_t now) {
        t->state = TASK_RUNNING;
        t->attempt++;
        j->counters.v[COUNTER_TASK_ATTEMPTS]++;
        *run = (TaskRun) {
                .owner = owner,
                .attempt = t->attempt,
                .start = now,
                .deadline = j->timeout == UINT64_MAX || now > UINT64_MAX - j->timeout ? UINT64_MAX
                                                                                      : now + j->timeout,
        };
        return run;
}

bool job_maps_in_place(const Job *j) {
        return j->done[TASK_MAP] + j->committing[TASK_MAP] == j->nmap;
}

bool job_all_in_place(const Job *j) {
        return job_maps_in_place(j) && j->done[TASK_REDUCE] + j->committing[TASK_REDUCE] == j->nreduce;
}

/* The kind of task the job hands out now: reduce tasks become runnable only once every
 * map's output is in place. */
static TaskKind job_phase_kind(const Job *j) {
        return j->state == JOB_MAPPING && !job_maps_in_place(j) ? TASK_MAP : TASK_REDUCE;
}

static void job_phase(const Job *j, unsigned *ret_first, unsigned *ret_n) {
        bool map = job_phase_kind(j) == TASK_MAP;

        *ret_first = map ? 0 : j->nmap;
        *ret_n = map ? j->nmap : j->nreduce;
}

int job_assign(Job *j, void *owner, uint64_t now, Task **ret) {
        unsigned first, n;

        if (job_ended(j))
                return -ESHUTDOWN;

        job_phase(j, &first, &n);
        for (unsigned i = first; i < first + n; i++) {
                Task *t = &j->tasks[i];
                if (t->state != TASK_IDLE)
                        continue;
                task_start_run(j, t, &t->runs[0], owner, now);
                *ret = t;
                return 1;
        }
        return 0;
}

static int compare_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

uint64_t job_median_duration(Job *j, TaskKind kind) {
        _cleanup_free_ uint64_t *d = NULL;
        unsigned n = 0, first = kind == TASK_MAP ? 0 : j->nmap, total = kind == TASK_MAP ? j->nmap : j->nreduce;

        for (unsigned i = first; i < first + total; i++)
                n += j->tasks[i].state == TASK_DONE && j->tasks[i].duration > 0;
        /* Computed again only when a task finished since. */
        if (n == j->median_n[kind])
                return j->median[kind];
        d = calloc(n, sizeof(uint64_t));
        if (!d)
                return j->median[kind];
        n = 0;
        for (unsigned i = first; i < first + total; i++)
                if (j->tasks[i].state == TASK_DONE && j->tasks[i].duration > 0)
                        d[n++] = j->tasks[i].duration;
        qsort(d, n, sizeof(uint64_t), compare_u64);
        j->median[kind] = n % 2 ? d[n / 2] : d[n / 2 - 1] / 2 + d[n / 2] / 2;
        j->median_n[kind] = n;
        return j->median[kind];
}

uint64_t job_backup_after(Job *j) {
        TaskKind kind;
        uint64_t median;

        if (!j->backup_tasks || job_ended(j))
                return UINT64_MAX;
        /* A kind with no task finished (one reduce, one map) borrows the other's median,
         * else waits a share of the time-out: a backup still comes well before it. */
        kind = job_phase_kind(j);
        median = job_median_duration(j, kind) ?: job_median_duration(j, kind == TASK_MAP ? TASK_REDUCE : TASK_MAP);
        if (median == 0)
                return MAX(j->timeout / JOB_BACKUP_TIMEOUT_SHARE, JOB_BACKUP_MIN_USEC);
        return MAX(median > UINT64_MAX / 2 ? UINT64_MAX : 2 * median, JOB_BACKUP_MIN_USEC);
}

/* The running task of the phase that could get a backup and started first, if no task of
 * the phase waits to be handed out. */
static Task *job_backup_candidate(Job *j, void *owner) {
        unsigned first, n;
        Task *best = NULL;

        job_phase(j, &first, &n);
        for (unsigned i = first; i < first + n; i++) {
                Task *t = &j->tasks[i];

                if (t->state == TASK_IDLE)
                        return NULL;
                if (t->state != TASK_RUNNING || t->backup_attempt > 0 || t->runs[1].owner ||
                    (owner && t->runs[0].owner == owner))
                        continue;
                if (!best || t->runs[0].start < best->runs[0].start)
                        best = t;
        }
        return best;
}

int job_assign_backup(Job *j, void *owner, uint64_t now, Task **ret) {
        uint64_t after = job_backup_after(j);
        Task *t;

        if (after == UINT64_MAX)
                return 0;
        t = job_backup_candidate(j, owner);
        if (!t || now - t->runs[0].start <= after || now < t->runs[0].start)
                return 0;
        task_start_run(j, t, &t->runs[1], owner, now);
        t->backup_attempt = t->attempt;
        j->counters.v[COUNTER_BACKUP_ATTEMPTS_STARTED]++;
        *ret = t;
        return 1;
}

uint64_t job_next_backup(Job *j) {
        uint64_t after = job_backup_after(j);
        Task *t;

        if (after == UINT64_MAX)
                return UINT64_MAX;
        t = job_backup_candidate(j, NULL);
        if (!t || t->runs[0].start > UINT64_MAX - after - 1)
                return UINT64_MAX;
        return t->runs[0].start + after + 1;
}

bool job_may_complete(const Job *j, const Task *t, unsigned attempt) {
        return !job_ended(j) && t->state != TASK_DONE && t->state != TASK_COMMITTING && attempt > j->attempt_base &&
               attempt <= t->attempt;
}

/* The attempt completes the task: its start, for the job's median, and whether it was a
 * backup. */
static void task_won(Job *j, Task *t, unsigned attempt) {
        TaskRun *run = task_find_run(t, attempt);

        t->won_start = run ? run->start : 0;
        if (attempt == t->backup_attempt)
                j->counters.v[COUNTER_BACKUP_ATTEMPTS_WON]++;
}

void job_begin_commit(Job *j, Task *t, unsigned attempt) {
        task_won(j, t, attempt);
        t->state = TASK_COMMITTING;
        task_clear_runs(t);
        j->committing[t->kind]++;
}

void job_set_attempt_base(Job *j, unsigned base) {
        j->attempt_base = base;
        for (unsigned i = 0; i < j->nmap + j->nreduce; i++)
                j->tasks[i].attempt = MAX(j->tasks[i].attempt, base);
}

void job_mark_done(Job *j, Task *t) {
        if (t->state == TASK_COMMITTING)
                j->committing[t->kind]--;
        t->state = TASK_DONE;
        task_clear_runs(t);
        j->done[t->kind]++;
        if (j->state == JOB_MAPPING && j->done[TASK_MAP] == j->nmap)
                j->state = JOB_REDUCING;
        if (j->state == JOB_REDUCING && j->done[TASK_REDUCE] == j->nreduce)
                j->state = JOB_DONE;
}

int job_finish(Job *j, Task *t, unsigned attempt, bool ok, const char *error) {
        TaskRun *run;

        if (t->state == TASK_COMMITTING) {
                if (!ok || job_ended(j))
                        return 0;
        } else if (!job_may_complete(j, t, attempt))
                return 0;

        if (!ok) {
                /* Only a running attempt's failure counts: an older one was already replaced.
                 * While another attempt of the task runs, the task goes on with it. */
                run = t->state == TASK_RUNNING ? task_find_run(t, attempt) : NULL;
                if (!run)
                        return 0;
                task_drop_run(t, run);
                j->counters.v[COUNTER_TASK_ATTEMPTS_FAILED]++;
                if (++t->failures >= j->max_failures) {
                        j->state = JOB_FAILED;
                        free(j->error);
                        /* A worker's error may be as long as a message: the job keeps a bounded part. */
                        if (asprintf(&j->error, "%s task %u failed %u times, last: %.*s",
                                     task_kind_to_string(t->kind), t->index, t->failures, JOB_ERROR_MAX,
                                     error ?: "unknown error") < 0)
                                j->error = NULL;
                }
                return 0;
        }

        /* The first successful attempt wins, even a superseded one that finishes before its
         * replacement: its output is complete, and committing it is what makes it visible. */
        if (t->state != TASK_COMMITTING)
                task_won(j, t, attempt);
        job_mark_done(j, t);
        return 1;
}

/* Ends the running attempts for which drop() holds; returns how many. */
static unsigned job_drop_runs(Job *j, bool (*drop)(const TaskRun *run, const void *arg), const void *arg) {
        unsigned n = 0;

        for (unsigned i = 0; i < j->nmap + j->nreduce; i++) {
                Task *t = &j->tasks[i];

                if (t->state != TASK_RUNNING)
                        continue;
                for (unsigned k = ELEMENTSOF(t->runs); k > 0; k--)
                        if (t->runs[k - 1].owner && drop(&t->runs[k - 1], arg)) {
                                task_drop_run(t, &t->runs[k - 1]);
                                n++;
                        }
        }
        j->counters.v[COUNTER_TASK_ATTEMPTS_FAILED] += n;
        return n;
}

static bool run_of_owner(const TaskRun *run, const void *owner) {
        return run->owner == owner;
}

static bool run_expired(const TaskRun *run, const void *now) {
        return run->deadline <= *(const uint64_t *) now;
}

unsigned job_release_owner(Job *j, void *owner) {
        unsigned n = job_drop_runs(j, run_of_owner, owner);

        j->counters.v[COUNTER_TASK_ATTEMPTS_LOST] += n;
        return n;
}

unsigned job_expire(Job *j, uint64_t now) {
        unsigned n = job_drop_runs(j, run_expired, &now);

        j->counters.v[COUNTER_TASK_ATTEMPTS_TIMED_OUT] += n;
        return n;
}

int job_cancel(Job *j) {
        if (job_ended(j))
                return -ESTALE;
        for (unsigned i = 0; i < j->nmap + j->nreduce; i++)
                if (j->tasks[i].state == TASK_RUNNING) {
                        j->tasks[i].state = TASK_IDLE;
                        task_clear_runs(&j->tasks[i]);
                }
        j->state = JOB_CANCELLED;
        return 0;
}

int job_output_path(const Job *j, unsigned r, char **ret) {
        char name[MR_NAME_MAX];

        mr_output_name(name, r);
        return asprintf(ret, "%s/%s", j->workdir, name) < 0 ? -ENOMEM : 0;
}

double job_progress(const Job *j) {
        return (double) (j->done[TASK_MAP] + j->done[TASK_REDUCE]) / (double) (j->nmap + j->nreduce);
}

uint64_t job_next_deadline(Job *j) {
        uint64_t d = UINT64_MAX;

        for (unsigned i = 0; i < j->nmap + j->nreduce; i++)
                for (unsigned k = 0; j->tasks[i].state == TASK_RUNNING && k < ELEMENTSOF(j->tasks[i].runs); k++)
                        if (j->tasks[i].runs[k].owner)
                                d = MIN(d, j->tasks[i].runs[k].deadline);
        return d;
}
