/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The scheduler (scheduler.c) on a fake clock: which worker gets which task of which job,
 * time-outs, workers that go away, lab-mode end, cancelling, and what observers hear. */
#include <check.h>

#include "log.h"
#include "macro.h"
#include "scheduler.h"
#include "unit-test.h"

#define SEC 1000000ULL
#define TIMEOUT (10 * SEC)
/* The fake CLOCK_REALTIME runs this far ahead of the fake CLOCK_MONOTONIC. */
#define REALTIME_OFFSET (1700000000ULL * SEC)

/* One answer to a waiting worker, as the callbacks saw it. */
typedef struct Assignment {
        Worker *worker;
        Job *job; /* NULL: the worker was told to exit */
        TaskKind kind;
        unsigned index, attempt;
} Assignment;

static struct {
        uint64_t now; /* CLOCK_MONOTONIC */
        Assignment assigned[64];
        size_t n_assigned, n_checked;
        uint64_t wake_at;
        unsigned n_wake_at;
        int finished_status;
        unsigned n_finished;
        unsigned events[EVENT_WORKERS_CHANGED + 1];
        Worker *drop; /* the assign callback cannot tell this worker, and drops it */
} fake;

static Scheduler *sched;

static uint64_t fake_clock(clockid_t clock, void *userdata) {
        return clock == CLOCK_REALTIME ? REALTIME_OFFSET + fake.now : fake.now;
}

static void on_assign(Worker *w, Job *j, Task *t, void *userdata) {
        ck_assert_ptr_eq(userdata, &fake);
        ck_assert(!w->waiting);
        if (j && w == fake.drop) {
                /* What worker-api.c does when it cannot build the reply. */
                ck_assert_uint_eq(job_release_owner(j, w), 1);
                scheduler_remove_worker(sched, w);
                return;
        }
        ck_assert_uint_lt(fake.n_assigned, ELEMENTSOF(fake.assigned));
        fake.assigned[fake.n_assigned++] = (Assignment) {
                .worker = w,
                .job = j,
                .kind = t ? t->kind : _TASK_KIND_MAX,
                .index = t ? t->index : 0,
                .attempt = t ? t->attempt : 0,
        };
}

static void on_wake_at(uint64_t usec, void *userdata) {
        fake.wake_at = usec;
        fake.n_wake_at++;
}

static void on_finished(int status, void *userdata) {
        fake.finished_status = status;
        fake.n_finished++;
}

static const SchedulerCallbacks callbacks = {
        .assign = on_assign,
        .wake_at = on_wake_at,
        .finished = on_finished,
};

static void on_event(ObserverEvent event, Job *j, void *userdata) {
        ck_assert_ptr_eq(userdata, &fake);
        ck_assert(event == EVENT_WORKERS_CHANGED ? j == NULL : j != NULL);
        fake.events[event]++;
}

static void setup(void) {
        memset(&fake, 0, sizeof(fake));
        fake.now = 1000 * SEC;
        ck_assert_int_eq(scheduler_new(&callbacks, &fake, &sched), 0);
        scheduler_set_clock(sched, fake_clock, NULL);
        ck_assert_int_eq(scheduler_subscribe(sched, on_event, &fake), 0);
}

static void teardown(void) {
        sched = scheduler_free(sched);
}

static Job *add_job(const char *id, unsigned nmap, unsigned nreduce) {
        char *files[8], names[8][16];
        Job *j = NULL;

        ck_assert_uint_le(nmap, ELEMENTSOF(files));
        for (unsigned i = 0; i < nmap; i++) {
                snprintf(names[i], sizeof(names[i]), "in-%u", i);
                files[i] = names[i];
        }
        ck_assert_int_eq(job_new(id, NULL, "/tmp/work", files, nmap, nreduce, TIMEOUT, &j), 0);
        ck_assert_int_eq(scheduler_add_job(sched, j), 0);
        return j;
}

static Worker *add_worker(const char *name) {
        Worker *w = NULL;

        ck_assert_int_eq(scheduler_add_worker(sched, name, sched->service_uid, (void *) name, &w), 0);
        ck_assert_ptr_nonnull(w);
        ck_assert_str_eq(w->description, name);
        return w;
}

/* The next answer the workers got since the last check. */
static void expect_task(Worker *w, Job *j, TaskKind kind, unsigned index, unsigned attempt) {
        ck_assert_msg(fake.n_checked < fake.n_assigned, "no task handed out, expected %s %s %u for %s",
                      j->id, task_kind_to_string(kind), index, (const char *) w->userdata);
        Assignment *a = &fake.assigned[fake.n_checked++];
        ck_assert_msg(a->worker == w && a->job == j && a->kind == kind && a->index == index,
                      "%s got %s %s %u, expected %s %s %u", (const char *) a->worker->userdata,
                      a->job ? a->job->id : "exit", task_kind_to_string(a->kind), a->index, j->id,
                      task_kind_to_string(kind), index);
        ck_assert_uint_eq(a->attempt, attempt);
}

static void expect_exit(Worker *w) {
        ck_assert_uint_lt(fake.n_checked, fake.n_assigned);
        Assignment *a = &fake.assigned[fake.n_checked++];
        ck_assert_ptr_eq(a->worker, w);
        ck_assert_ptr_null(a->job);
}

static void expect_nothing(void) {
        ck_assert_uint_eq(fake.n_checked, fake.n_assigned);
}

