/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "job-api.h"
#include "log.h"
#include "macro.h"

struct JobWatch {
        VarlinkConn *conn;
        Job *job;
        LIST_FIELDS(JobWatch, watches);
};

static json_object *json_string_array(char *const *v, unsigned n) {
        json_object *a = json_object_new_array_ext((int) n);
        if (!a)
                return NULL;
        for (unsigned i = 0; i < n; i++)
                json_object_array_add(a, json_object_new_string(v[i]));
        return a;
}

static json_object *job_to_json(Job *j) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;

        json_object_object_add(o, "id", json_object_new_string(j->id));
        json_object_object_add(o, "app", j->app ? json_object_new_string(j->app) : NULL);
        json_object_object_add(o, "state", json_object_new_string(job_display_state(j)));
        json_object_object_add(o, "files", json_string_array(j->files, j->nmap));
        json_object_object_add(o, "nreduce", json_object_new_int64(j->nreduce));
        json_object_object_add(o, "workdir", json_object_new_string(j->workdir));
        json_object_object_add(o, "map_done", json_object_new_int64(j->done[TASK_MAP]));
        json_object_object_add(o, "map_total", json_object_new_int64(j->nmap));
        json_object_object_add(o, "reduce_done", json_object_new_int64(j->done[TASK_REDUCE]));
        json_object_object_add(o, "reduce_total", json_object_new_int64(j->nreduce));
        json_object_object_add(o, "progress", json_object_new_double(job_progress(j)));
        json_object_object_add(o, "submit_time", json_object_new_int64((int64_t) j->submit_time));
        if (j->start_time > 0)
                json_object_object_add(o, "start_time", json_object_new_int64((int64_t) j->start_time));
        if (j->finish_time > 0)
                json_object_object_add(o, "finish_time", json_object_new_int64((int64_t) j->finish_time));
        if (j->error)
                json_object_object_add(o, "error", json_object_new_string(j->error));

        json_object *outputs = json_object_new_array();
        if (j->state == JOB_DONE)
                for (unsigned r = 0; r < j->nreduce; r++) {
                        char *path;
                        if (job_output_path(j, r, &path) < 0)
                                continue;
                        json_object_array_add(outputs, json_object_new_string(path));
                        free(path);
                }
        json_object_object_add(o, "outputs", outputs);
        return o;
}

static json_object *reply_with_job(Job *j) {
        json_object *p = json_object_new_object();
        if (p)
                json_object_object_add(p, "job", job_to_json(j));
        return p;
}

static int error_no_such_job(VarlinkConn *conn, const char *id) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "job", json_object_new_string(id));
        return varlink_conn_error(conn, "org.mrkv.MapReduce.NoSuchJob", e);
}

/* SubmitJob's "files": the strings of the array (which keeps them), -EINVAL if it is
 * empty, too long, or holds anything but strings without NUL bytes. */
static int files_from_json(json_object *array, char ***ret, size_t *ret_n) {
        _cleanup_free_ char **files = NULL;
        size_t n;

        n = json_object_array_length(array);
        if (n == 0 || n > 1000000)
                return -EINVAL;
        files = calloc(n + 1, sizeof(char *));
        if (!files)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *f = json_object_array_get_idx(array, i);
                if (!json_object_is_type(f, json_type_string) ||
                    strlen(json_object_get_string(f)) != (size_t) json_object_get_string_len(f))
                        return -EINVAL;
                files[i] = (char *) json_object_get_string(f);
        }
        *ret = TAKE_PTR(files);
        *ret_n = n;
        return 0;
}

static int method_submit_job(VarlinkConn *conn, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        MapReduceApi *a = userdata;
        struct {
                const char *app, *workdir;
                json_object *files;
                uint32_t nreduce;
                uint64_t timeout_usec;
        } p = { .nreduce = a->submitter->default_nreduce, .timeout_usec = a->submitter->default_task_timeout };
        _cleanup_free_ char **files = NULL;
        _cleanup_free_ char *reason = NULL;
        const char *bad;
        size_t n;
        Job *job;
        int r;

        r = varlink_dispatch(parameters,
                             (const VarlinkField[]) {
                                     { "app", VARLINK_STRING, offsetof(typeof(p), app), true },
                                     { "files", VARLINK_ARRAY, offsetof(typeof(p), files), true },
                                     { "nreduce", VARLINK_UINT32, offsetof(typeof(p), nreduce), false },
                                     { "workdir", VARLINK_STRING, offsetof(typeof(p), workdir), false },
                                     { "task_timeout_usec", VARLINK_UINT64, offsetof(typeof(p), timeout_usec), false },
                                     {},
                             },
                             &p, &bad);
        if (r < 0)
                return varlink_conn_error_invalid_parameter(conn, bad);
        if (p.timeout_usec == 0)
                return varlink_conn_error_invalid_parameter(conn, "task_timeout_usec");

        r = files_from_json(p.files, &files, &n);
        if (r == -EINVAL)
                return varlink_conn_error_invalid_parameter(conn, "files");
        if (r < 0)
                return r;

        r = job_submit(a->submitter, p.app, files, (unsigned) n, p.nreduce, p.workdir, p.timeout_usec, &job,
                       &reason);
        if (r == -EINVAL) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "reason", json_object_new_string(reason ?: "invalid job"));
                return varlink_conn_error(conn, "org.mrkv.MapReduce.InvalidJob", e);
        }
        if (r < 0)
                return r;

        log_info("Job %s submitted by %s.", job->id, varlink_conn_describe(conn));
        json_object *reply = json_object_new_object();
        if (!reply)
                return -ENOMEM;
        json_object_object_add(reply, "job", json_object_new_string(job->id));
        return varlink_conn_reply(conn, reply);
}

