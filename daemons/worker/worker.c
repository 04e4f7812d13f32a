/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "maptask.h"
#include "counters.h"
#include "mr-files.h"
#include "org.mrkv.MapReduce.varlink.h"
#include "reducetask.h"
#include "strv.h"
#include "time-util.h"
#include "varlink-client.h"
#include "worker.h"

typedef struct Assignment {
        const char *kind, *job, *app, *workdir;
        const char *mapper, *reducer; /* a streaming job's commands */
        uint32_t task, attempt, nmap, nreduce;
        uint32_t owner_uid; /* UINT32_MAX when the coordinator did not say */
        uint64_t offset, length; /* a map task's split: 0 and UINT64_MAX for the whole file */
        uint64_t timeout_usec; /* the job's task time-out; 0 when the coordinator did not say */
        uint64_t deadline; /* of its streaming commands: timeout_usec after it came (CLOCK_MONOTONIC) */
        bool combine;      /* a map task runs the app's combiner */
        json_object *files;
} Assignment;

/* A streaming job runs commands, not a plugin. */
static bool assignment_streaming(const Assignment *a) {
        return a->mapper || a->reducer || (a->app && streq(a->app, "streaming"));
}

/* n buffers of MR_NAME_MAX bytes, as a NULL-terminated vector. */
static char **names_new(unsigned n) {
        _cleanup_strv_free_ char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                return NULL;
        for (unsigned i = 0; i < n; i++) {
                v[i] = malloc(MR_NAME_MAX);
                if (!v[i])
                        return NULL;
        }
        return TAKE_PTR(v);
}

typedef struct WorkerState {
        App *fixed;   /* the APP of the command line, or NULL: each job names its app */
        App **apps;   /* apps loaded for jobs */
        size_t n_apps;
        Groups groups; /* map scratch space, reused from task to task, within map_memory */
        uint64_t max_input; /* bytes of a map task's input */
        uint64_t map_memory; /* bytes of a map task's groups */
        bool send_counters; /* the coordinator takes FinishTask's counters */
        bool send_takes;    /* the coordinator takes RequestTask's "takes" */
        int dir_fd;    /* the current task's job directory, also the cwd */
        unsigned served;
} WorkerState;

/* An attempt's output file (a map's, with every partition, or a reduce's): its temporary
 * and its final name. */
static void attempt_file(const Assignment *a, char from[static MR_NAME_MAX], char to[static MR_NAME_MAX]) {
        if (streq(a->kind, "map")) {
                mr_map_temp_name(from, a->job, a->task, a->attempt);
                mr_intermediate_name(to, a->task);
                return;
        }
        mr_reduce_temp_name(from, a->job, a->task, a->attempt);
        mr_output_name(to, a->task);
}

static int run_task(const Assignment *a, App *app, WorkerState *w, TaskCounters *counters, char **ret_error) {
        _cleanup_strv_free_ char **inputs = NULL;
        bool streaming = assignment_streaming(a);
        char name[MR_NAME_MAX], final[MR_NAME_MAX];

        /* The attempt writes its temporary file; attempt_commit() puts it in place. */
        attempt_file(a, name, final);
        if (streq(a->kind, "map")) {
                char run_name[MR_NAME_MAX];

                if (json_object_array_length(a->files) != 1 ||
                    !json_object_is_type(json_object_array_get_idx(a->files, 0), json_type_string))
                        return -EBADMSG;
                if (streaming && !a->mapper) {
                        *ret_error = strdup("the streaming job has no mapper command");
                        return -EINVAL;
                }
                mr_map_run_name(run_name, a->job, a->task, a->attempt);
                return map_task_run(&(MapTask) {
                                            .app = streaming ? NULL : app->app,
                                            .mapper = a->mapper,
                                            .deadline = a->deadline,
                                            .combine = a->combine,
                                            .groups = &w->groups,
                                            .map_memory = w->map_memory,
                                            .dir_fd = w->dir_fd,
                                            .input = json_object_get_string(json_object_array_get_idx(a->files, 0)),
                                            .offset = a->offset,
                                            .length = a->length,
                                            .max_input = w->max_input,
                                            .nreduce = a->nreduce,
                                            .name = name,
                                            .run_name = run_name,
                                            .counters = counters,
                                    },
                                    ret_error);
        }

        if (streaming && !a->reducer) {
                *ret_error = strdup("the streaming job has no reducer command");
                return -EINVAL;
        }
        inputs = names_new(a->nmap);
        if (!inputs)
                return -ENOMEM;
        for (unsigned i = 0; i < a->nmap; i++)
                mr_intermediate_name(inputs[i], i);
        return reduce_task_run(&(ReduceTask) {
                                       .app = streaming ? NULL : app->app,
                                       .reducer = a->reducer,
                                       .deadline = a->deadline,
                                       .dir_fd = w->dir_fd,
                                       .inputs = inputs,
                                       .n_inputs = a->nmap,
                                       .partition = a->task,
                                       .nreduce = a->nreduce,
                                       .output = name,
                                       .counters = counters,
                               },
                               ret_error);
}