static void finish(Job *j, TaskKind kind, unsigned index, unsigned attempt, bool ok, int expected) {
        Task *t = job_find_task(j, kind, index);

        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(scheduler_finish_task(sched, j, t, attempt, ok, ok ? NULL : "failed", NULL), expected);
}

START_TEST(test_tasks_in_order) {
        Worker *a = add_worker("a"), *b = add_worker("b"), *c = add_worker("c"), *d = add_worker("d");
        Job *j;

        ck_assert_uint_eq(scheduler_n_workers(sched), 4);
        ck_assert_uint_eq(fake.events[EVENT_WORKERS_CHANGED], 4);

        /* Workers that ask before there is a job wait for one, in the order they asked. */
        scheduler_request_task(sched, b);
        scheduler_request_task(sched, a);
        expect_nothing();
        j = add_job("1", 3, 2);
        ck_assert_uint_eq(fake.events[EVENT_JOB_ADDED], 1);
        ck_assert_uint_eq(j->submit_time, REALTIME_OFFSET + fake.now);
        expect_task(b, j, TASK_MAP, 0, 1);
        expect_task(a, j, TASK_MAP, 1, 1);
        ck_assert_uint_eq(j->start_time, REALTIME_OFFSET + fake.now);
        ck_assert_uint_eq(fake.wake_at, fake.now + TIMEOUT);

        scheduler_request_task(sched, c);
        expect_task(c, j, TASK_MAP, 2, 1);
        /* Every map runs, and no reduce starts before the last map is done. */
        scheduler_request_task(sched, d);
        expect_nothing();
        finish(j, TASK_MAP, 0, 1, true, 1);
        scheduler_request_task(sched, b);
        finish(j, TASK_MAP, 2, 1, true, 1);
        expect_nothing();
        ck_assert_int_eq(j->state, JOB_MAPPING);

        /* The last map: the reduces go to the workers waiting longest. */
        finish(j, TASK_MAP, 1, 1, true, 1);
        ck_assert_int_eq(j->state, JOB_REDUCING);
        expect_task(d, j, TASK_REDUCE, 0, 1);
        expect_task(b, j, TASK_REDUCE, 1, 1);

        finish(j, TASK_REDUCE, 1, 1, true, 1);
        fake.now += 3 * SEC;
        finish(j, TASK_REDUCE, 0, 1, true, 1);
        ck_assert_int_eq(j->state, JOB_DONE);
        ck_assert_uint_eq(j->finish_time, REALTIME_OFFSET + fake.now);
        ck_assert_uint_eq(fake.wake_at, UINT64_MAX);
        /* Not lab mode: the job server goes on, and workers wait for the next job. */
        scheduler_request_task(sched, a);
        expect_nothing();
        ck_assert_uint_eq(fake.n_finished, 0);
}
END_TEST

START_TEST(test_older_job_first) {
        Worker *a = add_worker("a"), *b = add_worker("b");
        Job *j1 = add_job("1", 1, 1), *j2 = add_job("2", 1, 1);

        ck_assert_str_eq(job_display_state(j1), "queued");
        ck_assert_str_eq(job_display_state(j2), "queued");
        scheduler_request_task(sched, a);
        expect_task(a, j1, TASK_MAP, 0, 1);
        ck_assert_str_eq(job_display_state(j1), "mapping");
        ck_assert_str_eq(job_display_state(j2), "queued");
        scheduler_request_task(sched, b);
        expect_task(b, j2, TASK_MAP, 0, 1);
        ck_assert_uint_gt(j2->start_time, 0);

        /* Both jobs have a reduce to hand out: the older job's goes first. */
        finish(j2, TASK_MAP, 0, 1, true, 1);
        finish(j1, TASK_MAP, 0, 1, true, 1);
        scheduler_request_task(sched, b);
        expect_task(b, j1, TASK_REDUCE, 0, 1);
        scheduler_request_task(sched, a);
        expect_task(a, j2, TASK_REDUCE, 0, 1);
}
END_TEST

START_TEST(test_newer_maps_while_older_waits) {
        Worker *a = add_worker("a"), *b = add_worker("b"), *c = add_worker("c");
        Job *j1 = add_job("1", 2, 1), *j2 = add_job("2", 3, 1);

        scheduler_request_task(sched, a);
        scheduler_request_task(sched, b);
        expect_task(a, j1, TASK_MAP, 0, 1);
        expect_task(b, j1, TASK_MAP, 1, 1);

        /* Job 1 waits for its last map before its reduce: job 2's maps start meanwhile. */
        finish(j1, TASK_MAP, 0, 1, true, 1);
        scheduler_request_task(sched, a);
        expect_task(a, j2, TASK_MAP, 0, 1);
        scheduler_request_task(sched, c);
        expect_task(c, j2, TASK_MAP, 1, 1);

        /* Job 1's last map is done: its reduce comes before job 2's last map. */
        finish(j1, TASK_MAP, 1, 1, true, 1);
        scheduler_request_task(sched, b);
        expect_task(b, j1, TASK_REDUCE, 0, 1);
        scheduler_request_task(sched, b);
        expect_task(b, j2, TASK_MAP, 2, 1);
        expect_nothing();
}
END_TEST

