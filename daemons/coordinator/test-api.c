/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The coordinator's Varlink API (worker-api.c, job-api.c) on a real server: a Coordinator
 * on an sd-event loop in a thread of its own, called over a Unix socket with the blocking
 * VarlinkClient. What each method answers, the errors of the interface file with their
 * parameters, InvalidParameter for what the field tables or the methods refuse, and a
 * GetJob stream. */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "address.h"
#include "coordinator.h"
#include "harness.h"
#include "json-util.h"
#include "macro.h"
#include "org.mrkv.MapReduce.varlink.h"
#include "varlink-client.h"

/* A deadline for every call; no test asserts how long anything takes. */
#define CALL_TIMEOUT TEST_TIMEOUT_USEC
/* Parameters as JSON text: a path and a few members. */
#define PARAMS_MAX (PATH_MAX + 256)

static struct {
        char address[PATH_MAX + 8];
        char input[PATH_MAX];
        char workdir[PATH_MAX];
        sd_event *event;
        sd_event_source *stop_source;
        int stop_fd;
        Coordinator *coordinator;
        pthread_t thread;
} srv = { .stop_fd = -EBADF };

static int on_stop(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void *loop_thread(void *arg) {
        return (void *) (intptr_t) sd_event_loop(srv.event);
}

/* Checked fixtures: every test (a child process of its own) gets a new coordinator, in a
 * directory of its own (the harness removes them all at the end). */
static void setup(void) {
        _cleanup_free_ char *dir = test_dir_new();
        char state[PATH_MAX];
        Address a;
        int fd;

        snprintf(srv.address, sizeof(srv.address), "unix:%s/coordinator.sock", dir);
        snprintf(srv.input, sizeof(srv.input), "%s/input.txt", dir);
        snprintf(state, sizeof(state), "%s/state", dir);
        snprintf(srv.workdir, sizeof(srv.workdir), "%s/state/jobs/1", dir);
        fd = open(srv.input, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "a b a\n", 6), 6);
        close(fd);

        ck_assert_int_eq(sd_event_new(&srv.event), 0);
        ck_assert_int_eq(coordinator_new(srv.event, &srv.coordinator), 0);
        srv.coordinator->submitter.state_dir = strdup(state);
        ck_assert_ptr_nonnull(srv.coordinator->submitter.state_dir);
        srv.coordinator->submitter.max_files = 3; /* test_submit_refused() goes over it */
        srv.coordinator->submitter.max_map_tasks = 5; /* and test_splits() this */

        ck_assert_int_eq(address_parse(srv.address, &a), 0);
        fd = address_listen(&a);
        address_done(&a);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(coordinator_listen_fd(srv.coordinator, fd), 0);

        srv.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        ck_assert_int_ge(srv.stop_fd, 0);
        ck_assert_int_ge(sd_event_add_io(srv.event, &srv.stop_source, srv.stop_fd, EPOLLIN, on_stop, NULL),
                         0);
        ck_assert_int_eq(pthread_create(&srv.thread, NULL, loop_thread, NULL), 0);
}

static void teardown(void) {
        void *ret = NULL;

        ck_assert_int_eq(eventfd_write(srv.stop_fd, 1), 0);
        ck_assert_int_eq(pthread_join(srv.thread, &ret), 0);
        ck_assert_int_eq((int) (intptr_t) ret, 0);
        /* The loop has stopped: what is left belongs to this thread now. */
        srv.coordinator = coordinator_free(srv.coordinator);
        srv.stop_source = sd_event_source_disable_unref(srv.stop_source);
        srv.event = sd_event_unref(srv.event);
        closep(&srv.stop_fd);
}

static VarlinkClient *client_new(void) {
        VarlinkClient *c = NULL;

        ck_assert_int_eq(varlink_client_connect(srv.address, &c), 0);
        return c;
}

/* One call with parameters given as JSON text (NULL: none). Returns the reply's
 * parameters; the error's name, if any, goes to error (empty for none). */
static json_object *call(VarlinkClient *c, const char *method, const char *params, char error[static 128]) {
        _cleanup_json_ json_object *p = params ? json_tokener_parse(params) : NULL;
        json_object *reply = NULL;
        const char *e = NULL;

        ck_assert(!params || p);
        ck_assert_int_eq(varlink_client_call(c, method, p, CALL_TIMEOUT, &reply, &e), 0);
        snprintf(error, 128, "%s", e ?: "");
        return reply;
}

/* A call that must succeed. */
static json_object *call_ok(VarlinkClient *c, const char *method, const char *params) {
        char error[128];
        json_object *reply = call(c, method, params, error);

        ck_assert_msg(error[0] == '\0', "%s(%s) failed: %s", method, params ?: "", error);
        return reply;
}

