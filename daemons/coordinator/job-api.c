/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "access.h"
#include "job-api.h"
#include "job-counters-json.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "org.mrkv.MapReduce.varlink.h"

struct JobWatch {
        VarlinkConn *conn;
        Job *job;
        /* The job changed while the watcher had not read what it was sent: the newest
         * state goes out once it has, and the states in between are never queued. */
        bool dirty;
        bool allowed; /* the caller may see the job's files (access.h) */
        LIST_FIELDS(JobWatch, watches);
};

/* What a Job object carries beyond the counts and the state. The lists can be large
 * (a file name per map task, a path per reduce task): a GetJob stream sends them in its
 * first and last reply only, and ListJobs never. */
typedef enum JobDetail {
        JOB_SUMMARY,
        JOB_FULL,
} JobDetail;

/* The mr-out-* files, once the job is done, for those who may see them. */
static json_object *job_outputs_to_json(Job *j, bool allowed) {
        _cleanup_json_ json_object *outputs = json_object_new_array();

        if (!outputs)
                return NULL;
        for (unsigned r = 0; allowed && j->state == JOB_DONE && r < j->nreduce; r++) {
                _cleanup_free_ char *path = NULL;

                if (job_output_path(j, r, &path) < 0)
                        return NULL;
                if (json_array_append(outputs, json_object_new_string(path)) < 0)
                        return NULL;
        }
        return TAKE_PTR(outputs);
}

static int job_add_optional(json_object *o, Scheduler *s, Job *j) {
        int r = 0;

        if (!job_ended(j) && !scheduler_job_has_worker(s, j)) {
                char waiting[64];
                snprintf(waiting, sizeof(waiting), "a worker of uid %u", (unsigned) j->owner_uid);
                r = json_object_add(o, "waiting", json_object_new_string(waiting));
        }
        if (r >= 0 && j->start_time > 0)
                r = json_object_add(o, "start_time", json_object_new_int64((int64_t) j->start_time));
        if (r >= 0 && j->finish_time > 0)
                r = json_object_add(o, "finish_time", json_object_new_int64((int64_t) j->finish_time));
        if (r >= 0 && j->error)
                r = json_object_add(o, "error", json_object_new_string(j->error));
        return r;
}

/* The lists of a Job: null where the detail leaves them out, or where the coordinator
 * no longer keeps an ended job's file names; empty for those who may not see them. */
static int job_add_lists(json_object *o, Job *j, JobDetail detail, bool allowed) {
        if (detail == JOB_SUMMARY)
                return json_object_object_add(o, "files", NULL) < 0 ||
                       json_object_object_add(o, "outputs", NULL) < 0 ? -ENOMEM : 0;
        if (j->files ? json_object_add(o, "files", json_string_array_new(j->files, allowed ? j->nfiles : 0)) < 0
                     : json_object_object_add(o, "files", NULL) < 0)
                return -ENOMEM;
        return json_object_add(o, "outputs", job_outputs_to_json(j, allowed));
}

/* How the job runs: splits, backups, the combiner, a streaming job's commands (for those who may see
 * them), and its counters (a few hundred bytes, in every reply). */
static int job_add_settings(json_object *o, Job *j, bool allowed) {
        int r;

        r = json_object_add(o, "split_size", json_object_new_int64((int64_t) MIN(j->split_size, (uint64_t) INT64_MAX)));
        if (r >= 0)
                r = json_object_add(o, "backup_tasks", json_object_new_boolean(j->backup_tasks));
        if (r >= 0)
                r = json_object_add(o, "combine", json_object_new_boolean(j->combine));
        if (r >= 0 && j->mapper && allowed)
                r = json_object_add(o, "mapper", json_object_new_string(j->mapper));
        if (r >= 0 && j->reducer && allowed)
                r = json_object_add(o, "reducer", json_object_new_string(j->reducer));
        if (r >= 0)
                r = json_object_add(o, "counters", job_counters_to_json(&j->counters, 0, _COUNTER_MAX));
        return r;
}

/* A Job of the interface, or NULL when memory ran out: a value for json_build_object().
 * Unless allowed, its files, directory, outputs and commands are left empty. */
