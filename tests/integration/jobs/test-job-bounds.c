/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a client can make the job server and its workers hold, against the real programs
 * on a Unix socket: a GetJob watcher that does not read (the coordinator's memory stays
 * bounded, and the watcher gets the newest state once it reads), many large ended jobs
 * ("mrkvctl jobs" keeps working), a job over the limit of files, and inputs a worker
 * refuses without reading them whole or blocking (a 1 GiB sparse file, a FIFO swapped in
 * after the job was submitted). The memory bounds are printed with what was measured. */
#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "json-util.h"
#include "macro.h"
#include "mr-files.h"
#include "org.mrkv.MapReduce.varlink.h"
#include "test-daemon.h"
#include "varlink-client.h"

/* A job of many files with long names: 20,000 × 200 bytes, a 4 MiB file list. */
#define N_FILES 20000U
#define NAME_LEN 200U
/* Changes of the job while its watcher does not read: before the watcher's updates were
 * merged, each queued the whole file list, 2,000 × 4 MiB. */
#define N_UPDATES 2000U
/* The coordinator's resident memory with such a job and an unread watcher: the job, one
 * reply with its file list, and the SubmitJob message it was parsed from take ~30 MiB. */
#define COORDINATOR_RSS_MAX (64ULL * 1024 * 1024)
/* A worker given a 1 GiB input: it must not read it. */
#define WORKER_RSS_MAX (64ULL * 1024 * 1024)
#define SPARSE_SIZE (1024ULL * 1024 * 1024)

static bool sanitized;

static void start_coordinator(TestDaemon *d, const char *dir, const char *extra) {
        char state[4096];
        const char *args[] = { "--state-directory", state, extra, NULL };

        snprintf(state, sizeof(state), "%s/state", dir);
        test_daemon_start(d, test_program("MRKV_TEST_COORDINATOR"), dir, "coordinator.sock",
                          &(TestDaemonOptions) { .args = args });
}

static VarlinkClient *client_new(const TestDaemon *d) {
        VarlinkClient *c = NULL;

        ck_assert_int_eq(varlink_client_connect(d->address, &c), 0);
        return c;
}

/* Calls method and returns its reply; fails the test on an error reply unless want_error
 * names it. */
static json_object *call(VarlinkClient *c, const char *method, json_object *p, const char *want_error) {
        json_object *reply = NULL;
        const char *error = NULL;

        ck_assert_int_eq(varlink_client_call(c, method, p, TEST_TIMEOUT_USEC, &reply, &error), 0);
        if (want_error)
                ck_assert_str_eq(error ?: "(none)", want_error);
        else
                ck_assert_msg(!error, "%s failed: %s", method, error);
        return reply;
}

/* A file of a few bytes under a path of NAME_LEN characters whose name starts with tag;
 * returns its path. */
static char *make_input(const char *dir, char tag) {
        char *path = NULL;
        int fd;

        ck_assert_uint_lt(strlen(dir) + 16, NAME_LEN);
        ck_assert_int_ge(asprintf(&path, "%s/%c%0*d.txt", dir, tag, (int) (NAME_LEN - strlen(dir) - 6), 0), 0);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "a b\n", 4), 4);
        close(fd);
        return path;
}

/* SubmitJob of app over n copies of input; returns the job id (malloc'd), or NULL with
 * the error reply's reason in *ret_reason when want_error is given. */
static char *submit(VarlinkClient *c, const char *app, const char *input, unsigned n, const char *want_error,
                    char **ret_reason) {
        _cleanup_json_ json_object *p = NULL, *reply = NULL;
        json_object *files = json_object_new_array_ext((int) n), *v;

        for (unsigned i = 0; i < n; i++)
                ck_assert_int_eq(json_array_append(files, json_object_new_string(input)), 0);
        ck_assert_int_eq(json_build_object(&p, "app", json_object_new_string(app), "files", files,
                                           "nreduce", json_object_new_int(1), NULL),
                         0);
        reply = call(c, MAPREDUCE_METHOD_SUBMIT_JOB, p, want_error);
        if (want_error) {
                ck_assert(json_object_object_get_ex(reply, "reason", &v));
                *ret_reason = strdup(json_object_get_string(v));
                return NULL;
        }
        ck_assert(json_object_object_get_ex(reply, "job", &v));
        return strdup(json_object_get_string(v));
}