/* A successful attempt's file goes into place before it is reported, renamed within the
 * job's directory: a reader sees a whole file of some successful attempt, and attempts of
 * a task write the same bytes. A failed attempt's file is removed. */
static int attempt_commit(const Assignment *a, int dir_fd, bool ok) {
        char from[MR_NAME_MAX], to[MR_NAME_MAX];

        attempt_file(a, from, to);
        if (!ok)
                (void) unlinkat(dir_fd, from, 0);
        else if (renameat(dir_fd, from, dir_fd, to) < 0)
                return -errno;
        return 0;
}

static json_object *counters_to_json(const TaskCounters *c) {
        _cleanup_json_ json_object *o = NULL;
        int r;

        r = json_build_object(&o,
#define TASK_COUNTER_JSON(name) #name, json_object_new_int64((int64_t) MIN(c->name, (uint64_t) INT64_MAX)),
                              TASK_COUNTERS(TASK_COUNTER_JSON)
#undef TASK_COUNTER_JSON
                              NULL);
        return r < 0 ? NULL : TAKE_PTR(o);
}

/* FinishTask's parameters for an attempt; its counters unless send_counters is false. */
static json_object *finish_parameters(const Assignment *a, bool ok, const char *error, const TaskCounters *counters,
                                      bool send_counters) {
        _cleanup_json_ json_object *p = NULL;
        int r;

        r = json_build_object(&p,
                              "job", json_object_new_string(a->job),
                              "kind", json_object_new_string(a->kind),
                              "task", json_object_new_int64(a->task),
                              "attempt", json_object_new_int64(a->attempt),
                              "ok", json_object_new_boolean(ok),
                              NULL);
        if (r >= 0 && error)
                r = json_object_add(p, "error", json_object_new_string(error));
        if (r >= 0 && send_counters)
                r = json_object_add(p, "counters", counters_to_json(counters));
        return r < 0 ? NULL : TAKE_PTR(p);
}

/* Reports an attempt (p, from finish_parameters()), or with sent reads the answer to the
 * report already sent. Its counters go along unless the coordinator is one that does not
 * take them yet (InvalidParameter): then *send_counters is cleared and the report sent
 * again without, as to such coordinators from now on. *ret_accepted tells whether the
 * coordinator took the report as sent, which it then does on this connection from now on.
 * A report sent ahead of the next RequestTask (pipelined, once the coordinator took both
 * in their current form) is not sent again: the coordinator has already handed this
 * worker its next task, and would refuse the report. */