/* A call that must fail with error, the reply's parameters. */
static json_object *call_error(VarlinkClient *c, const char *method, const char *params, const char *error) {
        char got[128];
        json_object *reply = call(c, method, params, got);

        ck_assert_msg(streq(got, error), "%s(%s): expected %s, got '%s'", method, params ?: "", error, got);
        return reply;
}

static void expect_invalid_parameter(VarlinkClient *c, const char *method, const char *params,
                                     const char *parameter) {
        _cleanup_json_ json_object *e = call_error(c, method, params, VARLINK_ERROR_INVALID_PARAMETER);
        json_object *v;

        ck_assert(json_object_object_get_ex(e, "parameter", &v));
        ck_assert_str_eq(json_object_get_string(v), parameter);
}

static json_object *member(json_object *o, const char *key) {
        json_object *v = NULL;

        ck_assert_msg(json_object_object_get_ex(o, key, &v), "no member %s in %s", key,
                      json_object_to_json_string(o));
        return v;
}

static const char *get_string(json_object *o, const char *key) {
        json_object *v = member(o, key);

        ck_assert(json_object_is_type(v, json_type_string));
        return json_object_get_string(v);
}

static int64_t get_int(json_object *o, const char *key) {
        json_object *v = member(o, key);

        ck_assert(json_object_is_type(v, json_type_int));
        return json_object_get_int64(v);
}

/* Submits a job of app wc on the input file; returns its id. */
static void submit(VarlinkClient *c, unsigned nreduce, char id[static 16]) {
        char params[PARAMS_MAX];
        _cleanup_json_ json_object *reply = NULL;

        snprintf(params, sizeof(params), "{\"app\":\"wc\",\"files\":[\"%s\"],\"nreduce\":%u}", srv.input,
                 nreduce);
        reply = call_ok(c, MAPREDUCE_METHOD_SUBMIT_JOB, params);
        snprintf(id, 16, "%s", get_string(reply, "job"));
}

START_TEST(test_jobs) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new();
        _cleanup_json_ json_object *got = NULL, *list = NULL, *cancelled = NULL, *ended = NULL, *none = NULL;
        json_object *job, *files;
        char id[16];

        submit(c, 2, id);
        ck_assert_str_eq(id, "1");

        got = call_ok(c, MAPREDUCE_METHOD_GET_JOB, "{\"job\":\"1\"}");
        job = member(got, "job");
        ck_assert_str_eq(get_string(job, "id"), "1");
        ck_assert_str_eq(get_string(job, "app"), "wc");
        ck_assert_str_eq(get_string(job, "state"), "queued");
        ck_assert_int_eq(get_int(job, "owner_uid"), geteuid());
        /* No worker is connected: the job says whose it waits for. */
        ck_assert_ptr_nonnull(strstr(get_string(job, "waiting"), "a worker of uid"));
        ck_assert_str_eq(get_string(job, "workdir"), srv.workdir);
        files = member(job, "files");
        ck_assert_uint_eq(json_object_array_length(files), 1);
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(files, 0)), srv.input);
        ck_assert_int_eq(get_int(job, "nreduce"), 2);
        ck_assert_int_eq(get_int(job, "map_done"), 0);
        ck_assert_int_eq(get_int(job, "map_total"), 1);
        ck_assert_int_eq(get_int(job, "reduce_total"), 2);
        ck_assert_int_gt(get_int(job, "submit_time"), 0);
        ck_assert(!json_object_object_get_ex(job, "start_time", NULL));
        ck_assert(json_object_is_type(member(job, "progress"), json_type_double));
        ck_assert_uint_eq(json_object_array_length(member(job, "outputs")), 0);

        list = call_ok(c, MAPREDUCE_METHOD_LIST_JOBS, NULL);
        ck_assert_uint_eq(json_object_array_length(member(list, "jobs")), 1);
        ck_assert_str_eq(get_string(json_object_array_get_idx(member(list, "jobs"), 0), "id"), "1");
        /* A summary: the lists only from GetJob. */
        job = json_object_array_get_idx(member(list, "jobs"), 0);
        ck_assert(json_object_object_get_ex(job, "files", &files));
        ck_assert_ptr_null(files);

        cancelled = call_ok(c, MAPREDUCE_METHOD_CANCEL_JOB, "{\"job\":\"1\"}");
        ended = call_error(c, MAPREDUCE_METHOD_CANCEL_JOB, "{\"job\":\"1\"}", MAPREDUCE_ERROR_JOB_ENDED);
        ck_assert_str_eq(get_string(ended, "job"), "1");
        ck_assert_str_eq(get_string(ended, "state"), "cancelled");

        none = call_error(c, MAPREDUCE_METHOD_GET_JOB, "{\"job\":\"7\"}", MAPREDUCE_ERROR_NO_SUCH_JOB);
        ck_assert_str_eq(get_string(none, "job"), "7");
        json_object_put(call_error(c, MAPREDUCE_METHOD_CANCEL_JOB, "{\"job\":\"7\"}",
                                   MAPREDUCE_ERROR_NO_SUCH_JOB));
}
END_TEST

