/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The job model (job.c): which of a job's tasks runs next, when it is taken back, and
 * which finish report counts. Time is a plain number here. */
#include <check.h>

#include "job.h"
#include "macro.h"
#include "unit-test.h"

#define TIMEOUT 10U

/* Workers are opaque owner pointers to the model. */
static int worker_a, worker_b, worker_c;
#define A ((void *) &worker_a)
#define B ((void *) &worker_b)
#define C ((void *) &worker_c)

static Job *job;

static Job *make_job(unsigned nmap, unsigned nreduce, uint64_t timeout) {
        char *files[16];
        char names[16][32];
        Job *j = NULL;

        ck_assert_uint_le(nmap, ELEMENTSOF(files));
        for (unsigned i = 0; i < nmap; i++) {
                snprintf(names[i], sizeof(names[i]), "in-%u.txt", i);
                files[i] = names[i];
        }
        ck_assert_int_eq(job_new("job-1", "wc", "/tmp/work", files, nmap, nreduce, timeout, &j), 0);
        ck_assert_ptr_nonnull(j);
        return j;
}

static void teardown(void) {
        job = job_free(job);
}

/* Assigns and checks which task came out. */
static Task *assign_expect(void *owner, uint64_t now, TaskKind kind, unsigned index, unsigned attempt) {
        Task *t = NULL;

        ck_assert_int_eq(job_assign(job, owner, now, &t), 1);
        ck_assert_ptr_nonnull(t);
        ck_assert_msg(t->kind == kind && t->index == index, "got %s %u, expected %s %u",
                      task_kind_to_string(t->kind), t->index, task_kind_to_string(kind), index);
        ck_assert_uint_eq(t->attempt, attempt);
        ck_assert_int_eq(t->state, TASK_RUNNING);
        ck_assert_ptr_eq(t->runs[0].owner, owner);
        return t;
}

static void assign_none(void *owner, uint64_t now) {
        Task *t = NULL;

        ck_assert_int_eq(job_assign(job, owner, now, &t), 0);
        ck_assert_ptr_null(t);
}

START_TEST(test_new) {
        char *files[] = { (char *) "a", (char *) "b" };
        Job *j = NULL;

        ck_assert_int_eq(job_new("j", NULL, "/w", files, 0, 1, TIMEOUT, &j), -EINVAL);
        ck_assert_int_eq(job_new("j", NULL, "/w", files, 2, 0, TIMEOUT, &j), -EINVAL);
        ck_assert_ptr_null(j);

        job = make_job(2, 3, TIMEOUT);
        ck_assert_str_eq(job->id, "job-1");
        ck_assert_str_eq(job->app, "wc");
        ck_assert_str_eq(job->files[1], "in-1.txt");
        ck_assert_ptr_null(job->files[2]);
        ck_assert_int_eq(job->state, JOB_MAPPING);
        ck_assert(!job_ended(job));
        ck_assert_uint_eq(job_next_deadline(job), UINT64_MAX);

        ck_assert_ptr_eq(job_find_task(job, TASK_MAP, 1), &job->tasks[1]);
        ck_assert_ptr_eq(job_find_task(job, TASK_REDUCE, 0), &job->tasks[2]);
        ck_assert_int_eq(job_find_task(job, TASK_REDUCE, 2)->index, 2);
        ck_assert_ptr_null(job_find_task(job, TASK_MAP, 2));
        ck_assert_ptr_null(job_find_task(job, TASK_REDUCE, 3));
        for (unsigned i = 0; i < 5; i++) {
                ck_assert_int_eq(job->tasks[i].state, TASK_IDLE);
                ck_assert_uint_eq(job->tasks[i].attempt, 0);
        }

        ck_assert_ptr_null(job_free(NULL));
}
END_TEST

