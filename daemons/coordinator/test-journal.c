/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The job journal (journal.c) on a real directory and event loop: what a restart brings
 * back (queued, running and ended jobs, committed tasks whose files are unchanged, a
 * new generation of attempts), retention and compaction, a torn tail at every offset
 * of the last record, and damage in the middle (refused, reported, repaired). */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "journal-record.h"
#include "journal.h"
#include "log.h"
#include "macro.h"
#include "mr-files.h"
#include "state-dir.h"
#include "strv.h"
#include "test-state-util.h"

typedef struct Env {
        sd_event *event;
        Scheduler *scheduler;
        JobSubmitter submitter;
        JobJournal *journal;
        char *journal_dir;
} Env;

static void on_assign(Worker *w, Job *j, Task *t, void *userdata) {
}

static const SchedulerCallbacks callbacks = { .assign = on_assign };

static char *input; /* an input file of every job */

/* A coordinator's model and journal on state directory state: returns job_journal_open()'s result. */
static int env_open(Env *e, const char *state, size_t keep_jobs, uint64_t compact_size) {
        *e = (Env) {};
        ck_assert_int_ge(sd_event_new(&e->event), 0);
        ck_assert_int_ge(scheduler_new(&callbacks, NULL, &e->scheduler), 0);
        scheduler_set_max_ended_jobs(e->scheduler, keep_jobs);
        e->submitter = (JobSubmitter) {
                .scheduler = e->scheduler,
                .state_dir = strdup(state),
                .default_nreduce = 2,
                .default_task_timeout = 10000000,
                .max_files = JOB_SUBMITTER_MAX_FILES_DEFAULT,
                .max_map_tasks = JOB_SUBMITTER_MAX_MAP_TASKS_DEFAULT,
                .backup_tasks = true,
        };
        ck_assert_int_ge(asprintf(&e->journal_dir, "%s/journal", state), 0);
        (void) mkdir(state, 0755);
        return job_journal_open(e->event, e->scheduler, &e->submitter,
                                &(const JobJournalOptions) {
                                        .directory = e->journal_dir,
                                        .keep_jobs = keep_jobs,
                                        .compact_size = compact_size,
                                },
                                &e->journal);
}

static void env_close(Env *e) {
        e->journal = job_journal_free(e->journal);
        e->scheduler = scheduler_free(e->scheduler);
        job_submitter_done(&e->submitter);
        e->event = sd_event_unref(e->event);
        free(e->journal_dir);
}

static void on_durable(void *owner, void *userdata, int error) {
        *(int *) userdata = error < 0 ? error : 1;
}

/* Runs the loop until what was appended so far is durable. */
static void env_sync(Env *e) {
        int done = 0;

        ck_assert_int_ge(job_journal_wait(e->journal, NULL, on_durable, &done), 0);
        for (int i = 0; i < 5000 && done == 0; i++)
                ck_assert_int_ge(sd_event_run(e->event, 1000), 0);
        ck_assert_int_eq(done, 1);
}

static Job *env_submit_request(Env *e, const JobOwner *owner, const JobRequest *req) {
        char *reason = NULL;
        Job *j;

        ck_assert_int_ge(job_submit(&e->submitter, owner, req, &j, &reason), 0);
        ck_assert_ptr_null(reason);
        return j;
}

static Job *env_submit_as(Env *e, const JobOwner *owner, const char *workdir) {
        return env_submit_request(e, owner, &(const JobRequest) {
                                                    .app = "wc",
                                                    .files = (char *[]) { input, input, NULL },
                                                    .n_files = 2,
                                                    .nreduce = 2,
                                                    .workdir = workdir,
                                                    .timeout = 10000000,
                                                    .combine = true,
                                            });
}

static Job *env_submit(Env *e) {
        return env_submit_as(e, &(JobOwner) { .uid = geteuid(), .gid = getegid() }, NULL);
}

static void write_file(const char *dir, const char *name, const char *content) {
        _cleanup_free_ char *path = NULL;
        FILE *f;

        ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs(content, f);
        ck_assert_int_eq(fclose(f), 0);
}

/* Map task m of j runs and commits as a worker's would, through the journal, with these
 * counters (NULL: none). */