START_TEST(test_timeout_reassigns) {
        Worker *a = add_worker("a"), *b = add_worker("b");
        Job *j = add_job("1", 2, 1);
        uint64_t t0 = fake.now;

        scheduler_request_task(sched, a);
        expect_task(a, j, TASK_MAP, 0, 1);
        fake.now += 2 * SEC;
        scheduler_request_task(sched, b);
        expect_task(b, j, TASK_MAP, 1, 1);
        ck_assert_uint_eq(scheduler_next_deadline(sched), t0 + TIMEOUT);
        ck_assert_uint_eq(fake.wake_at, t0 + TIMEOUT);

        /* A timer that fires early takes nothing back. */
        scheduler_request_task(sched, b);
        fake.now = t0 + TIMEOUT - 1;
        scheduler_expire(sched);
        expect_nothing();
        ck_assert_uint_eq(j->counters.v[COUNTER_TASK_ATTEMPTS_TIMED_OUT], 0);

        /* At the deadline, map 0 goes to the waiting worker as a new attempt. */
        fake.now = t0 + TIMEOUT;
        scheduler_expire(sched);
        expect_task(b, j, TASK_MAP, 0, 2);
        ck_assert_uint_eq(j->counters.v[COUNTER_TASK_ATTEMPTS_TIMED_OUT], 1);
        ck_assert_uint_eq(fake.wake_at, t0 + 2 * SEC + TIMEOUT);

        /* No worker waits: map 1's time-out leaves it for the next request. */
        fake.now = t0 + 2 * SEC + TIMEOUT;
        scheduler_expire(sched);
        expect_nothing();
        ck_assert_uint_eq(j->counters.v[COUNTER_TASK_ATTEMPTS_TIMED_OUT], 2);
        ck_assert_uint_eq(fake.wake_at, t0 + TIMEOUT + TIMEOUT);
        scheduler_request_task(sched, a);
        expect_task(a, j, TASK_MAP, 1, 2);
}
END_TEST

START_TEST(test_late_finish_of_timed_out_attempt) {
        Worker *a = add_worker("a"), *b = add_worker("b");
        Job *j = add_job("1", 1, 1);
        unsigned changed;

        scheduler_request_task(sched, a);
        expect_task(a, j, TASK_MAP, 0, 1);
        scheduler_request_task(sched, b);
        fake.now += TIMEOUT;
        scheduler_expire(sched);
        expect_task(b, j, TASK_MAP, 0, 2);

        /* The slow first attempt reports first: its output is complete, and it counts. */
        changed = fake.events[EVENT_JOB_CHANGED];
        scheduler_request_task(sched, a);
        finish(j, TASK_MAP, 0, 1, true, 1);
        ck_assert_uint_eq(fake.events[EVENT_JOB_CHANGED], changed + 1);
        ck_assert_int_eq(j->state, JOB_REDUCING);
        expect_task(a, j, TASK_REDUCE, 0, 1);

        /* The replacement's report is stale: nothing changes, nobody hears of it. */
        changed = fake.events[EVENT_JOB_CHANGED];
        finish(j, TASK_MAP, 0, 2, true, 0);
        ck_assert_uint_eq(j->done[TASK_MAP], 1);
        ck_assert_uint_eq(fake.events[EVENT_JOB_CHANGED], changed);
        expect_nothing();
}
END_TEST

START_TEST(test_failed_attempt_runs_again) {
        Worker *a = add_worker("a"), *b = add_worker("b");
        Job *j = add_job("1", 1, 1);

        scheduler_request_task(sched, a);
        expect_task(a, j, TASK_MAP, 0, 1);
        scheduler_request_task(sched, b);
        expect_nothing();
        finish(j, TASK_MAP, 0, 1, false, 0);
        expect_task(b, j, TASK_MAP, 0, 2);
        ck_assert_uint_eq(j->counters.v[COUNTER_TASK_ATTEMPTS_FAILED], 1);
}
END_TEST

START_TEST(test_disconnect_hands_out_at_once) {
        Worker *a = add_worker("a"), *b = add_worker("b"), *c = add_worker("c"), *d = add_worker("d"),
               *e = add_worker("e");
        Job *j = add_job("1", 2, 1);
        uint64_t deadline;

        scheduler_request_task(sched, a);
        scheduler_request_task(sched, b);
        expect_task(a, j, TASK_MAP, 0, 1);
        expect_task(b, j, TASK_MAP, 1, 1);
        scheduler_request_task(sched, c);
        scheduler_request_task(sched, d);
        scheduler_request_task(sched, e);
        deadline = fake.wake_at;

        /* A waiting worker that goes away leaves the line. */
        scheduler_remove_worker(sched, d);
        expect_nothing();
        /* A running one's task goes to the next waiting worker, long before any deadline. */
        scheduler_remove_worker(sched, a);
        expect_task(c, j, TASK_MAP, 0, 2);
        scheduler_remove_worker(sched, b);
        expect_task(e, j, TASK_MAP, 1, 2);
        ck_assert_uint_eq(j->counters.v[COUNTER_TASK_ATTEMPTS_LOST], 2);
        ck_assert_uint_eq(scheduler_n_workers(sched), 2);
        ck_assert_uint_eq(fake.events[EVENT_WORKERS_CHANGED], 5 + 3);
        ck_assert_uint_eq(fake.wake_at, deadline);

        finish(j, TASK_MAP, 0, 2, true, 1);
        ck_assert_uint_eq(j->done[TASK_MAP], 1);
}
END_TEST

START_TEST(test_assign_drops_worker) {
        Worker *a = add_worker("a"), *b = add_worker("b");
        Job *j;

        /* The first worker in line cannot be told: the task goes to the next one. */
        scheduler_request_task(sched, a);
        scheduler_request_task(sched, b);
        fake.drop = a;
        j = add_job("1", 1, 1);
        expect_task(b, j, TASK_MAP, 0, 2);
        ck_assert_uint_eq(scheduler_n_workers(sched), 1);
        ck_assert_uint_eq(j->counters.v[COUNTER_TASK_ATTEMPTS_LOST], 1);
        expect_nothing();
}
END_TEST