START_TEST(test_names) {
        ck_assert_str_eq(task_kind_to_string(TASK_MAP), "map");
        ck_assert_str_eq(task_kind_to_string(TASK_REDUCE), "reduce");
        ck_assert_ptr_null(task_kind_to_string(_TASK_KIND_MAX));
        ck_assert_int_eq(task_kind_from_string("map"), TASK_MAP);
        ck_assert_int_eq(task_kind_from_string("reduce"), TASK_REDUCE);
        ck_assert_int_eq(task_kind_from_string("wait"), -EINVAL);
        ck_assert_int_eq(task_kind_from_string(""), -EINVAL);
        ck_assert_str_eq(job_state_to_string(JOB_MAPPING), "mapping");
        ck_assert_str_eq(job_state_to_string(JOB_REDUCING), "reducing");
        ck_assert_str_eq(job_state_to_string(JOB_DONE), "done");
        ck_assert_str_eq(job_state_to_string(JOB_FAILED), "failed");
        ck_assert_str_eq(job_state_to_string(JOB_CANCELLED), "cancelled");
        ck_assert_ptr_null(job_state_to_string(JOB_CANCELLED + 1));
}
END_TEST

START_TEST(test_maps_before_reduces) {
        Task *m[3], *r[2];

        job = make_job(3, 2, TIMEOUT);
        for (unsigned i = 0; i < 3; i++)
                m[i] = assign_expect(A, 0, TASK_MAP, i, 1);
        /* Every map runs: nothing to hand out, and no reduce before the maps are done. */
        assign_none(B, 0);

        ck_assert_int_eq(job_finish(job, m[0], 1, true, NULL), 1);
        ck_assert_int_eq(job_finish(job, m[2], 1, true, NULL), 1);
        ck_assert_uint_eq(job->done[TASK_MAP], 2);
        ck_assert_int_eq(job->state, JOB_MAPPING);
        assign_none(B, 1);

        ck_assert_int_eq(job_finish(job, m[1], 1, true, NULL), 1);
        ck_assert_int_eq(job->state, JOB_REDUCING);
        r[0] = assign_expect(B, 2, TASK_REDUCE, 0, 1);
        r[1] = assign_expect(A, 2, TASK_REDUCE, 1, 1);
        assign_none(C, 2);

        ck_assert_int_eq(job_finish(job, r[1], 1, true, NULL), 1);
        ck_assert_int_eq(job->state, JOB_REDUCING);
        ck_assert_int_eq(job_finish(job, r[0], 1, true, NULL), 1);
        ck_assert_uint_eq(job->done[TASK_REDUCE], 2);
        ck_assert_int_eq(job->state, JOB_DONE);
        ck_assert(job_ended(job));

        /* A finished job hands out nothing, ever. */
        ck_assert_int_eq(job_assign(job, C, 3, &r[0]), -ESHUTDOWN);
        ck_assert_uint_eq(job_next_deadline(job), UINT64_MAX);
}
END_TEST

START_TEST(test_attempts_increase) {
        Task *t;

        job = make_job(1, 1, TIMEOUT);
        t = assign_expect(A, 0, TASK_MAP, 0, 1);
        ck_assert_uint_eq(job_expire(job, TIMEOUT), 1);
        ck_assert_int_eq(t->state, TASK_IDLE);
        ck_assert_ptr_null(t->runs[0].owner);
        assign_expect(B, TIMEOUT, TASK_MAP, 0, 2);
        ck_assert_uint_eq(job_release_owner(job, B), 1);
        assign_expect(C, TIMEOUT, TASK_MAP, 0, 3);
        ck_assert_int_eq(job_finish(job, t, 3, true, NULL), 1);
        /* The reduce task's attempts are its own. */
        assign_expect(A, TIMEOUT, TASK_REDUCE, 0, 1);
}
END_TEST

