/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <sys/epoll.h>

#include "journal-record.h"
#include "journal.h"
#include "json-util.h"
#include "list.h"
#include "log.h"
#include "snapshot.h"
#include "state-check.h"
#include "state-dir.h"
#include "time-util.h"

/* Kernels without pidfd_open(): how often a running snapshot writer is looked at. */
#define SNAPSHOT_POLL_USEC (50 * USEC_PER_MSEC)

/* What the journal knows of a job beyond the model: which of its records are written,
 * and the COMMIT record of each done task, for snapshots. */
typedef struct JournalJob {
        Job *job;
        bool start_written, end_written;
        bool files_dropped;    /* loaded without its file names (an ended job's) */
        json_object **commits; /* nmap + nreduce, NULL where none; only while the job runs */
        /* The END record written with the last COMMIT, while the model waits for the
         * records to be durable before it ends the job (end_written is set too). */
        json_object *end_ahead;
} JournalJob;

typedef struct Waiter Waiter;
struct Waiter {
        uint64_t seqnum;
        void *owner;
        JobJournalDone cb;
        void *userdata;
        LIST_FIELDS(Waiter, waiters);
};

struct JobJournal {
        sd_event *event;
        Scheduler *scheduler;
        JobSubmitter *submitter;
        StateDir *dir;
        Wal *wal;
        sd_event_source *wal_source, *commit_source, *snapshot_source;
        Snapshot *snapshot;
        size_t keep_jobs;
        uint64_t compact_size;
        unsigned generation;
        bool loading;
        uint64_t committed;             /* the last seqnum handed to wal_commit() */
        uint64_t log_bytes_loaded;      /* replayed at start, until the first snapshot */
        uint64_t log_bytes_base;        /* the log's byte count when the last snapshot started */
        uint64_t snapshot_start_bytes;  /* the log's byte count when the running one started */
        uint64_t snapshot_retry_usec;   /* CLOCK_MONOTONIC: no new snapshot before, after a failure */

        JournalJob *jobs;               /* in submission order */
        size_t n_jobs;
        Waiter *waiters, *waiters_tail; /* in seqnum order */
};

/* The side table. */

static JournalJob *find_by_job(JobJournal *jj, const Job *j) {
        for (size_t i = jj->n_jobs; i > 0; i--)
                if (jj->jobs[i - 1].job == j)
                        return &jj->jobs[i - 1];
        return NULL;
}

/* From the newest: records mostly name a recent job. */
static JournalJob *find_by_id(JobJournal *jj, const char *id) {
        for (size_t i = jj->n_jobs; i > 0; i--)
                if (streq(jj->jobs[i - 1].job->id, id))
                        return &jj->jobs[i - 1];
        return NULL;
}

static void journal_job_drop_commits(JournalJob *e) {
        json_object_put(e->end_ahead);
        e->end_ahead = NULL;
        if (!e->commits)
                return;
        for (unsigned i = 0; i < e->job->nmap + e->job->nreduce; i++)
                json_object_put(e->commits[i]);
        e->commits = mfree(e->commits);
}

static int journal_job_add(JobJournal *jj, Job *j, JournalJob **ret) {
        JournalJob *n;

        n = reallocarray(jj->jobs, jj->n_jobs + 1, sizeof(JournalJob));
        if (!n)
                return -ENOMEM;
        jj->jobs = n;
        jj->jobs[jj->n_jobs] = (JournalJob) { .job = j };
        *ret = &jj->jobs[jj->n_jobs++];
        return 0;
}

static void journal_job_remove(JobJournal *jj, JournalJob *e) {
        size_t i = (size_t) (e - jj->jobs);

        journal_job_drop_commits(e);
        memmove(jj->jobs + i, jj->jobs + i + 1, (jj->n_jobs - i - 1) * sizeof(JournalJob));
        jj->n_jobs--;
}

static int journal_job_set_commit(JournalJob *e, const Task *t, json_object *commit) {
        size_t i = (size_t) (t - e->job->tasks);

        if (!e->commits) {
                e->commits = calloc(e->job->nmap + e->job->nreduce, sizeof(json_object *));
                if (!e->commits)
                        return -ENOMEM;
        }
        json_object_put(e->commits[i]);
        e->commits[i] = json_object_get(commit);
        return 0;
}

/* Appending. */

