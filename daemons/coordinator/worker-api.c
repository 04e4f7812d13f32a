/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "commit.h"
#include "log.h"
#include "macro.h"
#include "worker-api.h"

static json_object *task_to_json(Job *j, Task *t) {
        json_object *p = json_object_new_object(), *files = json_object_new_array();

        if (!p || !files) {
                json_object_put(p);
                json_object_put(files);
                return NULL;
        }
        if (t->kind == TASK_MAP)
                json_object_array_add(files, json_object_new_string(j->files[t->index]));
        json_object_object_add(p, "kind", json_object_new_string(task_kind_to_string(t->kind)));
        json_object_object_add(p, "job", json_object_new_string(j->id));
        json_object_object_add(p, "task", json_object_new_int64(t->index));
        json_object_object_add(p, "attempt", json_object_new_int64(t->attempt));
        json_object_object_add(p, "files", files);
        json_object_object_add(p, "nmap", json_object_new_int64(j->nmap));
        json_object_object_add(p, "nreduce", json_object_new_int64(j->nreduce));
        if (j->app)
                json_object_object_add(p, "app", json_object_new_string(j->app));
        json_object_object_add(p, "workdir", json_object_new_string(j->workdir));
        return p;
}

static int reply_exit(VarlinkConn *conn) {
        json_object *p = json_object_new_object();
        if (!p)
                return -ENOMEM;
        json_object_object_add(p, "kind", json_object_new_string("exit"));
        return varlink_conn_reply(conn, p);
}

void worker_api_assign(Worker *w, Job *j, Task *t, void *userdata) {
        VarlinkConn *conn = w->userdata;

        if (!j) {
                (void) reply_exit(conn);
                return;
        }

        json_object *p = task_to_json(j, t);
        if (!p) {
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
        struct { const char *worker; } p = {};
        const char *bad;
        int r;

        r = varlink_dispatch(parameters,
                             (const VarlinkField[]) {
                                     { "worker", VARLINK_STRING, 0, false },
                                     {},
                             },
                             &p, &bad);
        if (r < 0)
                return varlink_conn_error_invalid_parameter(conn, bad);
        if (flags & (VARLINK_CALL_MORE | VARLINK_CALL_ONEWAY))
                return varlink_conn_error_invalid_parameter(conn, "more");

        if (!w) {
                r = scheduler_add_worker(a->scheduler, varlink_conn_describe(conn), conn, &w);
                if (r < 0)
                        return r;
                varlink_conn_set_userdata(conn, w);
                log_debug("Worker %s%s%s connected.", varlink_conn_describe(conn), p.worker ? " " : "",
                          p.worker ?: "");
        }

        /* The reply is deferred until there is a task; this worker waits in line. */
        scheduler_request_task(a->scheduler, w);
        return 0;
}

/* The job and task a FinishTask call names: 1, or 0 when the call was answered with an error. */
static int finish_find_task(MapReduceApi *a, VarlinkConn *conn, const char *id, const char *kind_name, TaskKind kind,
                            uint32_t index, Job **ret_job, Task **ret_task) {
        Job *job = scheduler_find_job(a->scheduler, id);
        if (!job) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "job", json_object_new_string(id));
                return varlink_conn_error(conn, "org.mrkv.MapReduce.NoSuchJob", e);
        }
        Task *t = job_find_task(job, kind, index);
        if (!t) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "job", json_object_new_string(id));
                json_object_object_add(e, "kind", json_object_new_string(kind_name));
                json_object_object_add(e, "task", json_object_new_int64(index));
                return varlink_conn_error(conn, "org.mrkv.MapReduce.NoSuchTask", e);
        }
        *ret_job = job;
        *ret_task = t;
        return 1;
}

static int method_finish_task(VarlinkConn *conn, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        MapReduceApi *a = userdata;
        struct {
                const char *job, *kind, *error;
                uint32_t task, attempt;
                bool ok;
        } p = {};
        const char *bad;
        Job *job = NULL;
        Task *t = NULL;
        int kind, r;

        r = varlink_dispatch(parameters,
                             (const VarlinkField[]) {
                                     { "job", VARLINK_STRING, offsetof(typeof(p), job), true },
                                     { "kind", VARLINK_STRING, offsetof(typeof(p), kind), true },
                                     { "task", VARLINK_UINT32, offsetof(typeof(p), task), true },
                                     { "attempt", VARLINK_UINT32, offsetof(typeof(p), attempt), true },
                                     { "ok", VARLINK_BOOL, offsetof(typeof(p), ok), true },
                                     { "error", VARLINK_STRING, offsetof(typeof(p), error), false },
                                     {},
                             },
                             &p, &bad);
        if (r < 0)
                return varlink_conn_error_invalid_parameter(conn, bad);
        kind = task_kind_from_string(p.kind);
        if (kind < 0)
                return varlink_conn_error_invalid_parameter(conn, "kind");
        r = finish_find_task(a, conn, p.job, p.kind, kind, p.task, &job, &t);
        if (r <= 0)
                return r;

        /* The first successful attempt's output goes into place before the task counts as done. */
        const char *error = p.error ?: "no reason given";
        bool accept = p.ok && job_may_complete(job, t, p.attempt);
        if (accept) {
                r = commit_attempt_output(job, t, p.attempt);
                if (r < 0) {
                        log_warning_errno(r, "Cannot commit %s task %u attempt %u of %s: %m", p.kind, p.task,
                                          p.attempt, varlink_conn_describe(conn));
                        accept = false;
                        error = "output files missing";
                }
        }
        if (!accept)
                remove_attempt_output(job, t, p.attempt);

        if (!p.ok)
                log_warning("%s task %u attempt %u failed on %s: %s", p.kind, p.task, p.attempt,
                            varlink_conn_describe(conn), error);
        else
                log_debug("%s task %u attempt %u finished on %s%s.", p.kind, p.task, p.attempt,
                          varlink_conn_describe(conn), accept ? "" : " (not committed)");

        (void) scheduler_finish_task(a->scheduler, job, t, p.attempt, accept, error);
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

        r = varlink_server_bind(server, "org.mrkv.MapReduce.RequestTask", method_request_task);
        if (r < 0)
                return r;
        return varlink_server_bind(server, "org.mrkv.MapReduce.FinishTask", method_finish_task);
}