START_TEST(test_timeout) {
        Task *t0, *t1;

        job = make_job(3, 1, TIMEOUT);
        t0 = assign_expect(A, 100, TASK_MAP, 0, 1);
        ck_assert_uint_eq(t0->runs[0].deadline, 100 + TIMEOUT);
        ck_assert_uint_eq(job_next_deadline(job), 100 + TIMEOUT);
        t1 = assign_expect(B, 105, TASK_MAP, 1, 1);
        ck_assert_uint_eq(job_next_deadline(job), 100 + TIMEOUT);

        ck_assert_uint_eq(job_expire(job, 100 + TIMEOUT - 1), 0);
        ck_assert_int_eq(t0->state, TASK_RUNNING);
        /* Due at the deadline itself. */
        ck_assert_uint_eq(job_expire(job, 100 + TIMEOUT), 1);
        ck_assert_int_eq(t0->state, TASK_IDLE);
        ck_assert_int_eq(t1->state, TASK_RUNNING);
        ck_assert_uint_eq(job_next_deadline(job), 105 + TIMEOUT);

        /* The expired task is the first runnable one again, ahead of map 2. */
        assign_expect(C, 111, TASK_MAP, 0, 2);
        ck_assert_uint_eq(job_next_deadline(job), 105 + TIMEOUT);
        ck_assert_uint_eq(job_expire(job, 1000), 2);
        ck_assert_uint_eq(job_next_deadline(job), UINT64_MAX);
        ck_assert_uint_eq(job_expire(job, 1000), 0);
}
END_TEST

START_TEST(test_timeout_saturates) {
        Task *t;

        /* No time-out at all, and a clock near its end: deadlines must not wrap around. */
        job = make_job(2, 1, UINT64_MAX);
        t = assign_expect(A, 5, TASK_MAP, 0, 1);
        ck_assert_uint_eq(t->runs[0].deadline, UINT64_MAX);
        job = job_free(job);

        job = make_job(2, 1, TIMEOUT);
        t = assign_expect(A, UINT64_MAX - 3, TASK_MAP, 0, 1);
        ck_assert_uint_eq(t->runs[0].deadline, UINT64_MAX);
        ck_assert_uint_eq(job_expire(job, UINT64_MAX - 1), 0);
}
END_TEST

START_TEST(test_release_owner) {
        Task *t;

        job = make_job(3, 1, TIMEOUT);
        assign_expect(A, 0, TASK_MAP, 0, 1);
        t = assign_expect(B, 0, TASK_MAP, 1, 1);
        assign_expect(A, 0, TASK_MAP, 2, 1);
        assign_none(C, 0);

        /* A's connection closed: both its tasks are runnable now, long before any deadline. */
        ck_assert_uint_eq(job_release_owner(job, A), 2);
        ck_assert_uint_eq(job_release_owner(job, A), 0);
        ck_assert_int_eq(t->state, TASK_RUNNING);
        ck_assert_ptr_eq(t->runs[0].owner, B);
        assign_expect(C, 1, TASK_MAP, 0, 2);
        assign_expect(C, 1, TASK_MAP, 2, 2);
        assign_none(C, 1);

        /* Releasing an owner leaves done tasks done. */
        ck_assert_int_eq(job_finish(job, t, 1, true, NULL), 1);
        ck_assert_uint_eq(job_release_owner(job, B), 0);
        ck_assert_int_eq(t->state, TASK_DONE);
}
END_TEST

START_TEST(test_superseded_attempt_finishes_first) {
        Task *t;

        job = make_job(1, 1, TIMEOUT);
        t = assign_expect(A, 0, TASK_MAP, 0, 1);
        ck_assert_uint_eq(job_expire(job, TIMEOUT), 1);
        assign_expect(B, TIMEOUT, TASK_MAP, 0, 2);

        /* The slow first attempt reports first: its output is complete, it wins. */
        ck_assert(job_may_complete(job, t, 1));
        ck_assert_int_eq(job_finish(job, t, 1, true, NULL), 1);
        ck_assert_int_eq(t->state, TASK_DONE);
        ck_assert_ptr_null(t->runs[0].owner);
        ck_assert_uint_eq(job->done[TASK_MAP], 1);
        ck_assert_int_eq(job->state, JOB_REDUCING);

        /* The replacement's report is stale now, and done is counted once. */
        ck_assert(!job_may_complete(job, t, 2));
        ck_assert_int_eq(job_finish(job, t, 2, true, NULL), 0);
        ck_assert_int_eq(job_finish(job, t, 1, true, NULL), 0);
        ck_assert_int_eq(job_finish(job, t, 2, false, "late error"), 0);
        ck_assert_uint_eq(job->done[TASK_MAP], 1);
        ck_assert_uint_eq(t->failures, 0);
        ck_assert_int_eq(job->state, JOB_REDUCING);
}
END_TEST