START_TEST(test_lab_mode_end) {
        Worker *a = add_worker("a"), *b = add_worker("b");
        Job *j;

        scheduler_set_exit_when_done(sched, true);
        /* No job yet: nothing has ended, so nobody is told to exit. */
        scheduler_request_task(sched, a);
        expect_nothing();
        j = add_job("1", 1, 1);
        expect_task(a, j, TASK_MAP, 0, 1);
        scheduler_request_task(sched, b);
        finish(j, TASK_MAP, 0, 1, true, 1);
        expect_task(b, j, TASK_REDUCE, 0, 1);
        scheduler_request_task(sched, a);
        expect_nothing();
        ck_assert_uint_eq(fake.n_finished, 0);

        /* The last reduce: the coordinator is done, and the waiting worker exits. */
        finish(j, TASK_REDUCE, 0, 1, true, 1);
        ck_assert_uint_eq(fake.n_finished, 1);
        ck_assert_int_eq(fake.finished_status, 0);
        expect_exit(a);
        /* So does a worker that asks afterwards. */
        scheduler_request_task(sched, b);
        expect_exit(b);
        expect_nothing();
}
END_TEST

START_TEST(test_lab_mode_failure) {
        Worker *a = add_worker("a");
        Job *j;

        scheduler_set_exit_when_done(sched, true);
        j = add_job("1", 1, 1);
        j->max_failures = 2;
        scheduler_request_task(sched, a);
        expect_task(a, j, TASK_MAP, 0, 1);
        finish(j, TASK_MAP, 0, 1, false, 0);
        scheduler_request_task(sched, a);
        expect_task(a, j, TASK_MAP, 0, 2);
        finish(j, TASK_MAP, 0, 2, false, 0);
        ck_assert_int_eq(j->state, JOB_FAILED);
        ck_assert_uint_eq(fake.n_finished, 1);
        ck_assert_int_eq(fake.finished_status, 1);
        scheduler_request_task(sched, a);
        expect_exit(a);
}
END_TEST

START_TEST(test_cancel) {
        Worker *a = add_worker("a"), *b = add_worker("b");
        Job *j1 = add_job("1", 2, 1), *j2;
        unsigned changed;

        scheduler_request_task(sched, a);
        expect_task(a, j1, TASK_MAP, 0, 1);
        ck_assert_uint_ne(fake.wake_at, UINT64_MAX);

        changed = fake.events[EVENT_JOB_CHANGED];
        fake.now += SEC;
        ck_assert_int_eq(scheduler_cancel_job(sched, j1), 0);
        ck_assert_int_eq(j1->state, JOB_CANCELLED);
        ck_assert_uint_eq(j1->finish_time, REALTIME_OFFSET + fake.now);
        ck_assert_uint_eq(fake.events[EVENT_JOB_CHANGED], changed + 1);
        ck_assert_uint_eq(fake.wake_at, UINT64_MAX);
        ck_assert_int_eq(scheduler_cancel_job(sched, j1), -ESTALE);

        /* Its tasks are not handed out, and a late report is stale. */
        scheduler_request_task(sched, b);
        expect_nothing();
        finish(j1, TASK_MAP, 0, 1, true, 0);
        ck_assert_uint_eq(j1->done[TASK_MAP], 0);

        /* The next job's tasks go to the workers that wait. */
        j2 = add_job("2", 1, 1);
        expect_task(b, j2, TASK_MAP, 0, 1);
        ck_assert_ptr_eq(scheduler_find_job(sched, "1"), j1);
        ck_assert_ptr_eq(scheduler_find_job(sched, "2"), j2);
        ck_assert_ptr_null(scheduler_find_job(sched, "3"));
}
END_TEST

/* A job's tasks go only to workers that may run it (access.c): a worker of another
 * user waits, and does not hold up the line for the workers behind it. */
START_TEST(test_workers_of_the_owner) {
        Worker *other = NULL, *alice = NULL, *service = add_worker("service");
        Job *j = add_job("1", 2, 1), *root;

        j->owner_uid = 1000;
        ck_assert_int_eq(scheduler_add_worker(sched, "other", 1001, (void *) "other", &other), 0);
        ck_assert(!scheduler_job_has_worker(sched, j));

        scheduler_request_task(sched, other);
        scheduler_request_task(sched, service);
        expect_nothing();
        ck_assert(other->waiting && service->waiting);

        ck_assert_int_eq(scheduler_add_worker(sched, "alice", 1000, (void *) "alice", &alice), 0);
        ck_assert(scheduler_job_has_worker(sched, j));
        scheduler_request_task(sched, alice);
        expect_task(alice, j, TASK_MAP, 0, 1);
        ck_assert(scheduler_worker_holds(alice, j, &j->tasks[0], 1));
        ck_assert(!scheduler_worker_holds(alice, j, &j->tasks[0], 2));
        ck_assert(!scheduler_worker_holds(alice, j, &j->tasks[1], 1));
        ck_assert(!scheduler_worker_holds(other, j, &j->tasks[0], 1));

        /* Root's jobs go to the service's workers, behind the waiting worker of another uid. */
        root = add_job("2", 1, 1);
        ck_assert_uint_eq(root->owner_uid, 0);
        expect_task(service, root, TASK_MAP, 0, 1);
        ck_assert(other->waiting);
        expect_nothing();
}
END_TEST