START_TEST(test_submit_refused) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new();
        _cleanup_json_ json_object *e = NULL, *list = NULL, *via_link = NULL;
        char params[2 * PARAMS_MAX], link[PATH_MAX + 8], four[4 * PARAMS_MAX];

        e = call_error(c, MAPREDUCE_METHOD_SUBMIT_JOB, "{\"app\":\"wc\",\"files\":[\"relative.txt\"]}",
                       MAPREDUCE_ERROR_INVALID_JOB);
        ck_assert_ptr_nonnull(strstr(get_string(e, "reason"), "relative.txt"));
        json_object_put(TAKE_PTR(e));

        /* One file over the limit of files per job, with the limit in the reason. */
        snprintf(four, sizeof(four), "{\"app\":\"wc\",\"files\":[\"%s\",\"%s\",\"%s\",\"%s\"]}",
                 srv.input, srv.input, srv.input, srv.input);
        e = call_error(c, MAPREDUCE_METHOD_SUBMIT_JOB, four, MAPREDUCE_ERROR_INVALID_JOB);
        ck_assert_str_eq(get_string(e, "reason"), "too many input files: 4, at most 3 per job");

        expect_invalid_parameter(c, MAPREDUCE_METHOD_SUBMIT_JOB, "{\"app\":\"wc\",\"files\":[]}", "files");
        expect_invalid_parameter(c, MAPREDUCE_METHOD_SUBMIT_JOB, "{\"app\":\"wc\",\"files\":[1]}", "files");
        expect_invalid_parameter(c, MAPREDUCE_METHOD_SUBMIT_JOB, "{\"app\":\"wc\"}", "files");
        snprintf(params, sizeof(params), "{\"files\":[\"%s\"]}", srv.input);
        expect_invalid_parameter(c, MAPREDUCE_METHOD_SUBMIT_JOB, params, "app");
        snprintf(params, sizeof(params), "{\"app\":\"wc\",\"files\":[\"%s\"],\"task_timeout_usec\":0}",
                 srv.input);
        expect_invalid_parameter(c, MAPREDUCE_METHOD_SUBMIT_JOB, params, "task_timeout_usec");
        snprintf(params, sizeof(params), "{\"app\":\"wc\",\"files\":[\"%s\"],\"bogus\":1}", srv.input);
        expect_invalid_parameter(c, MAPREDUCE_METHOD_SUBMIT_JOB, params, "bogus");
        expect_invalid_parameter(c, MAPREDUCE_METHOD_GET_JOB, "{}", "job");
        expect_invalid_parameter(c, MAPREDUCE_METHOD_LIST_JOBS, "{\"all\":true}", "all");

        /* A working directory that is a symbolic link is not the directory it names. */
        snprintf(link, sizeof(link), "%s.link", srv.input);
        ck_assert_int_eq(symlink("/", link), 0);
        snprintf(params, sizeof(params), "{\"app\":\"wc\",\"files\":[\"%s\"],\"workdir\":\"%s\"}", srv.input,
                 link);
        via_link = call_error(c, MAPREDUCE_METHOD_SUBMIT_JOB, params, MAPREDUCE_ERROR_INVALID_JOB);
        ck_assert_ptr_nonnull(strstr(get_string(via_link, "reason"), "not an existing absolute directory"));

        /* Nothing refused was queued. */
        list = call_ok(c, MAPREDUCE_METHOD_LIST_JOBS, NULL);
        ck_assert_uint_eq(json_object_array_length(member(list, "jobs")), 0);
}
END_TEST

static void finish_params(char params[static 256], const char *job, const char *kind, unsigned task,
                          unsigned attempt, const char *rest) {
        snprintf(params, 256, "{\"job\":\"%s\",\"kind\":\"%s\",\"task\":%u,\"attempt\":%u%s}", job, kind,
                 task, attempt, rest);
}