START_TEST(test_replacement_finishes_first) {
        Task *t;

        job = make_job(2, 1, TIMEOUT);
        t = assign_expect(A, 0, TASK_MAP, 0, 1);
        ck_assert_uint_eq(job_release_owner(job, A), 1);
        assign_expect(B, 0, TASK_MAP, 0, 2);
        ck_assert_int_eq(job_finish(job, t, 2, true, NULL), 1);
        ck_assert_int_eq(job_finish(job, t, 1, true, NULL), 0);
        ck_assert_uint_eq(job->done[TASK_MAP], 1);
        ck_assert_int_eq(job->state, JOB_MAPPING);
}
END_TEST

START_TEST(test_expired_attempt_finishes_before_reassignment) {
        Task *t;

        job = make_job(1, 1, TIMEOUT);
        t = assign_expect(A, 0, TASK_MAP, 0, 1);
        ck_assert_uint_eq(job_expire(job, TIMEOUT), 1);
        /* Taken back but not handed out again yet: the late report still completes it. */
        ck_assert_int_eq(job_finish(job, t, 1, true, NULL), 1);
        ck_assert_int_eq(job->state, JOB_REDUCING);
        assign_expect(B, TIMEOUT, TASK_REDUCE, 0, 1);
}
END_TEST

START_TEST(test_failure_reruns) {
        Task *t;

        job = make_job(2, 1, TIMEOUT);
        t = assign_expect(A, 0, TASK_MAP, 0, 1);
        ck_assert_int_eq(job_finish(job, t, 1, false, "disk full"), 0);
        ck_assert_int_eq(t->state, TASK_IDLE);
        ck_assert_ptr_null(t->runs[0].owner);
        ck_assert_uint_eq(t->failures, 1);
        ck_assert_int_eq(job->state, JOB_MAPPING);
        ck_assert_uint_eq(job_next_deadline(job), UINT64_MAX);

        /* Runnable again at once, as the first task. */
        assign_expect(B, 1, TASK_MAP, 0, 2);

        /* An old attempt's failure does not count: attempt 2 still runs. */
        ck_assert_int_eq(job_finish(job, t, 1, false, "old"), 0);
        ck_assert_int_eq(t->state, TASK_RUNNING);
        ck_assert_ptr_eq(t->runs[0].owner, B);
        ck_assert_uint_eq(t->failures, 1);

        /* The latest attempt fails after it was taken back: nothing runs to fail. */
        ck_assert_uint_eq(job_expire(job, 1 + TIMEOUT), 1);
        ck_assert_int_eq(job_finish(job, t, 2, false, "timeout"), 0);
        ck_assert_uint_eq(t->failures, 1);

        assign_expect(C, 20, TASK_MAP, 0, 3);
        ck_assert_int_eq(job_finish(job, t, 3, true, NULL), 1);
        ck_assert_uint_eq(job->done[TASK_MAP], 1);
}
END_TEST

START_TEST(test_max_failures) {
        Task *t, *other;

        job = make_job(2, 1, TIMEOUT);
        ck_assert_uint_ge(job->max_failures, 1);
        job->max_failures = 3;
        t = assign_expect(A, 0, TASK_MAP, 0, 1);
        other = assign_expect(B, 0, TASK_MAP, 1, 1);

        ck_assert_int_eq(job_finish(job, t, 1, false, "first"), 0);
        assign_expect(A, 0, TASK_MAP, 0, 2);
        ck_assert_int_eq(job_finish(job, t, 2, false, "second"), 0);
        ck_assert_int_eq(job->state, JOB_MAPPING);
        ck_assert_ptr_null(job->error);
        assign_expect(A, 0, TASK_MAP, 0, 3);
        ck_assert_int_eq(job_finish(job, t, 3, false, "bad input: line 7"), 0);

        ck_assert_int_eq(job->state, JOB_FAILED);
        ck_assert(job_ended(job));
        ck_assert_ptr_nonnull(job->error);
        ck_assert_msg(strstr(job->error, "map task 0") && strstr(job->error, "3 times") &&
                              strstr(job->error, "bad input: line 7"),
                      "error text: %s", job->error);

        /* Nothing more is handed out or accepted. */
        ck_assert_int_eq(job_assign(job, C, 1, &t), -ESHUTDOWN);
        ck_assert(!job_may_complete(job, other, 1));
        ck_assert_int_eq(job_finish(job, other, 1, true, NULL), 0);
        ck_assert_uint_eq(job->done[TASK_MAP], 0);
}
END_TEST