START_TEST(test_ended_jobs_forgotten) {
        char id[16];

        add_job("running", 1, 1);
        for (unsigned i = 1; i <= SCHEDULER_MAX_ENDED_JOBS + 1; i++) {
                snprintf(id, sizeof(id), "%u", i);
                ck_assert_int_eq(scheduler_cancel_job(sched, add_job(id, 1, 1)), 0);
        }
        ck_assert_uint_eq(fake.events[EVENT_JOB_REMOVED], 0);
        ck_assert_uint_eq(sched->n_jobs, SCHEDULER_MAX_ENDED_JOBS + 2);

        /* The next job makes room: the oldest ended job goes, not the older running one. */
        add_job("new", 1, 1);
        ck_assert_uint_eq(fake.events[EVENT_JOB_REMOVED], 1);
        ck_assert_ptr_null(scheduler_find_job(sched, "1"));
        ck_assert_ptr_nonnull(scheduler_find_job(sched, "2"));
        ck_assert_uint_eq(sched->n_jobs, SCHEDULER_MAX_ENDED_JOBS + 2);
        ck_assert_str_eq(sched->jobs[0]->id, "running");
        ck_assert_str_eq(sched->jobs[sched->n_jobs - 1]->id, "new");
}
END_TEST

START_TEST(test_ended_files_dropped) {
        Job *running, *j[3];

        /* Room for the file lists of two ended jobs of 4 files (60 bytes each). */
        sched->max_ended_files_size = 150;
        running = add_job("running", 4, 1);
        for (unsigned i = 0; i < ELEMENTSOF(j); i++) {
                char id[16];

                snprintf(id, sizeof(id), "%u", i);
                j[i] = add_job(id, 4, 1);
                ck_assert_uint_eq(j[i]->files_size, 5 * sizeof(char *) + 4 * strlen("in-0") + 4);
        }
        for (unsigned i = 0; i < ELEMENTSOF(j); i++)
                ck_assert_int_eq(scheduler_cancel_job(sched, j[i]), 0);

        /* The oldest ended job's list goes; the running job keeps its own whatever its size. */
        ck_assert_ptr_null(j[0]->files);
        ck_assert_uint_eq(j[0]->files_size, 0);
        ck_assert_str_eq(j[1]->files[3], "in-3");
        ck_assert_str_eq(j[2]->files[0], "in-0");
        ck_assert_ptr_nonnull(running->files);

        /* An ended job too large for the budget alone keeps no list. */
        sched->max_ended_files_size = 10;
        ck_assert_int_eq(scheduler_cancel_job(sched, running), 0);
        ck_assert_ptr_null(running->files);
        ck_assert_ptr_null(j[2]->files);
}
END_TEST

static void finish_counted(Job *j, TaskKind kind, unsigned index, unsigned attempt, bool ok, int expected,
                           uint64_t records) {
        JobCounters c = {};
        Task *t = job_find_task(j, kind, index);

        c.v[COUNTER_MAP_INPUT_RECORDS] = records;
        /* A worker cannot set the coordinator's own counters. */
        c.v[COUNTER_BACKUP_ATTEMPTS_WON] = 1000;
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(scheduler_finish_task(sched, j, t, attempt, ok, ok ? NULL : "failed", &c), expected);
}

/* Three maps on three workers; two finish after 2 s, so the third may get a backup once it
 * has run 2 × 2 s. */
static Job *backup_setup(Worker *a, Worker *b, Worker *c, bool backups, uint64_t *ret_start) {
        Job *j = add_job("1", 3, 1);

        j->backup_tasks = backups;
        scheduler_request_task(sched, a);
        scheduler_request_task(sched, b);
        scheduler_request_task(sched, c);
        expect_task(a, j, TASK_MAP, 0, 1);
        expect_task(b, j, TASK_MAP, 1, 1);
        expect_task(c, j, TASK_MAP, 2, 1);
        *ret_start = fake.now;
        fake.now += 2 * SEC;
        finish_counted(j, TASK_MAP, 0, 1, true, 1, 10);
        finish_counted(j, TASK_MAP, 1, 1, true, 1, 20);
        ck_assert_uint_eq(job_median_duration(j, TASK_MAP), 2 * SEC);
        ck_assert_uint_eq(job_backup_after(j), backups ? 4 * SEC : UINT64_MAX);
        return j;
}

/* The same, 5 s after the start: a runs the backup of map 2, c the original. */
static Job *backup_running(Worker *a, Worker *b, Worker *c) {
        uint64_t start;
        Job *j = backup_setup(a, b, c, true, &start);

        fake.now = start + 5 * SEC;
        scheduler_request_task(sched, a);
        expect_task(a, j, TASK_MAP, 2, 2);
        return j;
}