static void env_commit_map_counted(Env *e, Job *j, unsigned m, const JobCounters *counters) {
        char name[MR_NAME_MAX];
        Task *t;

        ck_assert_int_eq(job_assign(j, e, 0, &t), 1);
        ck_assert_uint_eq(t->index, m);
        mr_intermediate_name(name, m);
        write_file(j->workdir, name, "word 1\n");
        ck_assert_int_ge(job_journal_commit_task(e->journal, j, t, t->attempt, counters), 0);
        ck_assert_int_eq(t->state, TASK_COMMITTING);
        /* No other attempt may complete it meanwhile. */
        ck_assert(!job_may_complete(j, t, t->attempt));
        env_sync(e);
        ck_assert_int_eq(scheduler_finish_task(e->scheduler, j, t, t->attempt, true, NULL, counters), 1);
}

static void env_commit_map(Env *e, Job *j, unsigned m) {
        env_commit_map_counted(e, j, m, NULL);
}

static char *state_new(void) {
        _cleanup_free_ char *base = test_dir_new();
        char *state;

        ck_assert_int_ge(asprintf(&state, "%s/state", base), 0);
        return state;
}

START_TEST(test_restart) {
        _cleanup_free_ char *state = state_new(), *workdir = test_dir_new();
        /* A job of another user, in a directory of theirs (as root; else one's own). */
        JobOwner other = { .uid = geteuid() == 0 ? 4242 : geteuid(), .gid = geteuid() == 0 ? 4243 : getegid() };
        unsigned old_attempt;
        Env e;
        Job *a, *b, *c;

        ck_assert_int_eq(chown(workdir, other.uid, other.gid), 0);
        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        ck_assert_uint_eq(job_journal_generation(e.journal), 1);
        a = env_submit(&e);
        b = env_submit(&e);
        c = env_submit_as(&e, &other, workdir);
        env_commit_map(&e, a, 0);
        /* Map 1 of a is in flight when the coordinator stops. */
        ck_assert_int_eq(job_assign(a, &e, 0, &(Task *) { NULL }), 1);
        old_attempt = job_find_task(a, TASK_MAP, 1)->attempt;
        ck_assert_int_ge(scheduler_cancel_job(e.scheduler, b), 0);
        env_sync(&e);
        (void) c;
        env_close(&e);

        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        ck_assert_uint_eq(job_journal_generation(e.journal), 2);
        ck_assert_uint_eq(e.scheduler->n_jobs, 3);
        a = scheduler_find_job(e.scheduler, "1");
        b = scheduler_find_job(e.scheduler, "2");
        c = scheduler_find_job(e.scheduler, "3");
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(a->state, JOB_MAPPING);
        ck_assert_uint_eq(a->done[TASK_MAP], 1);
        ck_assert_int_eq(job_find_task(a, TASK_MAP, 0)->state, TASK_DONE);
        ck_assert_int_eq(job_find_task(a, TASK_MAP, 1)->state, TASK_IDLE);
        ck_assert_int_eq(b->state, JOB_CANCELLED);
        ck_assert_uint_ne(b->finish_time, 0);
        ck_assert_str_eq(job_display_state(c), "queued");
        ck_assert_uint_ne(c->submit_time, 0);
        ck_assert_uint_eq(c->owner_uid, other.uid);
        ck_assert_uint_eq(c->owner_gid, other.gid);
        ck_assert_str_eq(c->workdir, workdir);
        /* The attempt handed out before the restart is stale; this run's are numbered above. */
        ck_assert_uint_eq(a->attempt_base, 2U << JOB_JOURNAL_ATTEMPT_SHIFT);
        ck_assert(!job_may_complete(a, job_find_task(a, TASK_MAP, 1), old_attempt));
        ck_assert_int_eq(job_assign(a, &e, 0, &(Task *) { NULL }), 1);
        ck_assert_uint_eq(job_find_task(a, TASK_MAP, 1)->attempt, (2U << JOB_JOURNAL_ATTEMPT_SHIFT) + 1);
        /* Ids go on. */
        ck_assert_str_eq(env_submit(&e)->id, "4");
        env_close(&e);
}
END_TEST

START_TEST(test_changed_file_runs_again) {
        _cleanup_free_ char *state = state_new(), *path = NULL;
        Env e;
        Job *a;

        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        a = env_submit(&e);
        env_commit_map(&e, a, 0);
        env_commit_map(&e, a, 1);
        ck_assert_int_eq(a->state, JOB_REDUCING);
        ck_assert_int_ge(asprintf(&path, "%s/mr-1", a->workdir), 0);
        env_close(&e);

        /* mr-1 is rewritten: map 1 runs again, map 0 does not. */
        ck_assert_int_eq(truncate(path, 3), 0);
        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        a = scheduler_find_job(e.scheduler, "1");
        ck_assert_int_eq(a->state, JOB_MAPPING);
        ck_assert_int_eq(job_find_task(a, TASK_MAP, 0)->state, TASK_DONE);
        ck_assert_int_eq(job_find_task(a, TASK_MAP, 1)->state, TASK_IDLE);
        env_close(&e);

        /* Removed: the same. */
        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        ck_assert_uint_eq(scheduler_find_job(e.scheduler, "1")->done[TASK_MAP], 1);
        env_close(&e);
}
END_TEST