/* RequestTask answers once, later: neither a stream nor one-way. */
static void expect_request_task_refuses_more(VarlinkClient *c) {
        _cleanup_json_ json_object *e = NULL;
        const char *error = NULL;
        bool continues = true;
        json_object *v;

        ck_assert_int_eq(varlink_client_send(c, MAPREDUCE_METHOD_REQUEST_TASK, NULL, VARLINK_CLIENT_MORE,
                                             CALL_TIMEOUT),
                         0);
        ck_assert_int_eq(varlink_client_read(c, CALL_TIMEOUT, &e, &error, &continues), 0);
        ck_assert_str_eq(error, VARLINK_ERROR_INVALID_PARAMETER);
        ck_assert(!continues);
        ck_assert(json_object_object_get_ex(e, "parameter", &v));
        ck_assert_str_eq(json_object_get_string(v), "more");
}

START_TEST(test_worker_calls) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new(), *w = client_new(),
                                                     *w2 = client_new();
        _cleanup_json_ json_object *task = NULL, *again = NULL, *no_job = NULL, *no_task = NULL,
                                   *done = NULL, *not_assigned = NULL, *stale = NULL;
        json_object *files;
        char id[16], params[256];

        submit(c, 1, id);

        task = call_ok(w, MAPREDUCE_METHOD_REQUEST_TASK, "{\"worker\":\"test\"}");
        ck_assert_str_eq(get_string(task, "kind"), "map");
        ck_assert_str_eq(get_string(task, "job"), id);
        ck_assert_int_eq(get_int(task, "task"), 0);
        ck_assert_int_eq(get_int(task, "attempt"), 1);
        ck_assert_int_eq(get_int(task, "nmap"), 1);
        ck_assert_int_eq(get_int(task, "nreduce"), 1);
        ck_assert_str_eq(get_string(task, "app"), "wc");
        ck_assert_str_eq(get_string(task, "workdir"), srv.workdir);
        ck_assert_int_eq(get_int(task, "owner_uid"), geteuid());
        files = member(task, "files");
        ck_assert_uint_eq(json_object_array_length(files), 1);
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(files, 0)), srv.input);

        /* Only over the connection the attempt was handed to: not a client's, not another
         * worker's, and not for an attempt it was not handed. */
        finish_params(params, id, "map", 0, 1, ",\"ok\":false");
        not_assigned = call_error(c, MAPREDUCE_METHOD_FINISH_TASK, params, MAPREDUCE_ERROR_TASK_NOT_ASSIGNED);
        ck_assert_int_eq(get_int(not_assigned, "attempt"), 1);
        json_object_put(call_error(w2, MAPREDUCE_METHOD_FINISH_TASK, params, MAPREDUCE_ERROR_TASK_NOT_ASSIGNED));
        finish_params(params, id, "map", 0, 2, ",\"ok\":false");
        json_object_put(call_error(w, MAPREDUCE_METHOD_FINISH_TASK, params, MAPREDUCE_ERROR_TASK_NOT_ASSIGNED));

        finish_params(params, "nope", "map", 0, 1, ",\"ok\":true");
        no_job = call_error(w, MAPREDUCE_METHOD_FINISH_TASK, params, MAPREDUCE_ERROR_NO_SUCH_JOB);
        ck_assert_str_eq(get_string(no_job, "job"), "nope");
        finish_params(params, id, "reduce", 5, 1, ",\"ok\":true");
        no_task = call_error(w, MAPREDUCE_METHOD_FINISH_TASK, params, MAPREDUCE_ERROR_NO_SUCH_TASK);
        ck_assert_str_eq(get_string(no_task, "job"), id);
        ck_assert_str_eq(get_string(no_task, "kind"), "reduce");
        ck_assert_int_eq(get_int(no_task, "task"), 5);
        finish_params(params, id, "sort", 0, 1, ",\"ok\":true");
        expect_invalid_parameter(w, MAPREDUCE_METHOD_FINISH_TASK, params, "kind");
        finish_params(params, id, "map", 0, 1, "");
        expect_invalid_parameter(w, MAPREDUCE_METHOD_FINISH_TASK, params, "ok");

        /* A failed attempt: the task is handed out again, as attempt 2. */
        finish_params(params, id, "map", 0, 1, ",\"ok\":false,\"error\":\"test failure\"");
        done = call_ok(w, MAPREDUCE_METHOD_FINISH_TASK, params);
        again = call_ok(w, MAPREDUCE_METHOD_REQUEST_TASK, NULL);
        ck_assert_str_eq(get_string(again, "kind"), "map");
        ck_assert_int_eq(get_int(again, "task"), 0);
        ck_assert_int_eq(get_int(again, "attempt"), 2);
        /* Attempt 1 was reported: it is no longer this connection's to report. */
        finish_params(params, id, "map", 0, 1, ",\"ok\":true");
        stale = call_error(w, MAPREDUCE_METHOD_FINISH_TASK, params, MAPREDUCE_ERROR_TASK_NOT_ASSIGNED);

        expect_request_task_refuses_more(w2);
}
END_TEST