static uint64_t log_bytes_written(JobJournal *jj) {
        WalStats st;

        wal_get_stats(jj->wal, &st);
        return st.bytes;
}

/* In the log since the last snapshot. */
static uint64_t log_bytes(JobJournal *jj) {
        return jj->log_bytes_loaded + log_bytes_written(jj) - jj->log_bytes_base;
}

static int append_json(JobJournal *jj, uint32_t type, json_object *o) {
        const char *s;
        size_t n;
        int r;

        if (!o)
                return -ENOMEM;
        s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n);
        if (!s)
                return -ENOMEM;
        r = wal_append(jj->wal, type, s, n, NULL);
        if (r < 0 && r != -ENOMEM) {
                log_error_errno(r, "Failed to append to the job journal: %m. Exiting.");
                (void) sd_event_exit(jj->event, r);
        }
        return r;
}

static int append_job_field(JobJournal *jj, uint32_t type, const Job *j, const char *key, json_object *v) {
        _cleanup_json_ json_object *o = NULL;

        if (json_build_object(&o, "job", json_object_new_string(j->id), key, v, NULL) < 0)
                return -ENOMEM;
        return append_json(jj, type, o);
}

static int append_meta(JobJournal *jj) {
        _cleanup_json_ json_object *o = NULL;

        if (json_build_object(&o,
                              "generation", json_object_new_uint64(jj->generation),
                              "last_job_id", json_object_new_uint64(jj->submitter->last_job_id),
                              NULL) < 0)
                return -ENOMEM;
        return append_json(jj, JOURNAL_RECORD_META, o);
}

/* The model changed: the records it needs. */
static void on_scheduler_event(ObserverEvent event, Job *j, void *userdata) {
        JobJournal *jj = userdata;
        _cleanup_json_ json_object *o = NULL;
        JournalJob *e;

        if (event == EVENT_WORKERS_CHANGED)
                return;
        e = find_by_job(jj, j);
        if (event == EVENT_JOB_REMOVED) {
                if (e)
                        journal_job_remove(jj, e);
                return;
        }
        if (event == EVENT_JOB_ADDED) {
                job_set_attempt_base(j, jj->generation << JOB_JOURNAL_ATTEMPT_SHIFT);
                if (!e && journal_job_add(jj, j, &e) < 0)
                        return (void) log_oom();
                if (!jj->loading) {
                        o = journal_job_to_json(j);
                        (void) append_json(jj, journal_job_record_type(j), o);
                }
                return;
        }
        if (!e)
                return;
        if (j->start_time > 0 && !e->start_written) {
                e->start_written = true;
                (void) append_job_field(jj, JOURNAL_RECORD_START, j, "time", json_object_new_uint64(j->start_time));
        }
        if (job_ended(j) && (!e->end_written || e->end_ahead)) {
                /* An END written ahead said done: another end (a cancel that came first)
                 * needs its own record, which replaces it at a replay. */
                bool written = e->end_ahead && j->state == JOB_DONE;

                e->end_written = true;
                journal_job_drop_commits(e);
                if (!written) {
                        o = journal_end_to_json(j);
                        (void) append_json(jj, JOURNAL_RECORD_END, o);
                }
        }
}

/* The job's END, appended with its last COMMIT record so that one sync makes both
 * durable: the job is done once they are, and its end is then written already. The
 * counters are the job's with those of every task still committing. */
static int append_end_ahead(JobJournal *jj, JournalJob *e) {
        _cleanup_json_ json_object *o = NULL;
        Job *j = e->job;
        JobCounters c = j->counters;
        Scheduler *s = jj->scheduler;
        int r;

        for (unsigned i = 0; e->commits && i < j->nmap + j->nreduce; i++)
                if (j->tasks[i].state == TASK_COMMITTING && e->commits[i] &&
                    journal_commit_add_counters(e->commits[i], &c) < 0)
                        return -EBADMSG;
        o = journal_end_done_to_json(j, s->clock(CLOCK_REALTIME, s->clock_userdata), &c);
        r = append_json(jj, JOURNAL_RECORD_END, o);
        if (r < 0)
                return r;
        e->end_written = true;
        e->end_ahead = TAKE_PTR(o);
        return 0;
}