START_TEST(test_max_failures_no_error_text) {
        Task *t;

        job = make_job(1, 1, TIMEOUT);
        job->max_failures = 1;
        t = assign_expect(A, 0, TASK_MAP, 0, 1);
        ck_assert_int_eq(job_finish(job, t, 1, false, NULL), 0);
        ck_assert_int_eq(job->state, JOB_FAILED);
        ck_assert_ptr_nonnull(job->error);
        ck_assert_ptr_nonnull(strstr(job->error, "map task 0"));
}
END_TEST

/* A worker's reason may be as long as a message; the job keeps a bounded part of it. */
START_TEST(test_long_error_bounded) {
        _cleanup_free_ char *reason = malloc(100000);
        Task *t;

        ck_assert_ptr_nonnull(reason);
        memset(reason, 'e', 99999);
        reason[99999] = '\0';
        job = make_job(1, 1, TIMEOUT);
        job->max_failures = 1;
        t = assign_expect(A, 0, TASK_MAP, 0, 1);
        ck_assert_int_eq(job_finish(job, t, 1, false, reason), 0);
        ck_assert_int_eq(job->state, JOB_FAILED);
        ck_assert_uint_eq(strlen(job->error), strlen("map task 0 failed 1 times, last: ") + JOB_ERROR_MAX);
}
END_TEST

START_TEST(test_invalid_attempts_ignored) {
        Task *t, *r;

        job = make_job(1, 1, TIMEOUT);
        t = assign_expect(A, 0, TASK_MAP, 0, 1);

        /* Attempt 0 is never handed out, nor is one beyond the latest. */
        ck_assert(!job_may_complete(job, t, 0));
        ck_assert(!job_may_complete(job, t, 2));
        ck_assert_int_eq(job_finish(job, t, 0, true, NULL), 0);
        ck_assert_int_eq(job_finish(job, t, 2, true, NULL), 0);
        ck_assert_int_eq(job_finish(job, t, UINT32_MAX, true, NULL), 0);
        ck_assert_int_eq(job_finish(job, t, 0, false, "x"), 0);
        ck_assert_int_eq(job_finish(job, t, 7, false, "x"), 0);
        ck_assert_int_eq(t->state, TASK_RUNNING);
        ck_assert_uint_eq(t->failures, 0);
        ck_assert_uint_eq(job->done[TASK_MAP], 0);

        /* A reduce task that was never handed out cannot be finished early. */
        r = job_find_task(job, TASK_REDUCE, 0);
        ck_assert_int_eq(job_finish(job, r, 1, true, NULL), 0);
        ck_assert_int_eq(r->state, TASK_IDLE);
        ck_assert_uint_eq(job->done[TASK_REDUCE], 0);

        ck_assert(job_may_complete(job, t, 1));
        ck_assert_int_eq(job_finish(job, t, 1, true, NULL), 1);
}
END_TEST

/* A whole job through a storm of expiries, releases and duplicate reports: every task
 * completes exactly once, and the job ends done. */