START_TEST(test_backup_after_median) {
        Worker *a = add_worker("a"), *b = add_worker("b"), *c = add_worker("c");
        uint64_t start;
        Job *j = backup_setup(a, b, c, true, &start);
        Task *t = job_find_task(j, TASK_MAP, 2);

        /* Nothing left to hand out, and map 2 has not run long enough: a waits, and the
         * scheduler wakes when it has. */
        scheduler_request_task(sched, a);
        expect_nothing();
        ck_assert_uint_eq(fake.wake_at, start + 4 * SEC + 1);
        fake.now = start + 4 * SEC;
        scheduler_expire(sched);
        expect_nothing();

        fake.now = start + 4 * SEC + 1;
        scheduler_expire(sched);
        expect_task(a, j, TASK_MAP, 2, 2);
        ck_assert_uint_eq(j->counters.v[COUNTER_BACKUP_ATTEMPTS_STARTED], 1);
        ck_assert_uint_eq(t->backup_attempt, 2);
        ck_assert_int_eq(t->state, TASK_RUNNING);

        /* At most one backup per task. */
        scheduler_request_task(sched, b);
        fake.now = start + 4 * SEC + SEC / 2;
        scheduler_expire(sched);
        ck_assert_uint_eq(j->counters.v[COUNTER_BACKUP_ATTEMPTS_STARTED], 1);

        /* The backup finishes first and is committed; its counters count, the
         * original's report later is stale and counts for nothing. */
        fake.now = start + 5 * SEC;
        ck_assert_ptr_eq(task_find_run(t, 1)->owner, c);
        ck_assert_ptr_eq(task_find_run(t, 2)->owner, a);
        finish_counted(j, TASK_MAP, 2, 2, true, 1, 30);
        ck_assert_int_eq(j->state, JOB_REDUCING);
        expect_task(b, j, TASK_REDUCE, 0, 1);
        ck_assert_uint_eq(j->counters.v[COUNTER_BACKUP_ATTEMPTS_WON], 1);
        ck_assert_uint_eq(t->duration, SEC - 1);
        finish_counted(j, TASK_MAP, 2, 1, true, 0, 40);
        ck_assert_uint_eq(j->counters.v[COUNTER_MAP_INPUT_RECORDS], 60);
        ck_assert_uint_eq(j->counters.v[COUNTER_BACKUP_ATTEMPTS_WON], 1);
        ck_assert_uint_eq(j->counters.v[COUNTER_TASK_ATTEMPTS_FAILED], 0);
        ck_assert_uint_eq(j->counters.v[COUNTER_TASK_ATTEMPTS], 5);
}
END_TEST

START_TEST(test_backup_original_wins) {
        Worker *a = add_worker("a"), *b = add_worker("b"), *c = add_worker("c");
        Job *j = backup_running(a, b, c);

        /* The original finishes first: it is committed, the backup is discarded. */
        finish_counted(j, TASK_MAP, 2, 1, true, 1, 30);
        finish_counted(j, TASK_MAP, 2, 2, true, 0, 40);
        ck_assert_uint_eq(j->counters.v[COUNTER_BACKUP_ATTEMPTS_STARTED], 1);
        ck_assert_uint_eq(j->counters.v[COUNTER_BACKUP_ATTEMPTS_WON], 0);
        ck_assert_uint_eq(j->counters.v[COUNTER_MAP_INPUT_RECORDS], 60);
        ck_assert_uint_eq(job_find_task(j, TASK_MAP, 2)->duration, 5 * SEC);
}
END_TEST

START_TEST(test_backup_attempt_lost) {
        Worker *a = add_worker("a"), *b = add_worker("b"), *c = add_worker("c");
        Job *j = backup_running(a, b, c);
        Task *t = job_find_task(j, TASK_MAP, 2);

        /* The backup fails: the original goes on, and no second backup is made. */
        finish_counted(j, TASK_MAP, 2, 2, false, 0, 0);
        ck_assert_int_eq(t->state, TASK_RUNNING);
        ck_assert_ptr_eq(t->runs[0].owner, c);
        ck_assert_ptr_null(t->runs[1].owner);
        ck_assert_uint_eq(j->counters.v[COUNTER_TASK_ATTEMPTS_FAILED], 1);
        scheduler_request_task(sched, a);
        fake.now += 3 * SEC;
        scheduler_expire(sched);
        expect_nothing();

        /* The original's worker goes away: nothing runs the task any more, and it is
         * handed out again at once. */
        scheduler_remove_worker(sched, c);
        expect_task(a, j, TASK_MAP, 2, 3);
        ck_assert_uint_eq(j->counters.v[COUNTER_TASK_ATTEMPTS_LOST], 1);
        ck_assert_uint_eq(j->counters.v[COUNTER_TASK_ATTEMPTS_FAILED], 2);
}
END_TEST

START_TEST(test_backup_original_lost) {
        Worker *a = add_worker("a"), *b = add_worker("b"), *c = add_worker("c");
        Job *j = backup_running(a, b, c);
        Task *t = job_find_task(j, TASK_MAP, 2);

        /* The original's worker goes away while the backup runs: the backup goes on. */
        scheduler_request_task(sched, b);
        scheduler_remove_worker(sched, c);
        expect_nothing();
        ck_assert_int_eq(t->state, TASK_RUNNING);
        ck_assert_ptr_eq(t->runs[0].owner, a);
        ck_assert_uint_eq(t->runs[0].attempt, 2);
        finish_counted(j, TASK_MAP, 2, 2, true, 1, 30);
        ck_assert_uint_eq(j->counters.v[COUNTER_BACKUP_ATTEMPTS_WON], 1);
        expect_task(b, j, TASK_REDUCE, 0, 1);
}
END_TEST

START_TEST(test_no_backup_when_disabled) {
        Worker *a = add_worker("a"), *b = add_worker("b"), *c = add_worker("c");
        uint64_t start;
        /* Jobs of the command line (lab mode) are made by job_new(), without backups. */
        Job *j = backup_setup(a, b, c, false, &start);

        scheduler_request_task(sched, a);
        ck_assert_uint_eq(fake.wake_at, start + TIMEOUT);
        fake.now = start + TIMEOUT - 1;
        scheduler_expire(sched);
        expect_nothing();
        ck_assert_uint_eq(j->counters.v[COUNTER_BACKUP_ATTEMPTS_STARTED], 0);
        /* The slow task is handed out again only at its deadline. */
        fake.now = start + TIMEOUT;
        scheduler_expire(sched);
        expect_task(a, j, TASK_MAP, 2, 2);
        ck_assert_uint_eq(job_find_task(j, TASK_MAP, 2)->backup_attempt, 0);
}
END_TEST