static int finish_task(VarlinkClient *client, const Assignment *a, json_object *p, bool sent, bool *send_counters,
                       bool *ret_accepted) {
        _cleanup_json_ json_object *reply = NULL;
        const char *err = NULL;
        int r;

        *ret_accepted = false;
        if (sent)
                r = varlink_client_read(client, UINT64_MAX, &reply, &err, NULL);
        else
                r = varlink_client_call(client, MAPREDUCE_METHOD_FINISH_TASK, p, UINT64_MAX, &reply, &err);
        if (r < 0)
                return r;
        if (err && *send_counters && streq(err, VARLINK_ERROR_INVALID_PARAMETER)) {
                log_debug("The coordinator takes no counters; reporting without them.");
                *send_counters = false;
                if (sent) {
                        log_warning("Coordinator refused the counters of %s task %u it took before; the task is "
                                    "handed out again after its time-out.", a->kind, a->task);
                        return 0;
                }
                json_object_object_del(p, "counters");
                json_object_put(reply);
                reply = NULL;
                err = NULL;
                r = varlink_client_call(client, MAPREDUCE_METHOD_FINISH_TASK, p, UINT64_MAX, &reply, &err);
                if (r < 0)
                        return r;
        }
        if (err)
                log_warning("Coordinator refused the finish of %s task %u: %s", a->kind, a->task, err);
        *ret_accepted = !err;
        return 0;
}

static void worker_state_done(WorkerState *w) {
        for (size_t i = 0; i < w->n_apps; i++)
                app_free(w->apps[i]);
        free(w->apps);
        groups_done(&w->groups);
        closep(&w->dir_fd);
}

/* The app a task needs: the command line's, or the job's, loaded once. */
static App *worker_app(WorkerState *w, const Assignment *a, char **ret_error) {
        App *app, **n;

        if (w->fixed) {
                if (a->app && w->fixed->app->name && !streq(a->app, w->fixed->app->name) &&
                    !strstr(w->fixed->path, a->app))
                        log_warning("Job %s names app '%s', this worker runs '%s'.", a->job, a->app,
                                    w->fixed->app->name);
                return w->fixed;
        }
        if (!a->app) {
                *ret_error = strdup("the job names no app and this worker was started without APP");
                return NULL;
        }
        /* A plugin path runs with this worker's rights: only for a job of its own uid. The
         * coordinator sends no other; this is a second line. */
        if (strchr(a->app, '/') && a->owner_uid != (uint32_t) geteuid()) {
                asprintf_or_null(ret_error, "app '%s' is a path, and the job's owner is not this worker's uid %u",
                                 a->app, (unsigned) geteuid());
                return NULL;
        }
        for (size_t i = 0; i < w->n_apps; i++)
                if (streq(w->apps[i]->spec, a->app))
                        return w->apps[i];

        if (app_load(a->app, &app) < 0) {
                asprintf_or_null(ret_error, "cannot load app '%s' on this worker", a->app);
                return NULL;
        }
        n = reallocarray(w->apps, w->n_apps + 1, sizeof(App *));
        if (!n) {
                app_free(app);
                return NULL;
        }
        w->apps = n;
        w->apps[w->n_apps++] = app;
        return app;
}

static const VarlinkField assignment_fields[] = {
        { "kind", VARLINK_STRING, offsetof(Assignment, kind), true },
        { "job", VARLINK_STRING, offsetof(Assignment, job), false },
        { "task", VARLINK_UINT32, offsetof(Assignment, task), false },
        { "attempt", VARLINK_UINT32, offsetof(Assignment, attempt), false },
        { "files", VARLINK_ARRAY, offsetof(Assignment, files), false },
        { "nmap", VARLINK_UINT32, offsetof(Assignment, nmap), false },
        { "nreduce", VARLINK_UINT32, offsetof(Assignment, nreduce), false },
        { "app", VARLINK_STRING, offsetof(Assignment, app), false },
        { "workdir", VARLINK_STRING, offsetof(Assignment, workdir), false },
        { "owner_uid", VARLINK_UINT32, offsetof(Assignment, owner_uid), false },
        { "offset", VARLINK_UINT64, offsetof(Assignment, offset), false },
        { "length", VARLINK_UINT64, offsetof(Assignment, length), false },
        { "mapper", VARLINK_STRING, offsetof(Assignment, mapper), false },
        { "reducer", VARLINK_STRING, offsetof(Assignment, reducer), false },
        { "timeout_usec", VARLINK_UINT64, offsetof(Assignment, timeout_usec), false },
        { "combine", VARLINK_BOOL, offsetof(Assignment, combine), false },
        {},
};