/* A worker's report and its next request, sent back to back in one write. */
static void send_hand_off(VarlinkClient *w, const char *job, const char *kind, unsigned task, unsigned attempt) {
        _cleanup_json_ json_object *p = NULL;
        char params[256];

        finish_params(params, job, kind, task, attempt, ",\"ok\":true");
        p = json_tokener_parse(params);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(varlink_client_queue(w, MAPREDUCE_METHOD_FINISH_TASK, p, 0), 0);
        ck_assert_int_eq(varlink_client_send(w, MAPREDUCE_METHOD_REQUEST_TASK, NULL, 0, CALL_TIMEOUT), 0);
}

/* The next reply on w, which must succeed. */
static json_object *read_ok(VarlinkClient *w) {
        json_object *reply = NULL;
        const char *error = NULL;

        ck_assert_int_eq(varlink_client_read(w, CALL_TIMEOUT, &reply, &error, NULL), 0);
        ck_assert_msg(!error, "failed: %s", error);
        return reply;
}

static json_object *read_task(VarlinkClient *w, const char *job, const char *kind) {
        json_object *task = read_ok(w);

        ck_assert_str_eq(get_string(task, "job"), job);
        ck_assert_str_eq(get_string(task, "kind"), kind);
        return task;
}

/* Pipelined hand-offs: the report is answered at once, the request when a task is free,
 * in call order, also when no task is free until another worker's report, and when the
 * job ends meanwhile (the requests wait for the next job). */
START_TEST(test_pipelined_hand_off) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new(), *w1 = client_new(), *w2 = client_new();
        _cleanup_json_ json_object *map = NULL, *r1 = NULL, *r2 = NULL, *got = NULL, *s2 = NULL, *m1 = NULL,
                                   *m2 = NULL;
        char id[16], params[2 * PARAMS_MAX];

        submit(c, 2, id);
        map = call_ok(w1, MAPREDUCE_METHOD_REQUEST_TASK, NULL);
        ck_assert_str_eq(get_string(map, "kind"), "map");
        /* Nothing free for w2 until the map is done. */
        ck_assert_int_eq(varlink_client_send(w2, MAPREDUCE_METHOD_REQUEST_TASK, NULL, 0, CALL_TIMEOUT), 0);

        send_hand_off(w1, id, "map", 0, 1);
        json_object_put(read_ok(w1));
        r1 = read_task(w1, id, "reduce");
        r2 = read_task(w2, id, "reduce");
        ck_assert_int_ne(get_int(r1, "task"), get_int(r2, "task"));

        /* w1's request waits for a task, its report is answered meanwhile. */
        send_hand_off(w1, id, "reduce", (unsigned) get_int(r1, "task"), 1);
        json_object_put(read_ok(w1));
        got = call_ok(c, MAPREDUCE_METHOD_GET_JOB, "{\"job\":\"1\"}");
        ck_assert_int_eq(get_int(member(got, "job"), "reduce_done"), 1);
        json_object_put(TAKE_PTR(got));

        /* The last report ends the job; both requests wait for the next one, which has a
         * map for each. */
        send_hand_off(w2, id, "reduce", (unsigned) get_int(r2, "task"), 1);
        json_object_put(read_ok(w2));
        got = call_ok(c, MAPREDUCE_METHOD_GET_JOB, "{\"job\":\"1\"}");
        ck_assert_str_eq(get_string(member(got, "job"), "state"), "done");
        snprintf(params, sizeof(params), "{\"app\":\"wc\",\"files\":[\"%s\",\"%s\"],\"nreduce\":1}", srv.input,
                 srv.input);
        s2 = call_ok(c, MAPREDUCE_METHOD_SUBMIT_JOB, params);
        m1 = read_task(w1, "2", "map");
        m2 = read_task(w2, "2", "map");
        ck_assert_int_ne(get_int(m1, "task"), get_int(m2, "task"));
}
END_TEST

static json_object *counter(json_object *job, const char *name) {
        return member(member(job, "counters"), name);
}