START_TEST(test_chaos_run) {
        void *owners[] = { A, B, C };
        unsigned completed = 0, seed = 12345;
        uint64_t now = 0;

        job = make_job(8, 4, TIMEOUT);
        job->max_failures = UINT32_MAX; /* flaky workers, but the job must not give up */
        for (unsigned step = 0; step < 10000 && !job_ended(job); step++) {
                Task *t = NULL;
                void *owner = owners[step % 3];
                int r;

                seed = seed * 1103515245U + 12345U;
                now += (seed >> 16) % 4;
                switch ((seed >> 8) % 5) {
                case 0:
                        (void) job_expire(job, now);
                        break;
                case 1:
                        (void) job_release_owner(job, owner);
                        break;
                default:
                        r = job_assign(job, owner, now, &t);
                        ck_assert_int_ge(r, 0);
                        if (r == 0)
                                break;
                        /* Report the new attempt, and now and then an older one again. */
                        r = job_finish(job, t, t->attempt, (seed >> 4) % 7 != 0, "flaky");
                        completed += r;
                        if (t->attempt > 1)
                                ck_assert_int_eq(job_finish(job, t, t->attempt - 1, true, NULL), 0);
                }
        }
        ck_assert_int_eq(job->state, JOB_DONE);
        ck_assert_uint_eq(completed, 12);
        ck_assert_uint_eq(job->done[TASK_MAP], 8);
        ck_assert_uint_eq(job->done[TASK_REDUCE], 4);
}
END_TEST

/* Every file's splits are its bytes exactly, in order, one after the other. */
static void check_splits_cover(const Job *j, const uint64_t *sizes, uint64_t split_size) {
        unsigned m = 0;

        for (unsigned f = 0; f < j->nfiles; f++) {
                uint64_t next = 0;
                unsigned first = m;

                for (; m < j->nmap && j->tasks[m].file == f; m++) {
                        const Task *t = &j->tasks[m];

                        ck_assert_int_eq(t->kind, TASK_MAP);
                        ck_assert_uint_eq(t->index, m);
                        if (t->length == TASK_WHOLE_FILE) {
                                /* Only a file that is one split is read whole. */
                                ck_assert_uint_eq(t->offset, 0);
                                next = sizes[f];
                                continue;
                        }
                        ck_assert_uint_eq(t->offset, next);
                        ck_assert_uint_gt(t->length, 0);
                        ck_assert_uint_le(t->length, split_size);
                        next += t->length;
                }
                ck_assert_msg(m > first, "file %u has no map task", f);
                ck_assert_uint_eq(next, sizes[f]);
                if (m - first > 1)
                        ck_assert_uint_eq(m - first, sizes[f] / split_size + (sizes[f] % split_size != 0));
        }
        ck_assert_uint_eq(m, j->nmap);
        for (unsigned r = 0; r < j->nreduce; r++) {
                ck_assert_int_eq(j->tasks[j->nmap + r].kind, TASK_REDUCE);
                ck_assert_uint_eq(j->tasks[j->nmap + r].index, r);
        }
}

START_TEST(test_split) {
        uint64_t sizes[] = { 100, 0, 64, 65, 1, 1000 };

        job = make_job(ELEMENTSOF(sizes), 2, TIMEOUT);
        ck_assert_uint_eq(job_count_splits(sizes, ELEMENTSOF(sizes), 64), 2 + 1 + 1 + 2 + 1 + 16);
        ck_assert_int_eq(job_split(job, sizes, 64, 1000), 0);
        ck_assert_uint_eq(job->nmap, 23);
        ck_assert_uint_eq(job->nfiles, ELEMENTSOF(sizes));
        ck_assert_uint_eq(job->split_size, 64);
        check_splits_cover(job, sizes, 64);
        /* The empty file and the files of one split are read whole. */
        ck_assert_uint_eq(job->tasks[2].file, 1);
        ck_assert_uint_eq(job->tasks[2].length, TASK_WHOLE_FILE);
        ck_assert_uint_eq(job->tasks[3].length, TASK_WHOLE_FILE);
        /* The last split of a file ends where the file does. */
        ck_assert_uint_eq(job->tasks[1].offset, 64);
        ck_assert_uint_eq(job->tasks[1].length, 36);
        ck_assert_uint_eq(job->tasks[5].length, 1);
        ck_assert_uint_eq(job->tasks[22].offset, 960);
        ck_assert_uint_eq(job->tasks[22].length, 40);

        /* Maps then reduces, as with one task per file. */
        for (unsigned m = 0; m < job->nmap; m++)
                assign_expect(A, 0, TASK_MAP, m, 1);
        assign_none(B, 0);
        for (unsigned m = 0; m < job->nmap; m++)
                ck_assert_int_eq(job_finish(job, job_find_task(job, TASK_MAP, m), 1, true, NULL), 1);
        ck_assert_int_eq(job->state, JOB_REDUCING);
        assign_expect(B, 0, TASK_REDUCE, 0, 1);
}
END_TEST