START_TEST(test_backup_floor_and_idle_first) {
        Worker *a = add_worker("a"), *b = add_worker("b");
        Job *j1 = add_job("1", 2, 1), *j2;

        j1->backup_tasks = true;
        scheduler_request_task(sched, a);
        scheduler_request_task(sched, b);
        expect_task(a, j1, TASK_MAP, 0, 1);
        expect_task(b, j1, TASK_MAP, 1, 1);
        /* Tasks of 1 ms: the floor of a second holds. */
        fake.now += 1000;
        finish(j1, TASK_MAP, 0, 1, true, 1);
        ck_assert_uint_eq(job_backup_after(j1), JOB_BACKUP_MIN_USEC);

        /* A newer job's task goes before a backup of an older job's. */
        j2 = add_job("2", 1, 1);
        fake.now += 2 * SEC;
        scheduler_request_task(sched, a);
        expect_task(a, j2, TASK_MAP, 0, 1);
        finish(j2, TASK_MAP, 0, 1, true, 1);
        scheduler_request_task(sched, a);
        expect_task(a, j2, TASK_REDUCE, 0, 1);
        /* Never a backup on the worker that runs the task. */
        scheduler_request_task(sched, b);
        expect_nothing();
        finish(j2, TASK_REDUCE, 0, 1, true, 1);
        scheduler_request_task(sched, a);
        expect_task(a, j1, TASK_MAP, 1, 2);
}
END_TEST

/* One map and one reduce: no task of a kind ever finishes before the job's only one. */
START_TEST(test_backup_single_task_of_a_kind) {
        Worker *a = add_worker("a"), *b = add_worker("b");
        Job *j = add_job("1", 1, 1);
        uint64_t start, reduce_start;

        j->backup_tasks = true;
        scheduler_request_task(sched, a);
        expect_task(a, j, TASK_MAP, 0, 1);
        start = fake.now;
        /* No task has finished: a quarter of the time-out. */
        ck_assert_uint_eq(job_backup_after(j), TIMEOUT / JOB_BACKUP_TIMEOUT_SHARE);
        scheduler_request_task(sched, b);
        expect_nothing();
        ck_assert_uint_eq(fake.wake_at, start + TIMEOUT / JOB_BACKUP_TIMEOUT_SHARE + 1);
        fake.now = start + TIMEOUT / JOB_BACKUP_TIMEOUT_SHARE;
        scheduler_expire(sched);
        expect_nothing();
        fake.now++;
        scheduler_expire(sched);
        expect_task(b, j, TASK_MAP, 0, 2);

        /* The backup wins after 1.5 s; the reduce borrows the map's median: 2 × 1.5 s. */
        fake.now += 3 * SEC / 2;
        finish(j, TASK_MAP, 0, 2, true, 1);
        ck_assert_uint_eq(job_median_duration(j, TASK_MAP), 3 * SEC / 2);
        scheduler_request_task(sched, b);
        expect_task(b, j, TASK_REDUCE, 0, 1);
        reduce_start = fake.now;
        finish(j, TASK_MAP, 0, 1, true, 0);
        ck_assert_uint_eq(job_backup_after(j), 3 * SEC);
        scheduler_request_task(sched, a);
        expect_nothing();
        ck_assert_uint_eq(fake.wake_at, reduce_start + 3 * SEC + 1);
        fake.now = reduce_start + 3 * SEC + 1;
        scheduler_expire(sched);
        expect_task(a, j, TASK_REDUCE, 0, 2);
        ck_assert_uint_eq(j->counters.v[COUNTER_BACKUP_ATTEMPTS_STARTED], 2);
        finish(j, TASK_REDUCE, 0, 2, true, 1);
        ck_assert_int_eq(j->state, JOB_DONE);
        ck_assert_uint_eq(j->counters.v[COUNTER_BACKUP_ATTEMPTS_WON], 2);
}
END_TEST

/* With a journal a map's files are in place before its COMMIT record is durable: the
 * reduce tasks go out then, while the job's progress waits for the records. */
START_TEST(test_reduces_while_maps_commit) {
        Worker *a = add_worker("a"), *b = add_worker("b"), *c = add_worker("c");
        Job *j = add_job("1", 2, 2);
        Task *m0 = job_find_task(j, TASK_MAP, 0), *m1 = job_find_task(j, TASK_MAP, 1);

        scheduler_request_task(sched, a);
        scheduler_request_task(sched, b);
        expect_task(a, j, TASK_MAP, 0, 1);
        expect_task(b, j, TASK_MAP, 1, 1);
        job_begin_commit(j, m0, 1);
        scheduler_request_task(sched, a);
        expect_nothing();
        ck_assert(!job_maps_in_place(j));
        job_begin_commit(j, m1, 1);
        ck_assert(job_maps_in_place(j));
        scheduler_dispatch(sched);
        expect_task(a, j, TASK_REDUCE, 0, 1);
        scheduler_request_task(sched, c);
        expect_task(c, j, TASK_REDUCE, 1, 1);
        /* Nothing a client reads has moved. */
        ck_assert_int_eq(j->state, JOB_MAPPING);
        ck_assert_uint_eq(j->done[TASK_MAP], 0);

        ck_assert_int_eq(scheduler_finish_task(sched, j, m0, 1, true, NULL, NULL), 1);
        ck_assert_int_eq(scheduler_finish_task(sched, j, m1, 1, true, NULL, NULL), 1);
        ck_assert_int_eq(j->state, JOB_REDUCING);
        ck_assert_uint_eq(j->committing[TASK_MAP], 0);
        job_begin_commit(j, job_find_task(j, TASK_REDUCE, 0), 1);
        ck_assert(!job_all_in_place(j));
        job_begin_commit(j, job_find_task(j, TASK_REDUCE, 1), 1);
        ck_assert(job_all_in_place(j));
        ck_assert_int_eq(j->state, JOB_REDUCING);
        finish(j, TASK_REDUCE, 0, 1, true, 1);
        finish(j, TASK_REDUCE, 1, 1, true, 1);
        ck_assert_int_eq(j->state, JOB_DONE);
}
END_TEST