/* Runs the loop until the journal has written a snapshot. */
static void env_wait_snapshot(Env *e) {
        _cleanup_close_ int fd = -EBADF;

        env_sync(e);
        fd = test_dir_open(e->journal_dir);
        for (int i = 0; i < 5000 && test_count_files(fd, "snap-", ".snap") == 0; i++)
                ck_assert_int_ge(sd_event_run(e->event, 1000), 0);
        ck_assert_uint_ge(test_count_files(fd, "snap-", ".snap"), 1);
}

START_TEST(test_retention_and_compaction) {
        _cleanup_free_ char *state = state_new();
        Env e;

        /* Every append outgrows the log's limit: snapshots follow one another. */
        ck_assert_int_eq(env_open(&e, state, 2, 1), 0);
        for (int i = 0; i < 5; i++)
                ck_assert_int_ge(scheduler_cancel_job(e.scheduler, env_submit(&e)), 0);
        env_submit(&e);
        env_wait_snapshot(&e);
        ck_assert_uint_eq(e.scheduler->n_jobs, 3);
        env_close(&e);

        ck_assert_int_eq(env_open(&e, state, 2, 0), 0);
        ck_assert_uint_eq(e.scheduler->n_jobs, 3);
        ck_assert_ptr_null(scheduler_find_job(e.scheduler, "3"));
        ck_assert_int_eq(scheduler_find_job(e.scheduler, "5")->state, JOB_CANCELLED);
        ck_assert_str_eq(job_display_state(scheduler_find_job(e.scheduler, "6")), "queued");
        env_close(&e);

        /* Fewer kept at the next start. */
        ck_assert_int_eq(env_open(&e, state, 0, 0), 0);
        ck_assert_uint_eq(e.scheduler->n_jobs, 1);
        ck_assert_str_eq(e.scheduler->jobs[0]->id, "6");
        env_close(&e);
}
END_TEST

START_TEST(test_dropped_file_list) {
        _cleanup_free_ char *state = state_new();
        Env e;
        Job *a;

        /* An ended job's file list dropped for the memory budget: its record in a snapshot
         * has none, and it comes back ended and without one. */
        ck_assert_int_eq(env_open(&e, state, 100, 1), 0);
        e.scheduler->max_ended_files_size = 1;
        a = env_submit(&e);
        ck_assert_int_ge(scheduler_cancel_job(e.scheduler, a), 0);
        ck_assert_ptr_null(a->files);
        env_submit(&e);
        env_wait_snapshot(&e);
        env_close(&e);

        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        a = scheduler_find_job(e.scheduler, "1");
        ck_assert_int_eq(a->state, JOB_CANCELLED);
        ck_assert_ptr_null(a->files);
        ck_assert_uint_eq(a->nmap, 2);
        ck_assert_str_eq(scheduler_find_job(e.scheduler, "2")->files[1], input);
        env_close(&e);
}
END_TEST

/* The journal's one log segment. */
static char *segment_name(int fd) {
        _cleanup_strv_free_ char **names = NULL;
        char *name;

        ck_assert_int_ge(state_dir_list(fd, "log-", ".wal", &names), 0);
        ck_assert_ptr_nonnull(names);
        ck_assert_ptr_nonnull(names[0]);
        ck_assert_ptr_null(names[1]);
        name = strdup(names[0]);
        ck_assert_ptr_nonnull(name);
        return name;
}

/* Where the records of a log segment end (the always mode writes zeros ahead of them). */
static uint64_t records_end(int fd, const char *segment) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t size;

        test_file_read(fd, segment, &data, &size);
        return test_records_end(data, size);
}

/* A journal holding jobs 1 and 2; [*ret_before, *ret_after): job 2's record in the log. */
static void journal_two_jobs(const char *state, char **ret_segment, uint64_t *ret_before, uint64_t *ret_after) {
        _cleanup_close_ int fd = -EBADF;
        Env e;

        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        env_submit(&e);
        env_sync(&e);
        fd = test_dir_open(e.journal_dir);
        *ret_segment = segment_name(fd);
        *ret_before = records_end(fd, *ret_segment);
        env_submit(&e);
        env_sync(&e);
        *ret_after = records_end(fd, *ret_segment);
        env_close(&e);
}