int job_journal_commit_task(JobJournal *jj, Job *j, Task *t, unsigned attempt, const JobCounters *counters) {
        _cleanup_json_ json_object *o = NULL;
        JournalJob *e;
        int r;

        assert(jj);

        e = find_by_job(jj, j);
        if (!e)
                return -ENOENT;
        r = journal_commit_to_json(j, t, attempt, counters, &o);
        if (r < 0)
                return r;
        r = journal_job_set_commit(e, t, o);
        if (r < 0)
                return r;
        r = append_json(jj, JOURNAL_RECORD_COMMIT, o);
        if (r < 0)
                return r;
        job_begin_commit(j, t, attempt);
        if (job_all_in_place(j) && !e->end_written && append_end_ahead(jj, e) < 0)
                /* The job's end is then written once the model has ended it. */
                log_debug("Job %s: its end not written with its last commit.", j->id);
        return 0;
}

unsigned job_journal_generation(const JobJournal *jj) {
        return jj->generation;
}

/* Waiting for durability. */

static void waiter_pop(JobJournal *jj, Waiter *w) {
        if (jj->waiters_tail == w)
                jj->waiters_tail = w->waiters_prev;
        LIST_REMOVE(waiters, jj->waiters, w);
}

static void answer_waiters(JobJournal *jj, uint64_t durable, int error) {
        Waiter *w;

        while ((w = jj->waiters) && (error < 0 || w->seqnum <= durable)) {
                waiter_pop(jj, w);
                w->cb(w->owner, w->userdata, error);
                free(w);
        }
}

int job_journal_wait(JobJournal *jj, void *owner, JobJournalDone cb, void *userdata) {
        uint64_t seqnum;
        Waiter *w;

        assert(jj);
        assert(cb);

        seqnum = wal_last_seqnum(jj->wal);
        if (seqnum <= wal_durable_seqnum(jj->wal)) {
                cb(owner, userdata, 0);
                return 0;
        }
        w = malloc(sizeof(Waiter));
        if (!w)
                return -ENOMEM;
        *w = (Waiter) { .seqnum = seqnum, .owner = owner, .cb = cb, .userdata = userdata };
        LIST_INSERT_AFTER(waiters, jj->waiters, jj->waiters_tail, w);
        jj->waiters_tail = w;
        return 0;
}

void job_journal_flush(JobJournal *jj) {
        int r;

        if (!jj || wal_error(jj->wal) < 0)
                return;
        r = wal_sync(jj->wal);
        if (r < 0)
                log_error_errno(r, "Failed to sync the job journal: %m");
        answer_waiters(jj, wal_durable_seqnum(jj->wal), 0);
}

void job_journal_forget(JobJournal *jj, void *owner) {
        if (!jj)
                return;
        LIST_FOREACH(waiters, w, jj->waiters)
                if (w->owner == owner)
                        w->owner = NULL;
}

static int on_wal_event(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        JobJournal *jj = userdata;
        uint64_t durable = 0;
        int r;

        r = wal_process(jj->wal, &durable);
        answer_waiters(jj, durable, 0);
        if (r < 0) {
                log_error_errno(r, "The job journal in %s failed: %m. Exiting: a restart replays what is durable.",
                                state_dir_path(jj->dir));
                answer_waiters(jj, durable, r);
                (void) sd_event_exit(jj->event, r);
        }
        return 0;
}

/* Snapshots: a forked child writes the jobs the scheduler holds, as records. */

static int snapshot_add_json(SnapshotWriter *sw, uint32_t type, json_object *o) {
        const char *s;
        size_t n;

        if (!o)
                return -ENOMEM;
        s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n);
        return s ? snapshot_writer_add(sw, type, s, n) : -ENOMEM;
}

static int snapshot_add_job(SnapshotWriter *sw, const JournalJob *e) {
        _cleanup_json_ json_object *job = journal_job_to_json(e->job), *start = NULL, *end = NULL;
        const Job *j = e->job;
        int r;

        r = snapshot_add_json(sw, journal_job_record_type(j), job);
        if (r >= 0 && j->start_time > 0) {
                if (json_build_object(&start, "job", json_object_new_string(j->id),
                                      "time", json_object_new_uint64(j->start_time), NULL) < 0)
                        return -ENOMEM;
                r = snapshot_add_json(sw, JOURNAL_RECORD_START, start);
        }
        for (unsigned i = 0; r >= 0 && e->commits && i < j->nmap + j->nreduce; i++)
                if (e->commits[i])
                        r = snapshot_add_json(sw, JOURNAL_RECORD_COMMIT, e->commits[i]);
        if (r >= 0 && e->end_ahead)
                r = snapshot_add_json(sw, JOURNAL_RECORD_END, e->end_ahead);
        else if (r >= 0 && job_ended(j) && e->end_written) {
                end = journal_end_to_json(j);
                r = snapshot_add_json(sw, JOURNAL_RECORD_END, end);
        }
        return r;
}