/* What the coordinator sent: 1 for a task to run, 0 for "exit", -EPROTO (logged) for
 * anything a worker cannot run. */
static int assignment_check(const Assignment *a) {
        if (streq(a->kind, "exit"))
                return 0;
        if (!streq(a->kind, "map") && !streq(a->kind, "reduce"))
                return log_error_errno(EPROTO, "Coordinator sent a task of unknown kind '%s'.", a->kind);
        if (!a->job || !a->workdir || a->workdir[0] != '/' || a->attempt == 0 || a->nreduce == 0 ||
            (streq(a->kind, "map") && !a->files) || (streq(a->kind, "reduce") && a->nmap == 0))
                return log_error_errno(EPROTO, "Coordinator sent an incomplete %s task.", a->kind);
        if (strlen(a->job) > 64 || strchr(a->job, '/'))
                return log_error_errno(EPROTO, "Coordinator sent an invalid job id.");
        return 1;
}

/* RequestTask's parameters: the optional task fields this worker takes, unless the
 * coordinator is one that does not know "takes". */
static json_object *request_parameters(bool send_takes) {
        _cleanup_json_ json_object *p = NULL, *takes = NULL;

        if (!send_takes)
                return NULL;
        takes = json_object_new_array();
        if (!takes || json_array_append(takes, json_object_new_string("timeout_usec")) < 0 ||
            json_array_append(takes, json_object_new_string("combine")) < 0 ||
            json_build_object(&p, "takes", TAKE_PTR(takes), NULL) < 0)
                return NULL;
        return TAKE_PTR(p);
}

/* Asks for a task and waits for it, or with sent waits for the answer to the request
 * already sent (with the parameters of request_parameters(*send_takes)): 1 and the task
 * (whose strings live in *ret_reply), 0 when told to exit, or a negative errno, logged
 * unless -ECONNRESET. A coordinator that refuses "takes" (InvalidParameter) is asked
 * again without, as from now on (*send_takes cleared): its tasks have no time-out for
 * the commands and always combine. A refused request was not taken: asking again gets
 * one task, not two. */
static int request_task(VarlinkClient *client, const char *address, bool sent, bool *send_takes,
                        json_object **ret_reply, Assignment *ret) {
        _cleanup_json_ json_object *reply = NULL, *p = NULL;
        const char *err = NULL, *bad = NULL;
        Assignment a = { .owner_uid = UINT32_MAX, .length = UINT64_MAX, .combine = true };
        int r;

        if (sent)
                r = varlink_client_read(client, UINT64_MAX, &reply, &err, NULL);
        else {
                p = request_parameters(*send_takes);
                if (*send_takes && !p)
                        return log_oom();
                r = varlink_client_call(client, MAPREDUCE_METHOD_REQUEST_TASK, p, UINT64_MAX, &reply, &err);
        }
        if (r >= 0 && err && *send_takes && streq(err, VARLINK_ERROR_INVALID_PARAMETER)) {
                log_debug("The coordinator takes no \"takes\"; asking without.");
                *send_takes = false;
                json_object_put(reply);
                reply = NULL;
                err = NULL;
                r = varlink_client_call(client, MAPREDUCE_METHOD_REQUEST_TASK, NULL, UINT64_MAX, &reply, &err);
        }
        if (r < 0)
                return r == -ECONNRESET ? r : log_error_errno(r, "Failed to ask %s for a task: %m", address);
        if (err)
                return log_error_errno(EPROTO, "Coordinator answered RequestTask with %s.", err);

        r = varlink_dispatch(reply, assignment_fields, &a, &bad);
        if (r < 0)
                return log_error_errno(r, "Coordinator sent a bad task: field '%s'.", bad);
        r = assignment_check(&a);
        if (r < 0)
                return r;
        /* The coordinator hands the task out again after its time-out: a command still
         * running then would only hold this worker. */
        a.deadline = a.timeout_usec > 0 ? usec_add(now_usec(), a.timeout_usec) : UINT64_MAX;
        *ret_reply = TAKE_PTR(reply);
        *ret = a;
        return r;
}