/* A copy of the journal in state whose segment is data, cut at cut or zeroed from it. */
static void open_torn_copy(int from, const char *segment, const uint8_t *data, size_t size, uint64_t cut,
                           bool zeroed) {
        _cleanup_free_ char *copy = state_new(), *copy_journal = NULL;
        _cleanup_free_ uint8_t *torn = malloc(size);
        _cleanup_close_ int to = -EBADF;
        Env e;

        ck_assert_int_ge(asprintf(&copy_journal, "%s/journal", copy), 0);
        ck_assert_int_eq(mkdir(copy, 0755), 0);
        ck_assert_int_eq(mkdir(copy_journal, 0700), 0);
        to = test_dir_open(copy_journal);
        test_dir_copy(from, to);
        memcpy(torn, data, size);
        if (zeroed)
                memset(torn + cut, 0, size - cut);
        test_file_write(to, segment, torn, zeroed ? size : cut);

        /* The torn record is cut away; what came before it is all there. */
        ck_assert_int_eq(env_open(&e, copy, 100, 0), 0);
        ck_assert_uint_eq(e.scheduler->n_jobs, 1);
        ck_assert_ptr_nonnull(scheduler_find_job(e.scheduler, "1"));
        env_close(&e);
}

START_TEST(test_torn_tail_every_offset) {
        _cleanup_free_ char *state = state_new(), *segment = NULL, *journal = NULL;
        _cleanup_free_ uint8_t *data = NULL;
        _cleanup_close_ int from = -EBADF;
        uint64_t before, after;
        size_t size;

        journal_two_jobs(state, &segment, &before, &after);
        ck_assert_uint_gt(after, before);
        ck_assert_int_ge(asprintf(&journal, "%s/journal", state), 0);
        from = test_dir_open(journal);
        test_file_read(from, segment, &data, &size);
        /* A few zeroed KiB after the records stand for the zero-filled MiB. */
        size = MIN(size, (size_t) after + 4096);

        /* Job 2's record written up to every byte: the file ends there, or zeros follow. */
        for (uint64_t cut = before; cut < after; cut++) {
                open_torn_copy(from, segment, data, size, cut, false);
                open_torn_copy(from, segment, data, size, cut, true);
        }
}
END_TEST

START_TEST(test_damage_in_the_middle) {
        _cleanup_free_ char *state = state_new(), *segment = NULL, *journal = NULL;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *data = NULL;
        uint64_t before, after;
        size_t size;
        Env e;

        journal_two_jobs(state, &segment, &before, &after);
        ck_assert_int_ge(asprintf(&journal, "%s/journal", state), 0);
        fd = test_dir_open(journal);

        /* A byte of job 1's record, which job 2's follows. */
        test_file_read(fd, segment, &data, &size);
        data[before - 10] ^= 0x20;
        test_file_write(fd, segment, data, size);

        ck_assert_int_eq(env_open(&e, state, 100, 0), -EBADMSG);
        env_close(&e);
        ck_assert_int_eq(job_journal_check(journal, false), -EBADMSG);
        ck_assert_int_eq(job_journal_check(journal, true), 0);
        ck_assert_int_eq(job_journal_check(journal, false), 0);

        /* Cut at the damage: job 1's record and everything after it are gone, the rest loads. */
        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        ck_assert_uint_eq(e.scheduler->n_jobs, 0);
        env_close(&e);
}
END_TEST

static void setup(void) {
        _cleanup_free_ char *dir = test_dir_new();

        free(input);
        ck_assert_int_ge(asprintf(&input, "%s/input.txt", dir), 0);
        write_file(dir, "input.txt", "some words\n");
}

static void check_split_job(Job *a) {
        ck_assert_uint_eq(a->nfiles, 2);
        ck_assert_uint_eq(a->nmap, 4);
        ck_assert_uint_eq(a->split_size, 100);
        ck_assert_uint_eq(job_find_task(a, TASK_MAP, 1)->file, 0);
        ck_assert_uint_eq(job_find_task(a, TASK_MAP, 1)->offset, 100);
        ck_assert_uint_eq(job_find_task(a, TASK_MAP, 1)->length, 100);
        ck_assert_uint_eq(job_find_task(a, TASK_MAP, 2)->length, 50);
        ck_assert_uint_eq(job_find_task(a, TASK_MAP, 3)->file, 1);
        ck_assert_uint_eq(job_find_task(a, TASK_MAP, 3)->length, TASK_WHOLE_FILE);
        ck_assert_str_eq(a->app, "streaming");
        ck_assert_str_eq(a->mapper, "./map.py");
        ck_assert_str_eq(a->reducer, "./reduce.py 'a b'");
        ck_assert(a->backup_tasks);
        ck_assert(!a->combine);
}