static json_object *job_to_json(Scheduler *s, Job *j, JobDetail detail, bool allowed) {
        _cleanup_json_ json_object *o = NULL;

        if (json_build_object(&o,
                              "id", json_object_new_string(j->id),
                              "owner_uid", json_object_new_int64(j->owner_uid),
                              "state", json_object_new_string(job_display_state(j)),
                              "nreduce", json_object_new_int64(j->nreduce),
                              "workdir", json_object_new_string(allowed ? j->workdir : ""),
                              "map_done", json_object_new_int64(j->done[TASK_MAP]),
                              "map_total", json_object_new_int64(j->nmap),
                              "reduce_done", json_object_new_int64(j->done[TASK_REDUCE]),
                              "reduce_total", json_object_new_int64(j->nreduce),
                              "progress", json_object_new_double(job_progress(j)),
                              "submit_time", json_object_new_int64((int64_t) j->submit_time),
                              NULL) < 0)
                return NULL;
        if (job_add_lists(o, j, detail, allowed) < 0 || job_add_optional(o, s, j) < 0 ||
            job_add_settings(o, j, allowed) < 0)
                return NULL;
        /* A job given on the coordinator's command line runs the workers' own app: null. */
        if (j->app ? json_object_add(o, "app", json_object_new_string(j->app)) < 0
                   : json_object_object_add(o, "app", NULL) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* The caller's uid; a connection without credentials (none but Unix sockets are served)
 * counts as nobody. */
static uid_t caller_uid(VarlinkConn *conn) {
        uid_t uid;
        return varlink_conn_get_peer_credentials(conn, &uid, NULL) < 0 ? (uid_t) -1 : uid;
}

static bool may_control(VarlinkConn *conn, const Job *j) {
        return access_may_control(caller_uid(conn), j);
}

static int error_permission_denied(VarlinkConn *conn, const char *reason) {
        return varlink_conn_errorb(conn, MAPREDUCE_ERROR_PERMISSION_DENIED,
                                   "reason", json_object_new_string(reason),
                                   NULL);
}

static int error_no_such_job(VarlinkConn *conn, const char *id) {
        return varlink_conn_errorb(conn, MAPREDUCE_ERROR_NO_SUCH_JOB,
                                   "job", json_object_new_string(id),
                                   NULL);
}

/* SubmitJob's "files": the strings of the array (which keeps them), -EINVAL if it is
 * empty or holds anything but strings without NUL bytes. Their number is the
 * submitter's to check, with a clear reason (the message size bounds it here). */
static int files_from_json(json_object *array, char ***ret, size_t *ret_n) {
        _cleanup_free_ char **files = NULL;
        size_t n;

        n = json_object_array_length(array);
        if (n == 0)
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

/* SubmitJob's "sizes": one non-negative integer per file, or -EINVAL. */
static int sizes_from_json(json_object *array, size_t n, uint64_t **ret) {
        _cleanup_free_ uint64_t *sizes = NULL;

        if (json_object_array_length(array) != n)
                return -EINVAL;
        sizes = calloc(MAX(n, (size_t) 1), sizeof(uint64_t));
        if (!sizes)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(array, i);
                if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
                        return -EINVAL;
                sizes[i] = json_object_get_uint64(v);
        }
        *ret = TAKE_PTR(sizes);
        return 0;
}

/* The reply once the journal holds what it reports: {job} for a submission, {} else. */
static void on_durable(void *owner, void *userdata, int error) {
        _cleanup_free_ char *id = userdata;

        if (!owner)
                return;
        if (error < 0)
                varlink_conn_close(owner);
        else if (id)
                (void) varlink_conn_replyb(owner, "job", json_object_new_string(id), NULL);
        else
                (void) varlink_conn_reply(owner, NULL);
}

static int job_api_reply_when_durable(MapReduceApi *a, VarlinkConn *conn, const char *id) {
        char *copy = NULL;
        int r;

        if (id) {
                copy = strdup(id);
                if (!copy)
                        return -ENOMEM;
        }
        r = job_journal_wait(a->journal, conn, on_durable, copy);
        if (r < 0)
                free(copy);
        return r;
}

static int method_submit_job(VarlinkConn *conn, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        MapReduceApi *a = userdata;
        JobRequest req = job_request_default(a->submitter);
        struct {
                const char *app, *workdir, *mapper, *reducer;
                json_object *files, *sizes;
                uint32_t nreduce;
                uint64_t timeout_usec, split_size;
                bool backup_tasks, combine;
        } p = {
                .nreduce = req.nreduce,
                .timeout_usec = req.timeout,
                .split_size = req.split_size,
                .backup_tasks = req.backup_tasks,
                .combine = req.combine,
        };
        _cleanup_free_ char **files = NULL;
        _cleanup_free_ uint64_t *sizes = NULL;
        _cleanup_free_ char *reason = NULL;
        JobOwner owner;
        size_t n;
        Job *job;
        int r;

        r = varlink_conn_dispatch(conn, parameters,
                                  (const VarlinkField[]) {
                                          { "app", VARLINK_STRING, offsetof(typeof(p), app), true },
                                          { "files", VARLINK_ARRAY, offsetof(typeof(p), files), true },
                                          { "nreduce", VARLINK_UINT32, offsetof(typeof(p), nreduce), false },
                                          { "workdir", VARLINK_STRING, offsetof(typeof(p), workdir), false },
                                          { "task_timeout_usec", VARLINK_UINT64,
                                            offsetof(typeof(p), timeout_usec), false },
                                          { "split_size", VARLINK_UINT64, offsetof(typeof(p), split_size), false },
                                          { "sizes", VARLINK_ARRAY, offsetof(typeof(p), sizes), false },
                                          { "mapper", VARLINK_STRING, offsetof(typeof(p), mapper), false },
                                          { "reducer", VARLINK_STRING, offsetof(typeof(p), reducer), false },
                                          { "backup_tasks", VARLINK_BOOL, offsetof(typeof(p), backup_tasks), false },
                                          { "combine", VARLINK_BOOL, offsetof(typeof(p), combine), false },
                                          {},
                                  },
                                  &p);
        if (r < 0)
                return r;
        if (p.timeout_usec == 0)
                return varlink_conn_error_invalid_parameter(conn, "task_timeout_usec");

        r = files_from_json(p.files, &files, &n);
        if (r == -EINVAL)
                return varlink_conn_error_invalid_parameter(conn, "files");
        if (r < 0)
                return r;
        if (p.sizes) {
                r = sizes_from_json(p.sizes, n, &sizes);
                if (r == -EINVAL)
                        return varlink_conn_error_invalid_parameter(conn, "sizes");
                if (r < 0)
                        return r;
        }

        /* The job runs with its submitter's rights: without an identity, no job. */
        if (varlink_conn_get_peer_credentials(conn, &owner.uid, &owner.gid) < 0)
                return error_permission_denied(conn, "jobs are submitted over a Unix socket only");

        req.app = p.app;
        req.files = files;
        req.n_files = (unsigned) MIN(n, (size_t) UINT32_MAX);
        req.sizes = sizes;
        req.split_size = p.split_size;
        req.nreduce = p.nreduce;
        req.workdir = p.workdir;
        req.timeout = p.timeout_usec;
        req.mapper = p.mapper;
        req.reducer = p.reducer;
        req.backup_tasks = p.backup_tasks;
        req.combine = p.combine;
        r = job_submit(a->submitter, &owner, &req, &job, &reason);
        if (r == -EINVAL)
                return varlink_conn_errorb(conn, MAPREDUCE_ERROR_INVALID_JOB,
                                           "reason", json_object_new_string(reason ?: "invalid job"),
                                           NULL);
        if (r < 0)
                return r;

        log_info("Job %s submitted by uid %u, %s.", job->id, (unsigned) owner.uid, varlink_conn_describe(conn));
        if (a->journal)
                return job_api_reply_when_durable(a, conn, job->id);
        return varlink_conn_replyb(conn, "job", json_object_new_string(job->id), NULL);
}

/* The job named by a call's only parameter, "job": 0 and the job, or a negative errno
 * once the call was answered with an error. */
static int dispatch_job(MapReduceApi *a, VarlinkConn *conn, json_object *parameters, Job **ret) {
        struct { const char *job; } p = {};
        int r;

        r = varlink_conn_dispatch(conn, parameters,
                                  (const VarlinkField[]) {
                                          { "job", VARLINK_STRING, 0, true },
                                          {},
                                  },
                                  &p);
        if (r < 0)
                return r;
        *ret = scheduler_find_job(a->scheduler, p.job);
        if (!*ret)
                return error_no_such_job(conn, p.job);
        return 0;
}

static int method_get_job(VarlinkConn *conn, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        MapReduceApi *a = userdata;
        JobWatch *w;
        Job *j;
        int r;

        r = dispatch_job(a, conn, parameters, &j);
        if (r < 0)
                return r;

        bool allowed = may_control(conn, j);
        if (!(flags & VARLINK_CALL_MORE) || job_ended(j))
                return varlink_conn_replyb(conn, "job", job_to_json(a->scheduler, j, JOB_FULL, allowed), NULL);

        /* A stream: this reply now, one on every change, the last when the job ends. */
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (JobWatch) { .conn = conn, .job = j, .allowed = allowed };
        LIST_PREPEND(watches, a->watches, w);
        /* If it cannot be queued the connection closes, and job_api_disconnect() frees w. */
        return varlink_conn_notifyb(conn, "job", job_to_json(a->scheduler, j, JOB_FULL, allowed), NULL);
}

static int method_list_jobs(VarlinkConn *conn, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        MapReduceApi *a = userdata;
        _cleanup_json_ json_object *jobs = NULL;
        int r;

        r = varlink_conn_dispatch(conn, parameters, (const VarlinkField[]) { {} }, NULL);
        if (r < 0)
                return r;

        jobs = json_object_new_array_ext((int) a->scheduler->n_jobs);
        if (!jobs)
                return -ENOMEM;
        for (size_t i = 0; i < a->scheduler->n_jobs; i++) {
                Job *j = a->scheduler->jobs[i];
                r = json_array_append(jobs, job_to_json(a->scheduler, j, JOB_SUMMARY, may_control(conn, j)));
                if (r < 0)
                        return r;
        }
        return varlink_conn_replyb(conn, "jobs", TAKE_PTR(jobs), NULL);
}

static int method_cancel_job(VarlinkConn *conn, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        MapReduceApi *a = userdata;
        Job *j;
        int r;

        r = dispatch_job(a, conn, parameters, &j);
        if (r < 0)
                return r;
        if (!may_control(conn, j))
                return error_permission_denied(conn, "only the job's owner and root may cancel it");

        r = scheduler_cancel_job(a->scheduler, j);
        if (r == -ESTALE)
                return varlink_conn_errorb(conn, MAPREDUCE_ERROR_JOB_ENDED,
                                           "job", json_object_new_string(j->id),
                                           "state", json_object_new_string(job_state_to_string(j->state)),
                                           NULL);
        if (r < 0)
                return r;
        log_info("Job %s cancelled by %s.", j->id, varlink_conn_describe(conn));
        if (a->journal)
                return job_api_reply_when_durable(a, conn, NULL);
        return varlink_conn_reply(conn, NULL);
}

/* Sends a watcher the job's state now: a notification, or the last reply of the stream
 * once the job has ended (then w is freed). A reply may close its connection at once,
 * and job_api_disconnect() free w. */
static void watch_send(MapReduceApi *a, JobWatch *w) {
        Job *j = w->job;

        w->dirty = false;
        if (!job_ended(j)) {
                (void) varlink_conn_notifyb(w->conn, "job", job_to_json(a->scheduler, j, JOB_SUMMARY, w->allowed), NULL);
                return;
        }
        LIST_REMOVE(watches, a->watches, w);
        (void) varlink_conn_replyb(w->conn, "job", job_to_json(a->scheduler, j, JOB_FULL, w->allowed), NULL);
        free(w);
}

/* A watched job changed: its newest state to each of its watchers that read what they
 * were sent before; the others get it once they have (job_api_drained()). An ended job
 * about to be forgotten ends the streams still held back at once. */
static void on_job_event(ObserverEvent event, Job *j, void *userdata) {
        MapReduceApi *a = userdata;

        if (event != EVENT_JOB_CHANGED && event != EVENT_JOB_REMOVED)
                return;
        LIST_FOREACH_SAFE(watches, w, n, a->watches) {
                if (w->job != j)
                        continue;
                if (event == EVENT_JOB_CHANGED && varlink_conn_output_size(w->conn) > 0)
                        w->dirty = true;
                else
                        watch_send(a, w);
        }
}

void job_api_drained(MapReduceApi *a, VarlinkConn *conn) {
        LIST_FOREACH_SAFE(watches, w, n, a->watches)
                if (w->conn == conn && w->dirty)
                        watch_send(a, w);
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
                { MAPREDUCE_METHOD_SUBMIT_JOB, method_submit_job },
                { MAPREDUCE_METHOD_GET_JOB, method_get_job },
                { MAPREDUCE_METHOD_LIST_JOBS, method_list_jobs },
                { MAPREDUCE_METHOD_CANCEL_JOB, method_cancel_job },
        };

        for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
                int r = varlink_server_bind(server, methods[i].name, methods[i].func);
                if (r < 0)
                        return r;
        }
        return scheduler_subscribe(a->scheduler, on_job_event, a);
}