START_TEST(test_splits) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new(), *w = client_new();
        _cleanup_json_ json_object *reply = NULL, *e = NULL, *got = NULL, *t0 = NULL, *t1 = NULL, *t2 = NULL,
                                   *t3 = NULL, *done = NULL, *s = NULL;
        char params[2 * PARAMS_MAX];
        json_object *job;

        /* 25 bytes in splits of 10, and an empty file: 3 + 1 map tasks. */
        snprintf(params, sizeof(params),
                 "{\"app\":\"wc\",\"files\":[\"%s\",\"%s\"],\"sizes\":[25,0],\"split_size\":10,\"nreduce\":1}",
                 srv.input, srv.input);
        reply = call_ok(c, MAPREDUCE_METHOD_SUBMIT_JOB, params);
        got = call_ok(c, MAPREDUCE_METHOD_GET_JOB, "{\"job\":\"1\"}");
        job = member(got, "job");
        ck_assert_int_eq(get_int(job, "map_total"), 4);
        ck_assert_int_eq(get_int(job, "split_size"), 10);
        ck_assert(json_object_get_boolean(member(job, "backup_tasks")));
        ck_assert_int_eq(json_object_get_int64(counter(job, "map_input_records")), 0);
        ck_assert_uint_eq(json_object_array_length(member(job, "files")), 2);

        /* Each map task gets its split; a file of one split is read whole. */
        t0 = call_ok(w, MAPREDUCE_METHOD_REQUEST_TASK, NULL);
        ck_assert_int_eq(get_int(t0, "offset"), 0);
        ck_assert_int_eq(get_int(t0, "length"), 10);
        ck_assert(!json_object_object_get_ex(t0, "mapper", NULL));

        /* Counters: not an object of non-negative integers, InvalidParameter; the
         * coordinator's own and unknown names are ignored. */
        finish_params(params, "1", "map", 0, 1, ",\"ok\":true,\"counters\":{\"map_input_records\":-1}");
        expect_invalid_parameter(w, MAPREDUCE_METHOD_FINISH_TASK, params, "counters");
        finish_params(params, "1", "map", 0, 1, ",\"ok\":true,\"counters\":{\"map_input_records\":\"3\"}");
        expect_invalid_parameter(w, MAPREDUCE_METHOD_FINISH_TASK, params, "counters");
        finish_params(params, "1", "map", 0, 1, ",\"ok\":true,\"counters\":[1]");
        expect_invalid_parameter(w, MAPREDUCE_METHOD_FINISH_TASK, params, "counters");
        finish_params(params, "1", "map", 0, 1,
                      ",\"ok\":true,\"counters\":{\"map_input_records\":3,\"backup_attempts_won\":9,\"later\":1}");
        done = call_ok(w, MAPREDUCE_METHOD_FINISH_TASK, params);

        t1 = call_ok(w, MAPREDUCE_METHOD_REQUEST_TASK, NULL);
        ck_assert_int_eq(get_int(t1, "task"), 1);
        ck_assert_int_eq(get_int(t1, "offset"), 10);
        json_object_put(call_ok(w, MAPREDUCE_METHOD_FINISH_TASK, (finish_params(params, "1", "map", 1, 1, ",\"ok\":true"), params)));
        t2 = call_ok(w, MAPREDUCE_METHOD_REQUEST_TASK, NULL);
        ck_assert_int_eq(get_int(t2, "offset"), 20);
        ck_assert_int_eq(get_int(t2, "length"), 5);
        json_object_put(call_ok(w, MAPREDUCE_METHOD_FINISH_TASK, (finish_params(params, "1", "map", 2, 1, ",\"ok\":true"), params)));
        t3 = call_ok(w, MAPREDUCE_METHOD_REQUEST_TASK, NULL);
        ck_assert_int_eq(get_int(t3, "task"), 3);
        ck_assert(!json_object_object_get_ex(t3, "offset", NULL));
        ck_assert(!json_object_object_get_ex(t3, "length", NULL));

        json_object_put(TAKE_PTR(got));
        got = call_ok(c, MAPREDUCE_METHOD_GET_JOB, "{\"job\":\"1\"}");
        job = member(got, "job");
        ck_assert_int_eq(json_object_get_int64(counter(job, "map_input_records")), 3);
        ck_assert_int_eq(json_object_get_int64(counter(job, "backup_attempts_won")), 0);
        ck_assert_int_eq(json_object_get_int64(counter(job, "task_attempts")), 4);

        /* Too many splits for the bound: refused, with the numbers. */
        snprintf(params, sizeof(params), "{\"app\":\"wc\",\"files\":[\"%s\"],\"sizes\":[60],\"split_size\":10}",
                 srv.input);
        e = call_error(c, MAPREDUCE_METHOD_SUBMIT_JOB, params, MAPREDUCE_ERROR_INVALID_JOB);
        ck_assert_str_eq(get_string(e, "reason"),
                         "too many map tasks: 6 splits of 10 bytes, at most 5 per job (a larger split_size makes fewer)");
        snprintf(params, sizeof(params), "{\"app\":\"wc\",\"files\":[\"%s\"],\"sizes\":[1,2]}", srv.input);
        expect_invalid_parameter(c, MAPREDUCE_METHOD_SUBMIT_JOB, params, "sizes");
        snprintf(params, sizeof(params), "{\"app\":\"wc\",\"files\":[\"%s\"],\"sizes\":[-1]}", srv.input);
        expect_invalid_parameter(c, MAPREDUCE_METHOD_SUBMIT_JOB, params, "sizes");
        snprintf(params, sizeof(params), "{\"app\":\"wc\",\"files\":[\"%s\"],\"split_size\":-1}", srv.input);
        expect_invalid_parameter(c, MAPREDUCE_METHOD_SUBMIT_JOB, params, "split_size");

        /* Streaming jobs: both commands, and no plugin. */
        snprintf(params, sizeof(params), "{\"app\":\"\",\"files\":[\"%s\"],\"mapper\":\"cat\"}", srv.input);
        json_object_put(call_error(c, MAPREDUCE_METHOD_SUBMIT_JOB, params, MAPREDUCE_ERROR_INVALID_JOB));
        snprintf(params, sizeof(params), "{\"app\":\"wc\",\"files\":[\"%s\"],\"mapper\":\"cat\",\"reducer\":\"cat\"}",
                 srv.input);
        json_object_put(call_error(c, MAPREDUCE_METHOD_SUBMIT_JOB, params, MAPREDUCE_ERROR_INVALID_JOB));
        snprintf(params, sizeof(params), "{\"app\":\"\",\"files\":[\"%s\"],\"mapper\":\"\",\"reducer\":\"cat\"}",
                 srv.input);
        json_object_put(call_error(c, MAPREDUCE_METHOD_SUBMIT_JOB, params, MAPREDUCE_ERROR_INVALID_JOB));
        snprintf(params, sizeof(params),
                 "{\"app\":\"streaming\",\"files\":[\"%s\"],\"mapper\":\"tr a b\",\"reducer\":\"uniq -c\","
                 "\"backup_tasks\":false,\"split_size\":0,\"sizes\":[6]}",
                 srv.input);
        s = call_ok(c, MAPREDUCE_METHOD_SUBMIT_JOB, params);
        json_object_put(TAKE_PTR(got));
        got = call_ok(c, MAPREDUCE_METHOD_GET_JOB, "{\"job\":\"2\"}");
        job = member(got, "job");
        ck_assert_str_eq(get_string(job, "app"), "streaming");
        ck_assert_str_eq(get_string(job, "mapper"), "tr a b");
        ck_assert_str_eq(get_string(job, "reducer"), "uniq -c");
        ck_assert(!json_object_get_boolean(member(job, "backup_tasks")));
        ck_assert_int_eq(get_int(job, "split_size"), 0);
        ck_assert_int_eq(get_int(job, "map_total"), 1);
}
END_TEST