static json_object *job_params(const char *id) {
        json_object *p = NULL;

        ck_assert_int_eq(json_build_object(&p, "job", json_object_new_string(id), NULL), 0);
        return p;
}

/* GetJob's job object (a new reference). */
static json_object *get_job(VarlinkClient *c, const char *id) {
        _cleanup_json_ json_object *p = job_params(id), *reply = call(c, MAPREDUCE_METHOD_GET_JOB, p, NULL);
        json_object *job = NULL;

        ck_assert(json_object_object_get_ex(reply, "job", &job));
        return json_object_get(job);
}

static json_object *member(json_object *o, const char *key) {
        json_object *v = NULL;

        ck_assert_msg(json_object_object_get_ex(o, key, &v), "no member %s", key);
        return v;
}

/* The number of files in a Job object, -1 for null. */
static int files_listed(json_object *job) {
        json_object *files = member(job, "files");
        return files ? (int) json_object_array_length(files) : -1;
}

/* Runs one map task as a worker would, without reading its input: its (empty) output
 * under the attempt's temporary name, then FinishTask. */
static void fake_map_task(VarlinkClient *w) {
        _cleanup_json_ json_object *task = NULL, *p = NULL, *done = NULL;
        char name[MR_NAME_MAX], *path = NULL;
        const char *job;
        int task_index, attempt, fd;

        task = call(w, MAPREDUCE_METHOD_REQUEST_TASK, NULL, NULL);
        ck_assert_str_eq(json_object_get_string(member(task, "kind")), "map");
        job = json_object_get_string(member(task, "job"));
        task_index = json_object_get_int(member(task, "task"));
        attempt = json_object_get_int(member(task, "attempt"));
        mr_map_temp_name(name, job, (unsigned) task_index, (unsigned) attempt);
        ck_assert_int_ge(asprintf(&path, "%s/%s", json_object_get_string(member(task, "workdir")), name), 0);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        close(fd);
        free(path);

        ck_assert_int_eq(json_build_object(&p,
                                           "job", json_object_new_string(job),
                                           "kind", json_object_new_string("map"),
                                           "task", json_object_new_int(task_index),
                                           "attempt", json_object_new_int(attempt),
                                           "ok", json_object_new_boolean(true),
                                           NULL),
                         0);
        done = call(w, MAPREDUCE_METHOD_FINISH_TASK, p, NULL);
}

/* Reads a GetJob stream's next reply: its job (a new reference) and whether more follow. */
static json_object *read_update(VarlinkClient *watcher, bool *ret_continues) {
        _cleanup_json_ json_object *reply = NULL;
        const char *error = NULL;

        ck_assert_int_eq(varlink_client_read(watcher, TEST_TIMEOUT_USEC, &reply, &error, ret_continues), 0);
        ck_assert_msg(!error, "GetJob failed: %s", error);
        return json_object_get(member(reply, "job"));
}

typedef struct MapsCounted {
        VarlinkClient *c;
        const char *id;
} MapsCounted;

/* Whether the job counts N_UPDATES maps done. */
static bool all_maps_counted(void *userdata) {
        MapsCounted *m = userdata;
        _cleanup_json_ json_object *job = get_job(m->c, m->id);

        return json_object_get_int(member(job, "map_done")) >= (int) N_UPDATES;
}

/* A watcher that reads nothing while its job changes N_UPDATES times: the coordinator does
 * not queue the states it missed. Once it reads, it gets the first reply and then the
 * newest state, and the last reply when the job ends. */