START_TEST(test_counters_of_committed_attempt) {
        Worker *a = add_worker("a"), *b = add_worker("b");
        Job *j = add_job("1", 1, 1);

        scheduler_request_task(sched, a);
        expect_task(a, j, TASK_MAP, 0, 1);
        /* A failed attempt's counters do not count. */
        finish_counted(j, TASK_MAP, 0, 1, false, 0, 5);
        ck_assert_uint_eq(j->counters.v[COUNTER_MAP_INPUT_RECORDS], 0);
        scheduler_request_task(sched, a);
        expect_task(a, j, TASK_MAP, 0, 2);
        scheduler_request_task(sched, b);
        fake.now += TIMEOUT;
        scheduler_expire(sched);
        expect_task(b, j, TASK_MAP, 0, 3);
        /* The task ran three times; the attempt committed counts, once. */
        finish_counted(j, TASK_MAP, 0, 3, true, 1, 7);
        finish_counted(j, TASK_MAP, 0, 2, true, 0, 7);
        ck_assert_uint_eq(j->counters.v[COUNTER_MAP_INPUT_RECORDS], 7);
        ck_assert_uint_eq(j->counters.v[COUNTER_BACKUP_ATTEMPTS_WON], 0);
        ck_assert_uint_eq(j->counters.v[COUNTER_TASK_ATTEMPTS_FAILED], 2);
        ck_assert_uint_eq(j->counters.v[COUNTER_TASK_ATTEMPTS_TIMED_OUT], 1);
        ck_assert_uint_eq(j->counters.v[COUNTER_TASK_ATTEMPTS], 3);
}
END_TEST

START_TEST(test_observers) {
        Worker *a;
        Job *j;

        j = add_job("1", 1, 1);
        ck_assert_uint_eq(fake.events[EVENT_JOB_ADDED], 1);
        ck_assert_uint_eq(fake.events[EVENT_JOB_CHANGED], 1);

        /* A job changes when a worker starts it and when a task completes. */
        a = add_worker("a");
        scheduler_request_task(sched, a);
        expect_task(a, j, TASK_MAP, 0, 1);
        ck_assert_uint_eq(fake.events[EVENT_JOB_CHANGED], 2);
        finish(j, TASK_MAP, 0, 1, true, 1);
        ck_assert_uint_eq(fake.events[EVENT_JOB_CHANGED], 3);

        /* An observer that unsubscribed hears nothing more. */
        scheduler_unsubscribe(sched, on_event);
        scheduler_remove_worker(sched, a);
        ck_assert_uint_eq(fake.events[EVENT_WORKERS_CHANGED], 1);
        ck_assert_uint_eq(fake.events[EVENT_JOB_CHANGED], 3);
}
END_TEST

static Suite *regular_suite(void) {
        Suite *s = suite_create("scheduler");
        TCase *tc = tcase_create("scheduler");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_tasks_in_order);
        tcase_add_test(tc, test_older_job_first);
        tcase_add_test(tc, test_newer_maps_while_older_waits);
        tcase_add_test(tc, test_timeout_reassigns);
        tcase_add_test(tc, test_late_finish_of_timed_out_attempt);
        tcase_add_test(tc, test_failed_attempt_runs_again);
        tcase_add_test(tc, test_disconnect_hands_out_at_once);
        tcase_add_test(tc, test_assign_drops_worker);
        tcase_add_test(tc, test_lab_mode_end);
        tcase_add_test(tc, test_lab_mode_failure);
        tcase_add_test(tc, test_cancel);
        tcase_add_test(tc, test_workers_of_the_owner);
        tcase_add_test(tc, test_ended_jobs_forgotten);
        tcase_add_test(tc, test_ended_files_dropped);
        tcase_add_test(tc, test_observers);
        tcase_add_test(tc, test_backup_after_median);
        tcase_add_test(tc, test_backup_original_wins);
        tcase_add_test(tc, test_backup_attempt_lost);
        tcase_add_test(tc, test_backup_original_lost);
        tcase_add_test(tc, test_no_backup_when_disabled);
        tcase_add_test(tc, test_backup_floor_and_idle_first);
        tcase_add_test(tc, test_backup_single_task_of_a_kind);
        tcase_add_test(tc, test_reduces_while_maps_commit);
        tcase_add_test(tc, test_counters_of_committed_attempt);
        suite_add_tcase(s, tc);
        return s;
}

int main(int argc, char **argv) {
        log_set_max_level(LOG_WARNING);
        return unit_run("scheduler", regular_suite(), NULL, argc, argv);
}