/* The job named by a call's only parameter, "job". Returns 1 and the job, or 0 when
 * the call was answered with an error. */
static int dispatch_job(MapReduceApi *a, VarlinkConn *conn, json_object *parameters, Job **ret) {
        struct { const char *job; } p = {};
        const char *bad;
        int r;

        r = varlink_dispatch(parameters,
                             (const VarlinkField[]) {
                                     { "job", VARLINK_STRING, 0, true },
                                     {},
                             },
                             &p, &bad);
        if (r < 0)
                return varlink_conn_error_invalid_parameter(conn, bad);
        *ret = scheduler_find_job(a->scheduler, p.job);
        if (!*ret)
                return error_no_such_job(conn, p.job);
        return 1;
}

static int method_get_job(VarlinkConn *conn, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        MapReduceApi *a = userdata;
        JobWatch *w;
        Job *j;
        int r;

        r = dispatch_job(a, conn, parameters, &j);
        if (r <= 0)
                return r;

        if (!(flags & VARLINK_CALL_MORE) || job_ended(j))
                return varlink_conn_reply(conn, reply_with_job(j));

        /* A stream: this reply now, one on every change, the last when the job ends. */
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (JobWatch) { .conn = conn, .job = j };
        LIST_PREPEND(watches, a->watches, w);
        return varlink_conn_notify(conn, reply_with_job(j));
}

static int method_list_jobs(VarlinkConn *conn, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        MapReduceApi *a = userdata;
        const char *bad;
        json_object *jobs, *reply;
        int r;

        r = varlink_dispatch(parameters, (const VarlinkField[]) { {} }, NULL, &bad);
        if (r < 0)
                return varlink_conn_error_invalid_parameter(conn, bad);

        jobs = json_object_new_array();
        reply = json_object_new_object();
        if (!jobs || !reply) {
                json_object_put(jobs);
                json_object_put(reply);
                return -ENOMEM;
        }
        for (size_t i = 0; i < a->scheduler->n_jobs; i++)
                json_object_array_add(jobs, job_to_json(a->scheduler->jobs[i]));
        json_object_object_add(reply, "jobs", jobs);
        return varlink_conn_reply(conn, reply);
}

static int method_cancel_job(VarlinkConn *conn, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        MapReduceApi *a = userdata;
        Job *j;
        int r;

        r = dispatch_job(a, conn, parameters, &j);
        if (r <= 0)
                return r;

        r = scheduler_cancel_job(a->scheduler, j);
        if (r == -ESTALE) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "job", json_object_new_string(j->id));
                json_object_object_add(e, "state", json_object_new_string(job_state_to_string(j->state)));
                return varlink_conn_error(conn, "org.mrkv.MapReduce.JobEnded", e);
        }
        if (r < 0)
                return r;
        log_info("Job %s cancelled by %s.", j->id, varlink_conn_describe(conn));
        return varlink_conn_reply(conn, NULL);
}

/* A watched job changed: a reply to each of its watchers, the last when it has ended. */
static void on_job_event(ObserverEvent event, Job *j, void *userdata) {
        MapReduceApi *a = userdata;

        if (event != EVENT_JOB_CHANGED)
                return;
        /* A reply may close its connection at once, and job_api_disconnect() free its watch. */
        LIST_FOREACH_SAFE(watches, w, n, a->watches) {
                if (w->job != j)
                        continue;
                if (!job_ended(j)) {
                        (void) varlink_conn_notify(w->conn, reply_with_job(j));
                        continue;
                }
                /* The last reply of the stream ends the call. */
                LIST_REMOVE(watches, a->watches, w);
                (void) varlink_conn_reply(w->conn, reply_with_job(j));
                free(w);
        }
}

void job_api_disconnect(MapReduceApi *a, VarlinkConn *conn) {
        LIST_FOREACH_SAFE(watches, w, n, a->watches)
                if (w->conn == conn) {
                        LIST_REMOVE(watches, a->watches, w);
                        free(w);
                }
}

void job_api_done(MapReduceApi *a) {
        scheduler_unsubscribe(a->scheduler, on_job_event);
        while (a->watches) {
                JobWatch *w = a->watches;
                LIST_REMOVE(watches, a->watches, w);
                free(w);
        }
}

int job_api_register(MapReduceApi *a, VarlinkServer *server) {
        static const struct {
                const char *name;
                VarlinkMethod func;
        } methods[] = {
                { "org.mrkv.MapReduce.SubmitJob", method_submit_job },
                { "org.mrkv.MapReduce.GetJob", method_get_job },
                { "org.mrkv.MapReduce.ListJobs", method_list_jobs },
                { "org.mrkv.MapReduce.CancelJob", method_cancel_job },
        };

        for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
                int r = varlink_server_bind(server, methods[i].name, methods[i].func);
                if (r < 0)
                        return r;
        }
        return scheduler_subscribe(a->scheduler, on_job_event, a);
}