static int snapshot_write_jobs(SnapshotWriter *sw, void *userdata) {
        JobJournal *jj = userdata;
        _cleanup_json_ json_object *meta = NULL;
        int r;

        if (json_build_object(&meta,
                              "generation", json_object_new_uint64(jj->generation),
                              "last_job_id", json_object_new_uint64(jj->submitter->last_job_id),
                              NULL) < 0)
                return -ENOMEM;
        r = snapshot_add_json(sw, JOURNAL_RECORD_META, meta);
        for (size_t i = 0; r >= 0 && i < jj->n_jobs; i++)
                r = snapshot_add_job(sw, &jj->jobs[i]);
        return r;
}

static void snapshot_done(JobJournal *jj) {
        jj->snapshot_source = sd_event_source_disable_unref(jj->snapshot_source);
        jj->snapshot = snapshot_free(jj->snapshot);
}

static void snapshot_check(JobJournal *jj) {
        int r;

        r = snapshot_finish(jj->snapshot, jj->wal);
        if (r == -EAGAIN)
                return;
        if (r < 0) {
                log_warning_errno(r, "Failed to compact the job journal: %m");
                jj->snapshot_retry_usec = usec_add(now_usec(), 10 * USEC_PER_SEC);
        } else {
                log_debug("Compacted the job journal in %s.", state_dir_path(jj->dir));
                jj->log_bytes_loaded = 0;
                jj->log_bytes_base = jj->snapshot_start_bytes;
        }
        snapshot_done(jj);
}

static int on_snapshot_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        snapshot_check(userdata);
        return 0;
}

static int on_snapshot_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        JobJournal *jj = userdata;

        snapshot_check(jj);
        if (jj->snapshot)
                (void) sd_event_source_set_time_relative(s, SNAPSHOT_POLL_USEC);
        return 0;
}

static int journal_compact(JobJournal *jj) {
        int r, fd;

        jj->snapshot_start_bytes = log_bytes_written(jj);
        r = snapshot_start(state_dir_fd(jj->dir), state_dir_path(jj->dir), jj->wal, snapshot_write_jobs, jj, NULL,
                           &jj->snapshot);
        if (r < 0)
                return log_warning_errno(r, "Failed to start compacting the job journal: %m");
        fd = snapshot_get_pidfd(jj->snapshot);
        if (fd >= 0)
                r = sd_event_add_io(jj->event, &jj->snapshot_source, fd, EPOLLIN, on_snapshot_io, jj);
        else
                r = sd_event_add_time_relative(jj->event, &jj->snapshot_source, CLOCK_MONOTONIC,
                                               SNAPSHOT_POLL_USEC, 0, on_snapshot_timer, jj);
        if (r < 0) {
                snapshot_done(jj);
                return log_warning_errno(r, "Failed to watch the journal's snapshot writer: %m");
        }
        return 0;
}

/* After every dispatch of another source: one write(2) and one sync for all its records. */
static int on_commit(sd_event_source *s, void *userdata) {
        JobJournal *jj = userdata;
        uint64_t last = wal_last_seqnum(jj->wal);
        int r;

        if (last > jj->committed) {
                jj->committed = last;
                r = wal_commit(jj->wal);
                if (r < 0) {
                        log_error_errno(r, "Failed to write the job journal: %m. Exiting.");
                        answer_waiters(jj, 0, r);
                        return sd_event_exit(jj->event, r);
                }
        }
        if (!jj->snapshot && log_bytes(jj) >= jj->compact_size && now_usec() >= jj->snapshot_retry_usec)
                (void) journal_compact(jj);
        return 0;
}

/* Loading. */

typedef struct Loader {
        JobJournal *jj;         /* NULL: only counting (--check-journal) */
        uint64_t records, bytes, jobs, commits, ends;
        uint64_t generation, last_job_id;
} Loader;