START_TEST(test_unread_watcher) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL, *w = NULL, *watcher = NULL;
        _cleanup_json_ json_object *p = NULL, *job = NULL, *last = NULL, *cancelled = NULL;
        _cleanup_free_ char *dir = test_dir_new(), *input = make_input(dir, 'i'), *id = NULL;
        uint64_t rss_max = 0;
        unsigned n_replies = 0;
        TestDaemon d;
        bool continues;

        start_coordinator(&d, dir, NULL);
        c = client_new(&d);
        w = client_new(&d);
        watcher = client_new(&d);
        id = submit(c, "wc", input, N_FILES, NULL, NULL);

        /* The watcher asks, and then does not read; the first reply alone fills the socket. */
        p = job_params(id);
        ck_assert_int_eq(varlink_client_send(watcher, MAPREDUCE_METHOD_GET_JOB, p, VARLINK_CLIENT_MORE,
                                             TEST_TIMEOUT_USEC),
                         0);
        for (unsigned i = 1; i <= N_UPDATES; i++) {
                fake_map_task(w);
                if (i % 50 != 0)
                        continue;
                rss_max = MAX(rss_max, test_rss(d.pid));
                if (!sanitized && rss_max > COORDINATOR_RSS_MAX)
                        break; /* no need to go on to gigabytes */
        }
        printf("coordinator RSS with an unread watcher of a %u-file job: at most %" PRIu64
               " KiB over %u updates (bound %llu KiB)\n",
               N_FILES, rss_max / 1024, N_UPDATES, COORDINATOR_RSS_MAX / 1024);
        if (!sanitized)
                ck_assert_msg(rss_max <= COORDINATOR_RSS_MAX, "coordinator RSS %" PRIu64 " KiB over %llu KiB",
                              rss_max / 1024, COORDINATOR_RSS_MAX / 1024);

        /* A task counts once its record is durable, after FinishTask's answer: the
         * watcher reads once every change was made, or it would see the late ones too. */
        ck_assert(test_wait_until(TEST_TIMEOUT_USEC, all_maps_counted, &(MapsCounted) { c, id }));

        /* It reads now: the first reply with the files, then the newest state. */
        do {
                json_object_put(job);
                job = read_update(watcher, &continues);
                ck_assert(continues);
                ck_assert_int_eq(files_listed(job), n_replies++ == 0 ? (int) N_FILES : -1);
        } while (json_object_get_int(member(job, "map_done")) < (int) N_UPDATES);
        ck_assert_uint_le(n_replies, 2);

        /* The job ends: the last reply, with the files again. */
        cancelled = call(c, MAPREDUCE_METHOD_CANCEL_JOB, p, NULL);
        last = read_update(watcher, &continues);
        ck_assert(!continues);
        ck_assert_str_eq(json_object_get_string(member(last, "state")), "cancelled");
        ck_assert_int_eq(files_listed(last), (int) N_FILES);

        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* Runs mrkvctl against the coordinator d; returns its wait status, its output in *ret. */
static int mrkvctl(const TestDaemon *d, char *const args[], char **ret) {
        char env[sizeof(d->address) + 32];
        char *argv[32] = { (char *) test_program("MRKV_TEST_MRKVCTL") };

        for (size_t i = 0; args[i]; i++) {
                ck_assert_uint_lt(i + 2, ELEMENTSOF(argv));
                argv[i + 1] = args[i];
        }
        snprintf(env, sizeof(env), "MRKV_COORDINATOR_ADDRESS=%s", d->address);
        return test_run(argv, &(TestSpawn) { .env = (const char *const[]) { env, NULL }, .stderr_to_stdout = true },
                        ret);
}

static unsigned count_lines(const char *s) {
        unsigned n = 0;

        for (; *s; s++)
                n += *s == '\n';
        return n;
}

#define N_ENDED_JOBS 12U

/* Many ended jobs of many files: ListJobs stays small, the oldest file lists are dropped,
 * and "mrkvctl jobs" and "status" keep working. */