static JobCounters records(uint64_t n) {
        JobCounters c = {};

        c.v[COUNTER_MAP_INPUT_RECORDS] = n;
        c.v[COUNTER_SHUFFLE_BYTES] = 2 * n;
        return c;
}

START_TEST(test_splits_and_counters_restart) {
        _cleanup_free_ char *state = state_new();
        JobCounters c5 = records(5), c7 = records(7), c11 = records(11), c13 = records(13);
        Task *t;
        Env e;
        Job *a;

        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        a = env_submit_request(&e, &(JobOwner) { .uid = geteuid(), .gid = getegid() },
                               &(const JobRequest) {
                                       .app = "",
                                       .files = (char *[]) { input, input, NULL },
                                       .n_files = 2,
                                       .sizes = (const uint64_t[]) { 250, 0 },
                                       .split_size = 100,
                                       .nreduce = 1,
                                       .timeout = 10000000,
                                       .mapper = "./map.py",
                                       .reducer = "./reduce.py 'a b'",
                                       .backup_tasks = true,
                                       .combine = false,
                               });
        check_split_job(a);
        env_commit_map_counted(&e, a, 0, &c5);
        /* A failed attempt: the coordinator's own counter, in the next COMMIT record. */
        ck_assert_int_eq(job_assign(a, &e, 0, &t), 1);
        ck_assert_int_eq(scheduler_finish_task(e.scheduler, a, t, t->attempt, false, "boom", &c13), 0);
        env_commit_map_counted(&e, a, 1, &c7);
        /* Map 2 is in flight when the coordinator stops: its counters never count. */
        ck_assert_int_eq(job_assign(a, &e, 0, &t), 1);
        env_sync(&e);
        env_close(&e);

        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        a = scheduler_find_job(e.scheduler, "1");
        ck_assert_ptr_nonnull(a);
        check_split_job(a);
        ck_assert_uint_eq(a->done[TASK_MAP], 2);
        ck_assert_uint_eq(a->counters.v[COUNTER_MAP_INPUT_RECORDS], 12);
        ck_assert_uint_eq(a->counters.v[COUNTER_SHUFFLE_BYTES], 24);
        ck_assert_uint_eq(a->counters.v[COUNTER_TASK_ATTEMPTS_FAILED], 1);
        ck_assert_uint_eq(a->counters.v[COUNTER_TASK_ATTEMPTS], 3);

        /* The rest of the job, then a snapshot: the END record has the counters. */
        env_commit_map_counted(&e, a, 2, &c11);
        env_commit_map_counted(&e, a, 3, &c13);
        ck_assert_int_eq(a->state, JOB_REDUCING);
        ck_assert_uint_eq(a->counters.v[COUNTER_MAP_INPUT_RECORDS], 36);
        ck_assert_int_eq(job_assign(a, &e, 0, &t), 1);
        ck_assert_int_ge(job_journal_commit_task(e.journal, a, t, t->attempt, &c5), 0);
        env_sync(&e);
        ck_assert_int_eq(scheduler_finish_task(e.scheduler, a, t, t->attempt, true, NULL, &c5), 1);
        ck_assert_int_eq(a->state, JOB_DONE);
        env_sync(&e);
        env_close(&e);

        ck_assert_int_eq(env_open(&e, state, 100, 1), 0);
        a = scheduler_find_job(e.scheduler, "1");
        ck_assert_int_eq(a->state, JOB_DONE);
        ck_assert_uint_eq(a->counters.v[COUNTER_MAP_INPUT_RECORDS], 41);
        ck_assert_uint_eq(a->counters.v[COUNTER_TASK_ATTEMPTS_FAILED], 1);
        ck_assert_uint_eq(a->counters.v[COUNTER_TASK_ATTEMPTS], 3 + 3);
        env_submit(&e);
        env_wait_snapshot(&e);
        env_close(&e);

        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        a = scheduler_find_job(e.scheduler, "1");
        ck_assert_int_eq(a->state, JOB_DONE);
        check_split_job(a);
        ck_assert_uint_eq(a->counters.v[COUNTER_MAP_INPUT_RECORDS], 41);
        ck_assert_uint_eq(a->counters.v[COUNTER_SHUFFLE_BYTES], 82);
        env_close(&e);
}
END_TEST

/* The next task of j runs as a worker's would: its files are renamed into place and its
 * COMMIT record appended, not yet durable. Returns the task. */