static int load_commit(JobJournal *jj, JournalJob *e, json_object *o) {
        const char *kind;
        uint64_t index;
        Task *t;
        int k;

        if (journal_get_string(o, "kind", &kind) < 0 || journal_get_u64(o, "task", &index) < 0)
                return -EBADMSG;
        k = task_kind_from_string(kind);
        t = k < 0 || index > UINT32_MAX ? NULL : job_find_task(e->job, k, (unsigned) index);
        if (!t)
                return -EBADMSG;
        return journal_job_set_commit(e, t, o);
}

/* A record naming a job: applied to the job loaded before it. */
static int load_job_record(JobJournal *jj, uint32_t type, json_object *o) {
        uint64_t time = 0;
        const char *id;
        JournalJob *e;

        if (journal_get_string(o, "job", &id) < 0)
                return -EBADMSG;
        e = find_by_id(jj, id);
        if (!e) {
                log_debug("Job journal: a record of job %s, which it does not hold; ignored.", id);
                return 0;
        }
        switch (type) {
        case JOURNAL_RECORD_START:
                (void) journal_get_u64(o, "time", &time);
                e->job->start_time = time;
                e->start_written = true;
                return 0;
        case JOURNAL_RECORD_COMMIT:
                return load_commit(jj, e, o);
        default:
                e->end_written = true;
                journal_job_drop_commits(e);
                return journal_end_apply(e->job, o);
        }
}

static int load_job(Loader *l, json_object *o) {
        JournalJob *e;
        bool dropped;
        Job *j;
        int r;

        r = journal_job_from_json(o, &j, &dropped);
        if (r < 0)
                return r;
        l->last_job_id = MAX(l->last_job_id, (uint64_t) strtoull(j->id, NULL, 10));
        if (!l->jj) {
                job_free(j);
                return 0;
        }
        r = journal_job_add(l->jj, j, &e);
        if (r < 0)
                job_free(j);
        else
                e->files_dropped = dropped;
        return r;
}

static int load_json(Loader *l, uint32_t type, json_object *o) {
        uint64_t v;

        switch (type) {
        case JOURNAL_RECORD_META:
                if (journal_get_u64(o, "generation", &v) >= 0)
                        l->generation = MAX(l->generation, v);
                if (journal_get_u64(o, "last_job_id", &v) >= 0)
                        l->last_job_id = MAX(l->last_job_id, v);
                return 0;
        case JOURNAL_RECORD_JOB:
        case JOURNAL_RECORD_JOB_V2:
                l->jobs++;
                return load_job(l, o);
        case JOURNAL_RECORD_START:
        case JOURNAL_RECORD_COMMIT:
        case JOURNAL_RECORD_END:
                l->commits += type == JOURNAL_RECORD_COMMIT;
                l->ends += type == JOURNAL_RECORD_END;
                return l->jj ? load_job_record(l->jj, type, o) : 0;
        default:
                /* A newer coordinator's: what this one knows still holds. */
                log_debug("Job journal: record of unknown type %" PRIu32 " ignored.", type);
                return 0;
        }
}

static int load_record(uint64_t seqnum, uint32_t type, const void *payload, size_t size, void *userdata) {
        Loader *l = userdata;
        _cleanup_json_ json_object *o = NULL;
        json_tokener *tok;
        int r;

        l->records++;
        l->bytes += RECORD_HEADER_SIZE + size;
        tok = json_tokener_new();
        if (!tok)
                return log_oom();
        o = json_tokener_parse_ex(tok, payload, (int) MIN(size, (size_t) INT_MAX));
        if (json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(o, json_type_object))
                r = -EBADMSG;
        else
                r = load_json(l, type, o);
        json_tokener_free(tok);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(r, "Job journal: record %" PRIu64 " (type %" PRIu32 ") is not valid.",
                                       seqnum, type);
        return 0;
}

/* Verifies the committed tasks of a job that has not ended: those whose files are gone or
 * changed run again. */
