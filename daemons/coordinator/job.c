/* SPDX-License-Identifier: LGPL-2.1-or-later */
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
        j->nreduce = nreduce;
        j->timeout = timeout;
        j->max_failures = DEFAULT_MAX_FAILURES;
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
                };

        *ret = j;
        return 0;
}

void job_drop_files(Job *j) {
        assert(job_ended(j));
        j->files = strv_free(j->files);
        j->files_size = 0;
}

Job *job_free(Job *j) {
        if (!j)
                return NULL;
        strv_free(j->files);
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

int job_assign(Job *j, void *owner, uint64_t now, Task **ret) {
        unsigned first, n;

        if (job_ended(j))
                return -ESHUTDOWN;

        /* Reduce tasks become runnable only once every map task is done. */
        if (j->state == JOB_MAPPING) {
                first = 0;
                n = j->nmap;
        } else {
                first = j->nmap;
                n = j->nreduce;
        }

        for (unsigned i = first; i < first + n; i++) {
                Task *t = &j->tasks[i];
                if (t->state != TASK_IDLE)
                        continue;
                t->state = TASK_RUNNING;
                t->attempt++;
                j->counters.attempts++;
                t->owner = owner;
                t->deadline = j->timeout == UINT64_MAX || now > UINT64_MAX - j->timeout ? UINT64_MAX
                                                                                        : now + j->timeout;
                *ret = t;
                return 1;
        }
        return 0;
}

bool job_may_complete(const Job *j, const Task *t, unsigned attempt) {
        return !job_ended(j) && t->state != TASK_DONE && t->state != TASK_COMMITTING && attempt > j->attempt_base &&
               attempt <= t->attempt;
}

void job_begin_commit(Job *j, Task *t) {
        t->state = TASK_COMMITTING;
        t->owner = NULL;
}

void job_set_attempt_base(Job *j, unsigned base) {
        j->attempt_base = base;
        for (unsigned i = 0; i < j->nmap + j->nreduce; i++)
                j->tasks[i].attempt = MAX(j->tasks[i].attempt, base);
}

void job_mark_done(Job *j, Task *t) {
        t->state = TASK_DONE;
        t->owner = NULL;
        j->done[t->kind]++;
        if (j->state == JOB_MAPPING && j->done[TASK_MAP] == j->nmap)
                j->state = JOB_REDUCING;
        if (j->state == JOB_REDUCING && j->done[TASK_REDUCE] == j->nreduce)
                j->state = JOB_DONE;
}

int job_finish(Job *j, Task *t, unsigned attempt, bool ok, const char *error) {
        if (t->state == TASK_COMMITTING) {
                if (!ok || job_ended(j))
                        return 0;
        } else if (!job_may_complete(j, t, attempt))
                return 0;

        if (!ok) {
                /* Only the latest attempt's failure counts: an older one was already replaced. */
                if (attempt != t->attempt || t->state != TASK_RUNNING)
                        return 0;
                t->state = TASK_IDLE;
                t->owner = NULL;
                j->counters.failures++;
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
        job_mark_done(j, t);
        return 1;
}

unsigned job_release_owner(Job *j, void *owner) {
        unsigned n = 0;

        for (unsigned i = 0; i < j->nmap + j->nreduce; i++) {
                Task *t = &j->tasks[i];
                if (t->state == TASK_RUNNING && t->owner == owner) {
                        t->state = TASK_IDLE;
                        t->owner = NULL;
                        n++;
                }
        }
        j->counters.worker_losses += n;
        return n;
}

unsigned job_expire(Job *j, uint64_t now) {
        unsigned n = 0;

        for (unsigned i = 0; i < j->nmap + j->nreduce; i++) {
                Task *t = &j->tasks[i];
                if (t->state == TASK_RUNNING && t->deadline <= now) {
                        t->state = TASK_IDLE;
                        t->owner = NULL;
                        n++;
                }
        }
        j->counters.timeouts += n;
        return n;
}

int job_cancel(Job *j) {
        if (job_ended(j))
                return -ESTALE;
        for (unsigned i = 0; i < j->nmap + j->nreduce; i++)
                if (j->tasks[i].state == TASK_RUNNING) {
                        j->tasks[i].state = TASK_IDLE;
                        j->tasks[i].owner = NULL;
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
                if (j->tasks[i].state == TASK_RUNNING)
                        d = MIN(d, j->tasks[i].deadline);
        return d;
}
