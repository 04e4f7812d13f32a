/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "job-counters-json.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "org.mrkv.MapReduce.varlink.h"
#include "worker-api.h"

/* A map task's one input file; a reduce task reads every map's output, and is given none. */
static json_object *task_files_to_json(Job *j, Task *t) {
        _cleanup_json_ json_object *files = json_object_new_array();

        if (!files)
                return NULL;
        if (t->kind == TASK_MAP && json_array_append(files, json_object_new_string(j->files[t->file])) < 0)
                return NULL;
        return TAKE_PTR(files);
}

/* Fields of a task a worker gets only when it said it takes them (RequestTask's
 * "takes"): a worker rejects a reply with a field it does not know. */
enum {
        TAKES_TIMEOUT = 1U << 0,
        TAKES_COMBINE = 1U << 1,
};

static const char *const takes_names[] = { "timeout_usec", "combine" };

static int takes_from_json(json_object *a, unsigned *ret) {
        unsigned takes = 0;

        for (size_t i = 0; a && i < json_object_array_length(a); i++) {
                json_object *v = json_object_array_get_idx(a, i);

                if (!json_object_is_type(v, json_type_string))
                        return -EINVAL;
                /* Names it does not know are of a newer worker: not sent. */
                for (size_t k = 0; k < ELEMENTSOF(takes_names); k++)
                        if (streq(json_object_get_string(v), takes_names[k]))
                                takes |= 1U << k;
        }
        *ret = takes;
        return 0;
}

/* A map task's split, unless it reads its whole file; a streaming job's commands; the
 * task's time-out and a job without the combiner, for a worker that takes them. */
static int task_add_optional(json_object *p, Job *j, Task *t, unsigned takes) {
        int r = 0;

        if (t->kind == TASK_MAP && t->length != TASK_WHOLE_FILE) {
                r = json_object_add(p, "offset", json_object_new_int64((int64_t) t->offset));
                if (r >= 0)
                        r = json_object_add(p, "length", json_object_new_int64((int64_t) t->length));
        }
        if (r >= 0 && j->mapper)
                r = json_object_add(p, "mapper", json_object_new_string(j->mapper));
        if (r >= 0 && j->reducer)
                r = json_object_add(p, "reducer", json_object_new_string(j->reducer));
        if (r >= 0 && (takes & TAKES_TIMEOUT))
                r = json_object_add(p, "timeout_usec",
                                    json_object_new_int64((int64_t) MIN(j->timeout, (uint64_t) INT64_MAX)));
        if (r >= 0 && t->kind == TASK_MAP && !j->combine && (takes & TAKES_COMBINE))
                r = json_object_add(p, "combine", json_object_new_boolean(false));
        return r;
}