START_TEST(test_many_ended_jobs) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_json_ json_object *list = NULL, *oldest = NULL, *newest = NULL;
        _cleanup_free_ char *dir = test_dir_new(), *input = make_input(dir, 'i'), *out = NULL,
                            *status = NULL;
        char *ids[N_ENDED_JOBS];
        size_t size;
        TestDaemon d;

        start_coordinator(&d, dir, NULL);
        c = client_new(&d);
        for (unsigned i = 0; i < N_ENDED_JOBS; i++) {
                _cleanup_json_ json_object *p = NULL;

                ids[i] = submit(c, "wc", input, N_FILES, NULL, NULL);
                p = job_params(ids[i]);
                json_object_put(call(c, MAPREDUCE_METHOD_CANCEL_JOB, p, NULL));
        }

        list = call(c, MAPREDUCE_METHOD_LIST_JOBS, NULL, NULL);
        ck_assert_uint_eq(json_object_array_length(member(list, "jobs")), N_ENDED_JOBS);
        size = strlen(json_object_to_json_string_ext(list, JSON_C_TO_STRING_PLAIN));
        printf("ListJobs of %u ended %u-file jobs: %zu bytes\n", N_ENDED_JOBS, N_FILES, size);
        ck_assert_uint_lt(size, 64 * 1024);

        /* 12 lists of 4 MiB do not fit in the 32 MiB kept for ended jobs: the oldest go. */
        oldest = get_job(c, ids[0]);
        ck_assert_int_eq(files_listed(oldest), -1);
        newest = get_job(c, ids[N_ENDED_JOBS - 1]);
        ck_assert_int_eq(files_listed(newest), (int) N_FILES);

        ck_assert_int_eq(mrkvctl(&d, (char *[]) { (char *) "jobs", NULL }, &out), 0);
        ck_assert_uint_eq(count_lines(out), N_ENDED_JOBS + 1);
        ck_assert_int_eq(mrkvctl(&d, (char *[]) { (char *) "status", ids[0], NULL }, &status), 0);
        ck_assert_ptr_nonnull(strstr(status, "Input: (not kept)"));

        for (unsigned i = 0; i < N_ENDED_JOBS; i++)
                free(ids[i]);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* A job of more files than --max-job-files is refused with the reason. */