/* A job's time-out and combiner switch reach the workers that say they take them, and no
 * other: an older worker rejects a field it does not know. */
START_TEST(test_task_options) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new(), *w = client_new(), *old = client_new();
        _cleanup_json_ json_object *s = NULL, *got = NULL, *t0 = NULL, *t1 = NULL, *s2 = NULL, *got2 = NULL,
                                   *t2 = NULL;
        static const char takes[] = "{\"worker\":\"test\",\"takes\":[\"combine\",\"timeout_usec\",\"later\"]}";
        char params[2 * PARAMS_MAX];

        expect_invalid_parameter(w, MAPREDUCE_METHOD_REQUEST_TASK, "{\"takes\":[1]}", "takes");
        expect_invalid_parameter(w, MAPREDUCE_METHOD_REQUEST_TASK, "{\"takes\":\"combine\"}", "takes");
        snprintf(params, sizeof(params), "{\"app\":\"wc\",\"files\":[\"%s\",\"%s\"],\"combine\":\"no\"}",
                 srv.input, srv.input);
        expect_invalid_parameter(c, MAPREDUCE_METHOD_SUBMIT_JOB, params, "combine");

        snprintf(params, sizeof(params),
                 "{\"app\":\"wc\",\"files\":[\"%s\",\"%s\"],\"nreduce\":1,\"combine\":false,"
                 "\"task_timeout_usec\":7000000}",
                 srv.input, srv.input);
        s = call_ok(c, MAPREDUCE_METHOD_SUBMIT_JOB, params);
        got = call_ok(c, MAPREDUCE_METHOD_GET_JOB, "{\"job\":\"1\"}");
        ck_assert(!json_object_get_boolean(member(member(got, "job"), "combine")));

        t0 = call_ok(w, MAPREDUCE_METHOD_REQUEST_TASK, takes);
        ck_assert_int_eq(get_int(t0, "timeout_usec"), 7000000);
        ck_assert(!json_object_get_boolean(member(t0, "combine")));
        t1 = call_ok(old, MAPREDUCE_METHOD_REQUEST_TASK, "{\"worker\":\"old\"}");
        ck_assert_int_eq(get_int(t1, "task"), 1);
        ck_assert(!json_object_object_get_ex(t1, "timeout_usec", NULL));
        ck_assert(!json_object_object_get_ex(t1, "combine", NULL));

        /* By default a job combines, and its tasks do not say so. */
        snprintf(params, sizeof(params), "{\"app\":\"wc\",\"files\":[\"%s\"],\"nreduce\":1}", srv.input);
        s2 = call_ok(c, MAPREDUCE_METHOD_SUBMIT_JOB, params);
        got2 = call_ok(c, MAPREDUCE_METHOD_GET_JOB, "{\"job\":\"2\"}");
        ck_assert(json_object_get_boolean(member(member(got2, "job"), "combine")));
        json_object_put(call_ok(w, MAPREDUCE_METHOD_FINISH_TASK, (finish_params(params, "1", "map", 0, 1, ",\"ok\":true"), params)));
        t2 = call_ok(w, MAPREDUCE_METHOD_REQUEST_TASK, takes);
        ck_assert_str_eq(get_string(t2, "job"), "2");
        ck_assert(json_object_object_get_ex(t2, "timeout_usec", NULL));
        ck_assert(!json_object_object_get_ex(t2, "combine", NULL));
}
END_TEST