START_TEST(test_split_whole_files) {
        uint64_t sizes[] = { 100, 0, 1ULL << 40 };

        /* split_size 0, and no sizes: one task per file, each read whole. */
        ck_assert_uint_eq(job_count_splits(sizes, 3, 0), 3);
        ck_assert_uint_eq(job_count_splits(NULL, 3, 64), 3);
        job = make_job(3, 1, TIMEOUT);
        ck_assert_int_eq(job_split(job, sizes, 0, 3), 0);
        ck_assert_uint_eq(job->nmap, 3);
        check_splits_cover(job, sizes, 0);
        for (unsigned m = 0; m < 3; m++) {
                ck_assert_uint_eq(job->tasks[m].file, m);
                ck_assert_uint_eq(job->tasks[m].length, TASK_WHOLE_FILE);
        }
        ck_assert_int_eq(job_split(job, NULL, 64, 3), 0);
        ck_assert_uint_eq(job->nmap, 3);
        ck_assert_ptr_null(job->sizes);
}
END_TEST

START_TEST(test_split_many) {
        uint64_t sizes[] = { 200ULL << 20, (8ULL << 20) + 1, 8ULL << 20 };
        uint64_t split = 8ULL << 20;

        job = make_job(3, 4, TIMEOUT);
        ck_assert_int_eq(job_split(job, sizes, split, 100000), 0);
        ck_assert_uint_eq(job->nmap, 25 + 2 + 1);
        check_splits_cover(job, sizes, split);
        ck_assert_uint_eq(job->tasks[26].length, 1);

        /* One byte per split of 200 MiB: far more tasks than a job may make. */
        ck_assert_uint_eq(job_count_splits(sizes, 3, 1), (216ULL << 20) + 1);
        ck_assert_int_eq(job_split(job, sizes, 1, 100000), -E2BIG);
        /* Refused, the job is as it was. */
        ck_assert_uint_eq(job->nmap, 28);
        /* The count saturates instead of wrapping. */
        uint64_t huge[] = { UINT64_MAX, UINT64_MAX };
        ck_assert_uint_eq(job_count_splits(huge, 2, 1), UINT64_MAX);
        ck_assert_int_eq(job_split(job, huge, 1, UINT32_MAX), -E2BIG);
}
END_TEST

static Suite *regular_suite(void) {
        Suite *s = suite_create("job");
        TCase *tc = tcase_create("job");

        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_add_test(tc, test_new);
        tcase_add_test(tc, test_names);
        tcase_add_test(tc, test_maps_before_reduces);
        tcase_add_test(tc, test_attempts_increase);
        tcase_add_test(tc, test_timeout);
        tcase_add_test(tc, test_timeout_saturates);
        tcase_add_test(tc, test_release_owner);
        tcase_add_test(tc, test_superseded_attempt_finishes_first);
        tcase_add_test(tc, test_replacement_finishes_first);
        tcase_add_test(tc, test_expired_attempt_finishes_before_reassignment);
        tcase_add_test(tc, test_failure_reruns);
        tcase_add_test(tc, test_max_failures);
        tcase_add_test(tc, test_max_failures_no_error_text);
        tcase_add_test(tc, test_long_error_bounded);
        tcase_add_test(tc, test_invalid_attempts_ignored);
        tcase_add_test(tc, test_chaos_run);
        tcase_add_test(tc, test_split);
        tcase_add_test(tc, test_split_whole_files);
        tcase_add_test(tc, test_split_many);
        suite_add_tcase(s, tc);
        return s;
}

int main(int argc, char **argv) {
        return unit_run("job", regular_suite(), NULL, argc, argv);
}