START_TEST(test_too_many_files) {
        _cleanup_free_ char *dir = test_dir_new(), *input = make_input(dir, 'i'), *out = NULL;
        char *args[16] = { (char *) "submit", (char *) "wc" };
        TestDaemon d;

        start_coordinator(&d, dir, "--max-job-files=10");
        for (size_t i = 2; i < 13; i++)
                args[i] = input;
        ck_assert_int_ne(mrkvctl(&d, args, &out), 0);
        ck_assert_msg(strstr(out, "too many input files: 11, at most 10 per job"), "mrkvctl said: %s", out);
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* Polls a job until it ends, sampling a worker's memory meanwhile. */
typedef struct JobWait {
        VarlinkClient *client;
        const char *id;
        pid_t worker;
        uint64_t worker_rss_max;
        json_object *job; /* once it ended */
} JobWait;

static bool job_has_ended(void *userdata) {
        JobWait *jw = userdata;
        _cleanup_json_ json_object *job = get_job(jw->client, jw->id);
        const char *state = json_object_get_string(member(job, "state"));

        if (!test_exited(jw->worker, NULL))
                jw->worker_rss_max = MAX(jw->worker_rss_max, test_rss(jw->worker));
        if (!streq(state, "done") && !streq(state, "failed") && !streq(state, "cancelled"))
                return false;
        jw->job = TAKE_PTR(job);
        return true;
}

static pid_t start_worker(const TestDaemon *d) {
        return test_spawn((char *[]) { (char *) test_program("MRKV_TEST_WORKER"), (char *) "--serve",
                                       (char *) "--connect", (char *) d->address, NULL },
                          NULL);
}

/* Waits for jw->id to end; jw->job is then its last state. */
static void wait_job(JobWait *jw) {
        ck_assert_msg(test_wait_until(TEST_TIMEOUT_USEC, job_has_ended, jw), "job %s did not end", jw->id);
}

/* A 1 GiB sparse input fails its map tasks before the worker reads it. */
START_TEST(test_sparse_input) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_free_ char *dir = test_dir_new(), *sparse = NULL, *id = NULL;
        JobWait jw = {};
        TestDaemon d;
        int fd;

        ck_assert_int_ge(asprintf(&sparse, "%s/sparse", dir), 0);
        fd = open(sparse, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ftruncate(fd, (off_t) SPARSE_SIZE), 0);
        close(fd);

        start_coordinator(&d, dir, NULL);
        c = client_new(&d);
        id = submit(c, "wc", sparse, 1, NULL, NULL);
        jw = (JobWait) { .client = c, .id = id, .worker = start_worker(&d) };
        wait_job(&jw);

        printf("worker RSS with a %llu MiB sparse input: at most %" PRIu64 " KiB (bound %llu KiB)\n",
               SPARSE_SIZE >> 20, jw.worker_rss_max / 1024, WORKER_RSS_MAX / 1024);
        ck_assert_str_eq(json_object_get_string(member(jw.job, "state")), "failed");
        ck_assert_msg(strstr(json_object_get_string(member(jw.job, "error")), "is larger than"), "error: %s",
                      json_object_get_string(member(jw.job, "error")));
        if (!sanitized)
                ck_assert_uint_le(jw.worker_rss_max, WORKER_RSS_MAX);

        json_object_put(jw.job);
        (void) test_kill(&jw.worker); /* --serve ends by its SIGTERM */
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

/* An input replaced by a FIFO after the job was submitted fails its task at once, and the
 * worker goes on to run the next job. */
START_TEST(test_fifo_input) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_free_ char *dir = test_dir_new(), *fifo = make_input(dir, 'f'), *good = make_input(dir, 'g'),
                            *id = NULL, *next = NULL;
        JobWait jw = {};
        TestDaemon d;

        start_coordinator(&d, dir, NULL);
        c = client_new(&d);
        id = submit(c, "wc", fifo, 1, NULL, NULL);
        ck_assert_int_eq(unlink(fifo), 0);
        ck_assert_int_eq(mkfifo(fifo, 0644), 0);

        jw = (JobWait) { .client = c, .id = id, .worker = start_worker(&d) };
        wait_job(&jw);
        ck_assert_str_eq(json_object_get_string(member(jw.job, "state")), "failed");
        ck_assert_msg(strstr(json_object_get_string(member(jw.job, "error")), "is not a regular file"),
                      "error: %s", json_object_get_string(member(jw.job, "error")));
        json_object_put(TAKE_PTR(jw.job));

        next = submit(c, "wc", good, 1, NULL, NULL);
        jw.id = next;
        wait_job(&jw);
        ck_assert_str_eq(json_object_get_string(member(jw.job, "state")), "done");

        json_object_put(jw.job);
        (void) test_kill(&jw.worker); /* --serve ends by its SIGTERM */
        ck_assert_int_eq(test_daemon_stop(&d), 0);
}
END_TEST

int main(int argc, char *argv[]) {
        Suite *s = suite_create("job-bounds");
        TCase *tc = tcase_create("bounds");

        /* Sanitizers pad and quarantine every block: the memory bounds are not checked. */
        sanitized = getenv("MRKV_TEST_SANITIZED");
        tcase_set_timeout(tc, 120);
        if (argc < 2 || streq(argv[1], "coordinator")) {
                tcase_add_test(tc, test_unread_watcher);
                tcase_add_test(tc, test_many_ended_jobs);
                tcase_add_test(tc, test_too_many_files);
        }
        if (argc < 2 || streq(argv[1], "worker")) {
                tcase_add_test(tc, test_sparse_input);
                tcase_add_test(tc, test_fifo_input);
        }
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