/* Reads one reply of a GetJob stream: the job's state, and whether more follow. The
 * stream's first and last replies have the job's lists, the updates between not. */
static void read_job_reply(VarlinkClient *c, bool first, char state[static 16], bool *ret_continues) {
        _cleanup_json_ json_object *reply = NULL;
        const char *error = NULL;
        json_object *files;

        ck_assert_int_eq(varlink_client_read(c, CALL_TIMEOUT, &reply, &error, ret_continues), 0);
        ck_assert_msg(!error, "GetJob failed: %s", error);
        snprintf(state, 16, "%s", get_string(member(reply, "job"), "state"));
        ck_assert(json_object_object_get_ex(member(reply, "job"), "files", &files));
        if (first || !*ret_continues)
                ck_assert_uint_eq(json_object_array_length(files), 1);
        else
                ck_assert_ptr_null(files);
}

START_TEST(test_get_job_stream) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = client_new(), *watcher = client_new(),
                                                     *w = client_new();
        _cleanup_json_ json_object *p = NULL, *task = NULL, *cancelled = NULL;
        char id[16], state[16];
        bool continues;

        submit(c, 1, id);
        ck_assert_int_eq(json_build_object(&p, "job", json_object_new_string(id), NULL), 0);
        ck_assert_int_eq(varlink_client_send(watcher, MAPREDUCE_METHOD_GET_JOB, p, VARLINK_CLIENT_MORE,
                                             CALL_TIMEOUT),
                         0);
        read_job_reply(watcher, true, state, &continues);
        ck_assert_str_eq(state, "queued");
        ck_assert(continues);

        /* A worker starts the job: the watcher hears of it. */
        task = call_ok(w, MAPREDUCE_METHOD_REQUEST_TASK, NULL);
        read_job_reply(watcher, false, state, &continues);
        ck_assert_str_eq(state, "mapping");
        ck_assert(continues);

        /* The job ends: the last reply of the stream. */
        cancelled = call_ok(c, MAPREDUCE_METHOD_CANCEL_JOB, "{\"job\":\"1\"}");
        read_job_reply(watcher, false, state, &continues);
        ck_assert_str_eq(state, "cancelled");
        ck_assert(!continues);

        /* The connection goes on after the stream. */
        json_object_put(call_ok(watcher, MAPREDUCE_METHOD_LIST_JOBS, NULL));
}
END_TEST

static Suite *api_suite(void) {
        Suite *s = suite_create("api");
        TCase *tc = tcase_create("varlink");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_jobs);
        tcase_add_test(tc, test_submit_refused);
        tcase_add_test(tc, test_worker_calls);
        tcase_add_test(tc, test_pipelined_hand_off);
        tcase_add_test(tc, test_get_job_stream);
        tcase_add_test(tc, test_splits);
        tcase_add_test(tc, test_task_options);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(api_suite());
}