static int task_to_json(Job *j, Task *t, unsigned takes, json_object **ret) {
        _cleanup_json_ json_object *p = NULL;
        int r;

        r = json_build_object(&p,
                              "kind", json_object_new_string(task_kind_to_string(t->kind)),
                              "job", json_object_new_string(j->id),
                              "task", json_object_new_int64(t->index),
                              "attempt", json_object_new_int64(t->attempt),
                              "files", task_files_to_json(j, t),
                              "nmap", json_object_new_int64(j->nmap),
                              "nreduce", json_object_new_int64(j->nreduce),
                              "owner_uid", json_object_new_int64(j->owner_uid),
                              NULL);
        if (r < 0)
                return r;
        /* Without an app the worker runs its own (a job given on the command line). */
        if (j->app) {
                r = json_object_add(p, "app", json_object_new_string(j->app));
                if (r < 0)
                        return r;
        }
        r = json_object_add(p, "workdir", json_object_new_string(j->workdir));
        if (r < 0)
                return r;
        r = task_add_optional(p, j, t, takes);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

void worker_api_assign(Worker *w, Job *j, Task *t, void *userdata) {
        VarlinkConn *conn = w->userdata;
        json_object *p;

        /* An answer that cannot be queued closes the connection, and the disconnect handler
         * removes w from the scheduler (giving its tasks back) before the answer returns. */
        if (!j) {
                (void) varlink_conn_replyb(conn, "kind", json_object_new_string("exit"), NULL);
                return;
        }

        if (task_to_json(j, t, w->takes, &p) < 0) {
                log_oom();
                (void) job_release_owner(j, w);
                varlink_conn_close(conn);
                return;
        }
        log_debug("Assigned %s task %u attempt %u of job %s to %s.", task_kind_to_string(t->kind), t->index,
                  t->attempt, j->id, varlink_conn_describe(conn));
        (void) varlink_conn_reply(conn, p);
}

static int method_request_task(VarlinkConn *conn, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        MapReduceApi *a = userdata;
        Worker *w = varlink_conn_get_userdata(conn);
        struct {
                const char *worker;
                json_object *takes;
        } p = {};
        unsigned takes;
        int r;

        r = varlink_conn_dispatch(conn, parameters,
                                  (const VarlinkField[]) {
                                          { "worker", VARLINK_STRING, offsetof(typeof(p), worker), false },
                                          { "takes", VARLINK_ARRAY, offsetof(typeof(p), takes), false },
                                          {},
                                  },
                                  &p);
        if (r < 0)
                return r;
        if (takes_from_json(p.takes, &takes) < 0)
                return varlink_conn_error_invalid_parameter(conn, "takes");
        if (flags & (VARLINK_CALL_MORE | VARLINK_CALL_ONEWAY))
                return varlink_conn_error_invalid_parameter(conn, "more");

        if (!w) {
                uid_t uid;

                /* Tasks go only to workers of the job's owner: a worker is who connected. */
                r = varlink_conn_get_peer_credentials(conn, &uid, NULL);
                if (r < 0)
                        return varlink_conn_errorb(conn, MAPREDUCE_ERROR_PERMISSION_DENIED,
                                                   "reason", json_object_new_string("a worker must connect over a Unix socket"),
                                                   NULL);
                r = scheduler_add_worker(a->scheduler, varlink_conn_describe(conn), uid, conn, &w);
                if (r < 0)
                        return r;
                varlink_conn_set_userdata(conn, w);
                /* Idle between tasks, and yet not to be closed as idle. */
                varlink_conn_set_long_lived(conn, true);
                log_debug("Worker %s%s%s (uid %u) connected.", varlink_conn_describe(conn),
                          p.worker ? " " : "", p.worker ?: "", (unsigned) uid);
        }

        w->takes = takes;
        /* The reply is deferred until there is a task; this worker waits in line. */
        scheduler_request_task(a->scheduler, w);
        return 0;
}

typedef struct FinishTaskParameters {
        const char *job, *kind, *error;
        uint32_t task, attempt;
        bool ok;
        json_object *counters;
} FinishTaskParameters;

/* The job and task a FinishTask call names: 0, or a negative errno once the call was
 * answered with an error. */
static int finish_find_task(MapReduceApi *a, VarlinkConn *conn, const FinishTaskParameters *p, Job **ret_job,
                            Task **ret_task) {
        int kind;
        Job *job;
        Task *t;

        kind = task_kind_from_string(p->kind);
        if (kind < 0)
                return varlink_conn_error_invalid_parameter(conn, "kind");
        job = scheduler_find_job(a->scheduler, p->job);
        if (!job)
                return varlink_conn_errorb(conn, MAPREDUCE_ERROR_NO_SUCH_JOB,
                                           "job", json_object_new_string(p->job),
                                           NULL);
        t = job_find_task(job, kind, p->task);
        if (!t)
                return varlink_conn_errorb(conn, MAPREDUCE_ERROR_NO_SUCH_TASK,
                                           "job", json_object_new_string(p->job),
                                           "kind", json_object_new_string(p->kind),
                                           "task", json_object_new_int64(p->task),
                                           NULL);
        *ret_job = job;
        *ret_task = t;
        return 0;
}

/* A committed attempt whose journal record is on its way to the disk. */
typedef struct DurableCommit {
        MapReduceApi *api;
        char *job;
        TaskKind kind;
        unsigned task, attempt;
        JobCounters counters;
} DurableCommit;

/* The task is done once its record is durable. */
static void on_commit_durable(void *owner, void *userdata, int error) {
        DurableCommit *d = userdata;
        Job *job = error < 0 ? NULL : scheduler_find_job(d->api->scheduler, d->job);
        Task *t = job ? job_find_task(job, d->kind, d->task) : NULL;

        if (t)
                (void) scheduler_finish_task(d->api->scheduler, job, t, d->attempt, true, NULL, &d->counters);
        free(d->job);
        free(d);
}

static int finish_journaled(MapReduceApi *a, VarlinkConn *conn, Job *job, Task *t, unsigned attempt,
                            const JobCounters *counters) {
        _cleanup_free_ DurableCommit *d = NULL;
        int r;

        d = calloc(1, sizeof(DurableCommit));
        if (!d)
                return -ENOMEM;
        *d = (DurableCommit) { .api = a, .kind = t->kind, .task = t->index, .attempt = attempt, .counters = *counters };
        d->job = strdup(job->id);
        if (!d->job)
                return -ENOMEM;
        r = job_journal_commit_task(a->journal, job, t, attempt, counters);
        if (r < 0) {
                free(d->job);
                return log_error_errno(r, "Failed to journal %s task %u of job %s: %m", task_kind_to_string(t->kind),
                                       t->index, job->id);
        }
        /* The worker is answered now, and goes on with its next task while the record is
         * synced: the answer promises it nothing. What a client sees of the commit (the
         * job's progress, its end) waits for the record (TASK_COMMITTING); if the
         * coordinator dies first, the task runs again. Reduce tasks go out once every
         * map's files are in place, without waiting (job_assign()). */
        r = job_journal_wait(a->journal, NULL, on_commit_durable, d);
        if (r < 0) {
                free(d->job);
                return r;
        }
        TAKE_PTR(d);
        r = varlink_conn_reply(conn, NULL);
        /* Workers waiting for the reduce tasks get them now. */
        scheduler_dispatch(a->scheduler);
        return r;
}

static int method_finish_task(VarlinkConn *conn, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        MapReduceApi *a = userdata;
        FinishTaskParameters p = {};
        JobCounters counters = {};
        Job *job = NULL;
        Task *t = NULL;
        int r;

        r = varlink_conn_dispatch(conn, parameters,
                                  (const VarlinkField[]) {
                                          { "job", VARLINK_STRING, offsetof(typeof(p), job), true },
                                          { "kind", VARLINK_STRING, offsetof(typeof(p), kind), true },
                                          { "task", VARLINK_UINT32, offsetof(typeof(p), task), true },
                                          { "attempt", VARLINK_UINT32, offsetof(typeof(p), attempt), true },
                                          { "ok", VARLINK_BOOL, offsetof(typeof(p), ok), true },
                                          { "error", VARLINK_STRING, offsetof(typeof(p), error), false },
                                          { "counters", VARLINK_OBJECT, offsetof(typeof(p), counters), false },
                                          {},
                                  },
                                  &p);
        if (r < 0)
                return r;
        /* Only the workers' own counters: the coordinator keeps the others itself. */
        if (p.counters && job_counters_from_json(p.counters, 0, _COUNTER_WORKER_MAX, &counters) < 0)
                return varlink_conn_error_invalid_parameter(conn, "counters");
        r = finish_find_task(a, conn, &p, &job, &t);
        if (r < 0)
                return r;
        /* Only the connection an attempt was handed to may report it. */
        Worker *w = varlink_conn_get_userdata(conn);
        if (!w || !scheduler_worker_holds(w, job, t, p.attempt))
                return varlink_conn_errorb(conn, MAPREDUCE_ERROR_TASK_NOT_ASSIGNED,
                                           "job", json_object_new_string(p.job),
                                           "kind", json_object_new_string(p.kind),
                                           "task", json_object_new_int64(p.task),
                                           "attempt", json_object_new_int64(p.attempt),
                                           NULL);
        w->assigned.attempt = 0;

        /* The worker renamed a successful attempt's output into place before reporting. */
        const char *error = p.error ?: "no reason given";
        bool accept = p.ok && job_may_complete(job, t, p.attempt);

        if (!p.ok)
                log_warning("%s task %u attempt %u failed on %s: %s", p.kind, p.task, p.attempt,
                            varlink_conn_describe(conn), error);
        else
                log_debug("%s task %u attempt %u finished on %s%s.", p.kind, p.task, p.attempt,
                          varlink_conn_describe(conn), accept ? "" : " (not committed)");

        if (accept && a->journal)
                return finish_journaled(a, conn, job, t, p.attempt, &counters);
        (void) scheduler_finish_task(a->scheduler, job, t, p.attempt, accept, error, &counters);
        return varlink_conn_reply(conn, NULL);
}

void worker_api_disconnect(MapReduceApi *a, VarlinkConn *conn) {
        Worker *w = varlink_conn_get_userdata(conn);

        if (!w)
                return;
        varlink_conn_set_userdata(conn, NULL);
        scheduler_remove_worker(a->scheduler, w);
}

int worker_api_register(VarlinkServer *server) {
        int r;

        r = varlink_server_bind(server, MAPREDUCE_METHOD_REQUEST_TASK, method_request_task);
        if (r < 0)
                return r;
        return varlink_server_bind(server, MAPREDUCE_METHOD_FINISH_TASK, method_finish_task);
}