static Task *env_place_next(Env *e, Job *j, TaskKind kind, unsigned index, const JobCounters *counters) {
        char name[MR_NAME_MAX];
        Task *t;

        ck_assert_int_eq(job_assign(j, e, 0, &t), 1);
        ck_assert_int_eq(t->kind, kind);
        ck_assert_uint_eq(t->index, index);
        if (kind == TASK_MAP)
                mr_intermediate_name(name, index);
        else
                mr_output_name(name, index);
        write_file(j->workdir, name, "word 1\n");
        ck_assert_int_ge(job_journal_commit_task(e->journal, j, t, t->attempt, counters), 0);
        return t;
}

/* The coordinator is killed after it handed out a reduce task, and a reduce committed,
 * before the maps' COMMIT records were written: the maps run again, and so does the
 * reduce, whose record follows theirs in the log and was lost with them. */
START_TEST(test_kill_before_map_commits_durable) {
        _cleanup_free_ char *state = state_new();
        JobCounters c3 = records(3);
        int status;
        pid_t pid;
        Env e;
        Job *a;

        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        a = env_submit(&e);
        env_sync(&e);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                env_place_next(&e, a, TASK_MAP, 0, &c3);
                env_place_next(&e, a, TASK_MAP, 1, &c3);
                /* Every map's files are in place: the reduces go out before the sync. */
                ck_assert_int_eq(a->state, JOB_MAPPING);
                ck_assert_uint_eq(a->done[TASK_MAP], 0);
                env_place_next(&e, a, TASK_REDUCE, 0, &c3);
                _exit(EXIT_SUCCESS);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SUCCESS);
        env_close(&e);

        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        a = scheduler_find_job(e.scheduler, "1");
        ck_assert_ptr_nonnull(a);
        ck_assert_int_eq(a->state, JOB_MAPPING);
        for (unsigned i = 0; i < a->nmap + a->nreduce; i++)
                ck_assert_int_eq(a->tasks[i].state, TASK_IDLE);
        ck_assert_uint_eq(a->counters.v[COUNTER_MAP_INPUT_RECORDS], 0);

        /* The same once the map commits are durable and the reduce's is not: only the
         * reduce runs again. */
        env_place_next(&e, a, TASK_MAP, 0, &c3);
        env_place_next(&e, a, TASK_MAP, 1, &c3);
        env_sync(&e);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                env_place_next(&e, a, TASK_REDUCE, 0, &c3);
                _exit(EXIT_SUCCESS);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SUCCESS);
        env_close(&e);

        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        a = scheduler_find_job(e.scheduler, "1");
        ck_assert_int_eq(a->state, JOB_REDUCING);
        ck_assert_uint_eq(a->done[TASK_MAP], 2);
        ck_assert_int_eq(job_find_task(a, TASK_REDUCE, 0)->state, TASK_IDLE);
        ck_assert_uint_eq(a->counters.v[COUNTER_MAP_INPUT_RECORDS], 6);
        env_close(&e);
}
END_TEST

/* The last COMMIT and the job's END share a sync: the END is in the log before the model
 * ends the job, with the counters of every task then committing. A cancel that comes
 * between writes its own END, which a replay keeps. */