/* Apps work in the job's directory, as the lab's do (they may create files there); the
 * worker's own files are opened relative to it, never through a link in its place. */
static int worker_enter_workdir(WorkerState *w, const Assignment *a, char **ret_error) {
        struct stat st;

        /* Opened for every task: the directory a path names may have been replaced. */
        closep(&w->dir_fd);
        w->dir_fd = open(a->workdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (w->dir_fd < 0 || fstat(w->dir_fd, &st) < 0 || fchdir(w->dir_fd) < 0) {
                int r = -errno;
                asprintf_or_null(ret_error, "cannot enter %s: %s", a->workdir, strerror(-r));
                return r;
        }
        /* A job writes only in a directory of its owner's (root's jobs: anywhere). The
         * coordinator checks it too, where it can see the directory. */
        if (a->owner_uid != 0 && st.st_uid != a->owner_uid) {
                asprintf_or_null(ret_error, "working directory %s belongs to uid %u, not to the job's owner",
                                 a->workdir, (unsigned) st.st_uid);
                return -EPERM;
        }
        return 0;
}

/* Runs a task: 0, or a negative errno and in *ret_error why, for the coordinator. */
static int worker_execute(WorkerState *w, const Assignment *a, TaskCounters *counters, char **ret_error) {
        _cleanup_free_ char *error = NULL;
        App *app;
        int r;

        if (assignment_streaming(a)) {
                /* Commands run with this worker's rights, as a plugin path does: only for a
                 * job of its own uid. */
                app = NULL;
                r = 0;
                if (a->owner_uid != (uint32_t) geteuid()) {
                        asprintf_or_null(&error, "a streaming job's commands run only on a worker of the job's owner, "
                                                 "not on one of uid %u", (unsigned) geteuid());
                        r = -EPERM;
                }
        } else {
                app = worker_app(w, a, &error);
                r = app ? 0 : -ENOENT;
        }
        if (r >= 0)
                r = worker_enter_workdir(w, a, &error);

        log_debug("Running %s task %u attempt %u of job %s.", a->kind, a->task, a->attempt, a->job);
        if (r >= 0) {
                r = run_task(a, app, w, counters, &error);
                int k = attempt_commit(a, w->dir_fd, r >= 0);
                if (r >= 0 && k < 0) {
                        r = k;
                        asprintf_or_null(&error, "cannot rename the output of %s task %u into place: %s", a->kind,
                                         a->task, strerror(-k));
                }
        }
        if (r < 0 && !error) {
                errno = -r;
                asprintf_or_null(&error, "%s task failed: %m", a->kind);
        }
        if (r < 0)
                log_warning("%s task %u of job %s failed: %s", a->kind, a->task, a->job, error ?: "");
        *ret_error = TAKE_PTR(error);
        return r;
}

/* Reports an attempt and asks for the next task: the two calls back to back in one
 * write when pipelined, else one after the other. What request_task() returns;
 * *ret_accepted as finish_task() sets it. The report is counted in w->served once the
 * coordinator answered it. */
static int worker_hand_off(WorkerState *w, VarlinkClient *client, const char *address, const Assignment *done,
                           int result, const char *error, const TaskCounters *counters, bool pipeline,
                           bool *ret_accepted, json_object **ret_reply, Assignment *ret) {
        _cleanup_json_ json_object *p = NULL, *request = NULL;
        int r;

        p = finish_parameters(done, result >= 0, result < 0 ? error : NULL, counters, w->send_counters);
        if (!p)
                return log_oom();
        if (pipeline) {
                request = request_parameters(w->send_takes);
                if (w->send_takes && !request)
                        return log_oom();
                r = varlink_client_queue(client, MAPREDUCE_METHOD_FINISH_TASK, p, 0);
                if (r >= 0)
                        r = varlink_client_send(client, MAPREDUCE_METHOD_REQUEST_TASK, request, 0, UINT64_MAX);
        } else
                r = 0;
        if (r >= 0)
                r = finish_task(client, done, p, pipeline, &w->send_counters, ret_accepted);
        if (r < 0)
                return r == -ECONNRESET ? r : log_error_errno(r, "Failed to report the task to %s: %m", address);
        w->served++;

        (void) sd_notify(false, "STATUS=Waiting for a task");
        return request_task(client, address, pipeline, &w->send_takes, ret_reply, ret);
}

/* One connection to the coordinator: runs tasks until told to exit (returns 0) or the
 * connection ends (-ECONNRESET). The first hand-off goes one call at a time; once the
 * coordinator took a report as this worker sends it (a task in hand says it took the
 * request), the next report goes out with the next RequestTask, and the worker waits for
 * one answer between tasks, not two. */
static int worker_session(WorkerState *w, VarlinkClient *client, const char *address) {
        _cleanup_json_ json_object *reply = NULL;
        Assignment a = { .owner_uid = UINT32_MAX };
        bool pipeline = false;
        int r;

        (void) sd_notify(false, "STATUS=Waiting for a task");
        r = request_task(client, address, false, &w->send_takes, &reply, &a);
        for (;;) {
                _cleanup_json_ json_object *next_reply = NULL;
                _cleanup_free_ char *error = NULL;
                TaskCounters counters = {};
                Assignment next = { .owner_uid = UINT32_MAX };

                if (r < 0)
                        return r;
                if (r == 0) {
                        log_debug("Job over after %u task(s).", w->served);
                        return 0;
                }

                (void) sd_notifyf(false, "STATUS=Running %s task %u of job %s", a.kind, a.task, a.job);
                r = worker_execute(w, &a, &counters, &error);

                r = worker_hand_off(w, client, address, &a, r, error, &counters, pipeline, &pipeline, &next_reply,
                                    &next);
                /* The last task's strings live in reply until here. */
                json_object_put(reply);
                reply = TAKE_PTR(next_reply);
                a = next;
        }
}

int worker_run(const char *address, App *app, bool serve, uint64_t max_input, uint64_t map_memory) {
        _cleanup_(worker_state_done) WorkerState w = {
                .fixed = app,
                .max_input = max_input,
                .dir_fd = -EBADF,
                .send_counters = true,
                .send_takes = true,
                .map_memory = map_memory,
        };
        uint64_t pause = 100 * USEC_PER_MSEC;
        bool ready = false;
        int r;

        for (;;) {
                _cleanup_(varlink_client_freep) VarlinkClient *client = NULL;

                r = varlink_client_connect(address, &client);
                if (r < 0) {
                        if (!serve)
                                return log_error_errno(r, "Cannot reach the coordinator at %s: %m", address);
                        /* A service waits for its coordinator, which may be restarting. */
                        log_full_errno(pause == 100 * USEC_PER_MSEC ? LOG_NOTICE : LOG_DEBUG, r,
                                       "Cannot reach the coordinator at %s, retrying: %m", address);
                        if (!ready) {
                                (void) sd_notify(false, "READY=1");
                                ready = true;
                        }
                        (void) usleep((useconds_t) pause);
                        pause = MIN(pause * 2, 5 * USEC_PER_SEC);
                        continue;
                }
                pause = 100 * USEC_PER_MSEC;
                if (!ready) {
                        (void) sd_notify(false, "READY=1");
                        ready = true;
                }

                r = worker_session(&w, client, address);
                if (r == -ECONNRESET && !serve) {
                        if (w.served == 0)
                                return log_error_errno(r, "The coordinator at %s closed the connection before giving a task.", address);
                        log_info("The coordinator went away after %u task(s); exiting.", w.served);
                        return 0;
                }
                if (r == 0 && !serve)
                        return 0;
                if (r < 0 && r != -ECONNRESET)
                        return r;
                if (serve)
                        log_info("Lost the coordinator at %s; reconnecting.", address);
        }
}