static void verify_commits(JournalJob *e) {
        Job *j = e->job;

        for (unsigned i = 0; e->commits && i < j->nmap + j->nreduce; i++) {
                _cleanup_free_ char *file = NULL;
                Task *t = &j->tasks[i];

                if (!e->commits[i])
                        continue;
                bool verified = journal_commit_verify(j, t, e->commits[i], &file) >= 0;
                /* The counters of a task that runs again are counted when it commits again. */
                if (journal_commit_apply_counters(j, e->commits[i], verified) < 0)
                        log_notice("Job %s: the counters of %s task %u are not valid; left out.", j->id,
                                   task_kind_to_string(t->kind), t->index);
                if (!verified) {
                        log_notice("Job %s: %s is missing or changed since %s task %u was committed; running "
                                   "the task again.",
                                   j->id, file ?: "a file", task_kind_to_string(t->kind), t->index);
                        json_object_put(e->commits[i]);
                        e->commits[i] = NULL;
                        continue;
                }
                job_mark_done(j, t);
        }
}

/* Drops the oldest ended jobs beyond keep_jobs. */
static void drop_old_jobs(JobJournal *jj) {
        size_t ended = 0, k = 0;

        for (size_t i = 0; i < jj->n_jobs; i++)
                ended += job_ended(jj->jobs[i].job);
        for (size_t i = 0; i < jj->n_jobs; i++) {
                JournalJob *e = &jj->jobs[i];

                if (job_ended(e->job) && ended > jj->keep_jobs) {
                        ended--;
                        journal_job_drop_commits(e);
                        job_free(e->job);
                        continue;
                }
                jj->jobs[k++] = *e;
        }
        jj->n_jobs = k;
}

/* The loaded jobs join the scheduler (which owns them from then on). */
static int restore_jobs(JobJournal *jj) {
        _cleanup_free_ Job **jobs = NULL;
        size_t n;
        int r = 0;

        drop_old_jobs(jj);
        n = jj->n_jobs;
        jobs = calloc(MAX(n, 1U), sizeof(Job *));
        if (!jobs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                jobs[i] = jj->jobs[i].job;
                if (!job_ended(jobs[i]))
                        verify_commits(&jj->jobs[i]);
                else if (jj->jobs[i].files_dropped)
                        job_drop_files(jobs[i]);
        }

        /* Adding a job tells the observers, and the journal's own may change jj->jobs. */
        jj->loading = true;
        for (size_t i = 0; i < n; i++) {
                if (r >= 0)
                        r = scheduler_add_job(jj->scheduler, jobs[i]);
                if (r < 0) {
                        JournalJob *e = find_by_job(jj, jobs[i]);
                        if (e)
                                journal_job_remove(jj, e);
                        job_free(jobs[i]);
                }
        }
        jj->loading = false;
        scheduler_trim_ended_files(jj->scheduler);
        return r;
}

/* Opening. */

static int journal_load(JobJournal *jj, const JobJournalOptions *opts) {
        Loader loader = { .jj = jj };
        uint64_t after = 0;
        pid_t holder;
        int r;

        state_dir_wait_orphaned_lock(opts->directory);
        r = state_dir_open(opts->directory, &jj->dir, &holder);
        if (r == -EBUSY)
                return log_error_errno(r, "Refusing to start: another mrkv-coordinator%s keeps its journal in %s.",
                                       holder > 0 ? " (see above)" : "", opts->directory);
        if (r < 0)
                return log_error_errno(r, "Failed to open the job journal in %s: %m", opts->directory);
        (void) state_dir_remove_tmp(state_dir_fd(jj->dir));

        r = snapshot_load(state_dir_fd(jj->dir), state_dir_path(jj->dir), load_record, &loader, &after);
        if (r < 0)
                return log_error_errno(r, "Failed to load the job journal's snapshot in %s: %m",
                                       state_dir_path(jj->dir));
        loader.bytes = 0;
        r = wal_open(state_dir_fd(jj->dir), state_dir_path(jj->dir), after,
                     &(const WalOptions) { .sync_mode = WAL_SYNC_ALWAYS }, load_record, &loader, &jj->wal);
        if (r == -EBADMSG)
                return log_error_errno(r, "The job journal in %s is damaged (see above); mrkv-coordinator "
                                       "--check-journal reports and --repair-journal cuts the damage. Refusing "
                                       "to start.",
                                       state_dir_path(jj->dir));
        if (r < 0)
                return log_error_errno(r, "Failed to open the job journal in %s: %m", state_dir_path(jj->dir));

        jj->log_bytes_loaded = loader.bytes;
        jj->submitter->last_job_id = (unsigned) MIN(MAX(loader.last_job_id, (uint64_t) jj->submitter->last_job_id),
                                                   (uint64_t) UINT_MAX);
        /* Attempt numbers of generation G start above G << 16, within 32 bits. */
        jj->generation = loader.generation + 1 >= (1U << (32 - JOB_JOURNAL_ATTEMPT_SHIFT))
                                 ? 1 : (unsigned) loader.generation + 1;
        return 0;
}