START_TEST(test_end_with_last_commit) {
        _cleanup_free_ char *state = state_new();
        JobCounters c3 = records(3);
        Task *r0, *r1;
        Env e;
        Job *a, *b;

        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        a = env_submit(&e);
        b = env_submit(&e);
        env_commit_map_counted(&e, a, 0, &c3);
        env_commit_map_counted(&e, a, 1, &c3);
        r0 = env_place_next(&e, a, TASK_REDUCE, 0, &c3);
        ck_assert(!job_all_in_place(a));
        r1 = env_place_next(&e, a, TASK_REDUCE, 1, &c3);
        ck_assert(job_all_in_place(a));
        ck_assert_int_eq(a->state, JOB_REDUCING);
        for (unsigned i = 0; i < 4; i++)
                env_place_next(&e, b, i < 2 ? TASK_MAP : TASK_REDUCE, i % 2, NULL);
        ck_assert(job_all_in_place(b));
        /* b is cancelled before its records are durable; a's are, and the model of a
         * hears of it only after the restart (the coordinator is stopped first). */
        ck_assert_int_ge(scheduler_cancel_job(e.scheduler, b), 0);
        env_sync(&e);
        (void) r0;
        (void) r1;
        env_close(&e);

        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        a = scheduler_find_job(e.scheduler, "1");
        b = scheduler_find_job(e.scheduler, "2");
        ck_assert_int_eq(a->state, JOB_DONE);
        ck_assert_uint_eq(a->done[TASK_MAP], 2);
        ck_assert_uint_eq(a->done[TASK_REDUCE], 2);
        ck_assert_uint_eq(a->counters.v[COUNTER_MAP_INPUT_RECORDS], 12);
        ck_assert_uint_ne(a->finish_time, 0);
        ck_assert_int_eq(b->state, JOB_CANCELLED);

        /* Live: the records durable, the job is done, and no second END is written. */
        a = env_submit(&e);
        env_commit_map_counted(&e, a, 0, &c3);
        env_commit_map_counted(&e, a, 1, &c3);
        r0 = env_place_next(&e, a, TASK_REDUCE, 0, &c3);
        r1 = env_place_next(&e, a, TASK_REDUCE, 1, &c3);
        env_sync(&e);
        ck_assert_int_eq(scheduler_finish_task(e.scheduler, a, r0, r0->attempt, true, NULL, &c3), 1);
        ck_assert_int_eq(a->state, JOB_REDUCING);
        ck_assert_int_eq(scheduler_finish_task(e.scheduler, a, r1, r1->attempt, true, NULL, &c3), 1);
        ck_assert_int_eq(a->state, JOB_DONE);
        /* Nothing appended since: a wait is answered at once. */
        int done = 0;
        ck_assert_int_ge(job_journal_wait(e.journal, NULL, on_durable, &done), 0);
        ck_assert_int_eq(done, 1);
        ck_assert_uint_eq(a->counters.v[COUNTER_MAP_INPUT_RECORDS], 12);
        env_close(&e);

        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        ck_assert_int_eq(scheduler_find_job(e.scheduler, "3")->state, JOB_DONE);
        env_close(&e);
}
END_TEST

/* Writes the journal of an older coordinator in state: its META record and the JOB record
 * of job 7 (two maps of input, nreduce reduces, in workdir) without the members that came
 * later. Returns its log, open for more records. */
static Wal *old_journal_new(const char *state, const char *workdir, unsigned nreduce) {
        _cleanup_free_ char *journal = NULL, *job = NULL;
        _cleanup_close_ int fd = -EBADF;
        Wal *w = NULL;

        ck_assert_int_ge(asprintf(&journal, "%s/journal", state), 0);
        ck_assert_int_eq(mkdir(state, 0755), 0);
        ck_assert_int_eq(mkdir(journal, 0700), 0);
        fd = test_dir_open(journal);
        ck_assert_int_ge(asprintf(&job, "{\"id\":\"7\",\"workdir\":\"%s\",\"owner_uid\":%u,\"owner_gid\":%u,\"nmap\":2,"
                                        "\"nreduce\":%u,\"timeout\":10000000,\"max_failures\":3,\"submit_time\":5,"
                                        "\"app\":\"wc\",\"files\":[\"%s\",\"%s\"]}",
                                  workdir, (unsigned) geteuid(), (unsigned) getegid(), nreduce, input, input),
                         0);
        ck_assert_int_eq(wal_open(fd, journal, 0, &(const WalOptions) { .sync_mode = WAL_SYNC_ALWAYS }, NULL, NULL, &w),
                         0);
        ck_assert_int_ge(wal_append(w, JOURNAL_RECORD_META, "{\"generation\":3,\"last_job_id\":7}", 33, NULL), 0);
        ck_assert_int_ge(wal_append(w, JOURNAL_RECORD_JOB, job, strlen(job), NULL), 0);
        return w;
}

/* A journal of a coordinator from before splits and counters: JOB, START, COMMIT and END
 * records without their members. */
START_TEST(test_old_records_load) {
        _cleanup_free_ char *state = state_new(), *workdir = test_dir_new();
        Wal *w = NULL;
        Env e;
        Job *a;

        w = old_journal_new(state, workdir, 1);
        ck_assert_int_ge(wal_sync(w), 0);
        w = wal_free(w);

        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        a = scheduler_find_job(e.scheduler, "7");
        ck_assert_ptr_nonnull(a);
        ck_assert_uint_eq(a->nmap, 2);
        ck_assert_uint_eq(a->nfiles, 2);
        ck_assert_uint_eq(a->split_size, 0);
        ck_assert_ptr_null(a->sizes);
        ck_assert_ptr_null(a->mapper);
        ck_assert(!a->backup_tasks);
        ck_assert(a->combine); /* the switch came later: such jobs combined */
        ck_assert_uint_eq(job_find_task(a, TASK_MAP, 1)->length, TASK_WHOLE_FILE);
        env_commit_map(&e, a, 0);
        ck_assert_uint_eq(a->counters.v[COUNTER_MAP_INPUT_RECORDS], 0);
        env_close(&e);
}
END_TEST