/* The new generation is durable before the first task of this run is handed out. */
static int journal_start_generation(JobJournal *jj) {
        int r;

        r = append_meta(jj);
        if (r >= 0)
                r = wal_sync(jj->wal);
        if (r < 0)
                return log_error_errno(r, "Failed to write the job journal in %s: %m", state_dir_path(jj->dir));
        jj->committed = wal_last_seqnum(jj->wal);
        return 0;
}

static int journal_watch(JobJournal *jj) {
        int r;

        r = sd_event_add_io(jj->event, &jj->wal_source, wal_get_event_fd(jj->wal), EPOLLIN, on_wal_event, jj);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the job journal: %m");
        r = sd_event_add_post(jj->event, &jj->commit_source, on_commit, jj);
        if (r < 0)
                return log_error_errno(r, "Failed to add the job journal's commit source: %m");
        return 0;
}

int job_journal_open(sd_event *event, Scheduler *scheduler, JobSubmitter *submitter,
                     const JobJournalOptions *opts, JobJournal **ret) {
        _cleanup_(job_journal_freep) JobJournal *jj = NULL;
        uint64_t started = now_usec();
        size_t ended = 0;
        int r;

        assert(event && scheduler && submitter && opts && opts->directory && ret);

        jj = calloc(1, sizeof(*jj));
        if (!jj)
                return log_oom();
        jj->event = sd_event_ref(event);
        jj->scheduler = scheduler;
        jj->submitter = submitter;
        jj->keep_jobs = opts->keep_jobs;
        jj->compact_size = opts->compact_size ?: JOB_JOURNAL_COMPACT_SIZE_DEFAULT;

        r = journal_load(jj, opts);
        if (r < 0)
                return r;
        r = journal_start_generation(jj);
        if (r < 0)
                return r;
        r = scheduler_subscribe(scheduler, on_scheduler_event, jj);
        if (r < 0)
                return log_oom();
        r = restore_jobs(jj);
        if (r < 0)
                return log_error_errno(r, "Failed to restore the journal's jobs: %m");
        r = journal_watch(jj);
        if (r < 0)
                return r;

        for (size_t i = 0; i < jj->n_jobs; i++)
                ended += job_ended(jj->jobs[i].job);
        log_info("Job journal %s: %zu job(s) running or queued, %zu ended, generation %u, loaded in %" PRIu64
                 " ms.",
                 state_dir_path(jj->dir), jj->n_jobs - ended, ended, jj->generation,
                 (now_usec() - started) / USEC_PER_MSEC);
        *ret = TAKE_PTR(jj);
        return 0;
}

JobJournal *job_journal_free(JobJournal *jj) {
        if (!jj)
                return NULL;
        if (jj->wal && wal_error(jj->wal) == 0) {
                int r = wal_sync(jj->wal);
                if (r < 0)
                        log_error_errno(r, "Failed to sync the job journal at exit: %m");
        }
        snapshot_done(jj);
        if (jj->scheduler)
                scheduler_unsubscribe(jj->scheduler, on_scheduler_event);
        while (jj->waiters) {
                Waiter *w = jj->waiters;
                waiter_pop(jj, w);
                w->cb(NULL, w->userdata, -ECANCELED);
                free(w);
        }
        for (size_t i = 0; i < jj->n_jobs; i++)
                journal_job_drop_commits(&jj->jobs[i]);
        free(jj->jobs);
        sd_event_source_disable_unref(jj->wal_source);
        sd_event_source_disable_unref(jj->commit_source);
        wal_free(jj->wal);
        state_dir_free(jj->dir);
        sd_event_unref(jj->event);
        return mfree(jj);
}

/* --check-journal and --repair-journal */

int job_journal_check(const char *directory, bool repair) {
        static const StateCheckWords words = {
                .daemon = "coordinator",
                .items = "jobs",
                .repair_option = "--repair-journal",
        };
        Loader loader = {};

        return state_check(directory, repair, load_record, &loader, &loader.jobs, &words);
}