/* A COMMIT record's entry for file name in dir as it is now: [size, mtime_ns, inode]. */
static char *file_entry(const char *dir, const char *name) {
        _cleanup_free_ char *path = NULL;
        struct stat st;
        char *s;

        ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_ge(asprintf(&s, "[%llu,%llu,%llu]", (unsigned long long) st.st_size,
                                  (unsigned long long) st.st_mtim.tv_sec * 1000000000ULL +
                                          (unsigned long long) st.st_mtim.tv_nsec,
                                  (unsigned long long) st.st_ino),
                         0);
        return s;
}

/* A journal of the version that wrote a file per map and reduce partition (mr-M-R): its
 * map COMMIT lists nreduce files. The job loads; that map runs again, its old files left
 * alone; a map committed in today's form (one file, mr-M) stays done. */
START_TEST(test_old_map_commit_runs_again) {
        _cleanup_free_ char *state = state_new(), *workdir = test_dir_new();
        _cleanup_free_ char *old0 = NULL, *old1 = NULL, *new1 = NULL, *commit0 = NULL, *commit1 = NULL;
        _cleanup_free_ char *path = NULL;
        Wal *w = NULL;
        Env e;
        Job *a;

        write_file(workdir, "mr-0-0", "word 1\n");
        write_file(workdir, "mr-0-1", "other 1\n");
        write_file(workdir, "mr-1", "both partitions and an index\n");
        old0 = file_entry(workdir, "mr-0-0");
        old1 = file_entry(workdir, "mr-0-1");
        new1 = file_entry(workdir, "mr-1");
        ck_assert_int_ge(asprintf(&commit0, "{\"job\":\"7\",\"kind\":\"map\",\"task\":0,\"attempt\":1,\"files\":[%s,%s]}",
                                  old0, old1), 0);
        ck_assert_int_ge(asprintf(&commit1, "{\"job\":\"7\",\"kind\":\"map\",\"task\":1,\"attempt\":2,\"files\":[%s]}",
                                  new1), 0);
        w = old_journal_new(state, workdir, 2);
        ck_assert_int_ge(wal_append(w, JOURNAL_RECORD_START, "{\"job\":\"7\",\"time\":6}", 21, NULL), 0);
        ck_assert_int_ge(wal_append(w, JOURNAL_RECORD_COMMIT, commit0, strlen(commit0), NULL), 0);
        ck_assert_int_ge(wal_append(w, JOURNAL_RECORD_COMMIT, commit1, strlen(commit1), NULL), 0);
        ck_assert_int_ge(wal_sync(w), 0);
        w = wal_free(w);

        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        a = scheduler_find_job(e.scheduler, "7");
        ck_assert_ptr_nonnull(a);
        ck_assert_int_eq(a->state, JOB_MAPPING);
        ck_assert_int_eq(job_find_task(a, TASK_MAP, 0)->state, TASK_IDLE);
        ck_assert_int_eq(job_find_task(a, TASK_MAP, 1)->state, TASK_DONE);
        ck_assert_uint_eq(a->done[TASK_MAP], 1);
        /* The old files are not the coordinator's to remove. */
        ck_assert_int_ge(asprintf(&path, "%s/mr-0-1", workdir), 0);
        ck_assert_int_eq(access(path, F_OK), 0);
        /* Map 0 runs again and commits in today's form: the job goes on to reduce. */
        env_commit_map(&e, a, 0);
        ck_assert_int_eq(a->state, JOB_REDUCING);
        env_close(&e);

        ck_assert_int_eq(env_open(&e, state, 100, 0), 0);
        ck_assert_int_eq(scheduler_find_job(e.scheduler, "7")->state, JOB_REDUCING);
        env_close(&e);
}
END_TEST

static Suite *journal_suite(void) {
        Suite *s = suite_create("journal");
        TCase *tc = tcase_create("journal");

        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_restart);
        tcase_add_test(tc, test_changed_file_runs_again);
        tcase_add_test(tc, test_retention_and_compaction);
        tcase_add_test(tc, test_dropped_file_list);
        tcase_add_test(tc, test_torn_tail_every_offset);
        tcase_add_test(tc, test_damage_in_the_middle);
        tcase_add_test(tc, test_splits_and_counters_restart);
        tcase_add_test(tc, test_old_records_load);
        tcase_add_test(tc, test_old_map_commit_runs_again);
        tcase_add_test(tc, test_kill_before_map_commits_durable);
        tcase_add_test(tc, test_end_with_last_commit);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        log_set_max_level(LOG_CRIT);
        return test_run(journal_suite());
}
