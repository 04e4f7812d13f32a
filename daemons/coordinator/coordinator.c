/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "config.h"
#include "coordinator.h"
#include "log.h"
#include "macro.h"
#include "mr-files.h"
#include "time-util.h"
#include "org.mrkv.MapReduce.varlink.h"

struct Worker {
        Coordinator *coordinator;
        VarlinkConn *conn;
        Worker *prev, *next;  /* in coordinator->workers */
        Worker *wait_next;    /* in coordinator->waiting */
        bool waiting;
        unsigned tasks_done;
};

/* Ended jobs kept for status queries; older ones are forgotten. */
#define MAX_ENDED_JOBS 100

static void waiting_remove(Coordinator *c, Worker *w) {
        Worker **p;

        if (!w->waiting)
                return;
        for (p = &c->waiting; *p; p = &(*p)->wait_next)
                if (*p == w) {
                        *p = w->wait_next;
                        break;
                }
        c->waiting_tail = NULL;
        for (Worker *i = c->waiting; i; i = i->wait_next)
                c->waiting_tail = i;
        w->wait_next = NULL;
        w->waiting = false;
}

static Worker *waiting_pop(Coordinator *c) {
        Worker *w = c->waiting;

        if (!w)
                return NULL;
        c->waiting = w->wait_next;
        if (!c->waiting)
                c->waiting_tail = NULL;
        w->wait_next = NULL;
        w->waiting = false;
        return w;
}

static void waiting_push_front(Coordinator *c, Worker *w) {
        w->wait_next = c->waiting;
        c->waiting = w;
        if (!c->waiting_tail)
                c->waiting_tail = w;
        w->waiting = true;
}

static void waiting_push(Coordinator *c, Worker *w) {
        w->waiting = true;
        w->wait_next = NULL;
        if (c->waiting_tail)
                c->waiting_tail->wait_next = w;
        else
                c->waiting = w;
        c->waiting_tail = w;
}

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

static int reply_exit(Worker *w) {
        json_object *p = json_object_new_object();
        if (!p)
                return -ENOMEM;
        json_object_object_add(p, "kind", json_object_new_string("exit"));
        return varlink_conn_reply(w->conn, p);
}

static void coordinator_arm_timer(Coordinator *c) {
        uint64_t d = UINT64_MAX;

        for (size_t i = 0; i < c->n_jobs; i++)
                if (!job_ended(c->jobs[i]))
                        d = MIN(d, job_next_deadline(c->jobs[i]));

        if (d == UINT64_MAX) {
                (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(c->timer, d);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

static bool all_jobs_ended(Coordinator *c) {
        for (size_t i = 0; i < c->n_jobs; i++)
                if (!job_ended(c->jobs[i]))
                        return false;
        return true;
}

static void coordinator_job_ended(Coordinator *c, Job *j) {
        double secs = (double) (j->finish_time - (j->start_time ?: j->submit_time)) / USEC_PER_SEC;

        if (j->state == JOB_DONE)
                log_info("Job %s done: %u map and %u reduce tasks in %.3f s.", j->id, j->nmap, j->nreduce, secs);
        else if (j->state == JOB_CANCELLED)
                log_info("Job %s cancelled after %.3f s.", j->id, secs);
        else
                log_error("Job %s failed after %.3f s: %s", j->id, secs, j->error ?: "unknown error");

        if (c->exit_when_done && all_jobs_ended(c)) {
                c->exit_status = j->state == JOB_DONE ? 0 : 1;
                (void) sd_event_exit(c->event, c->exit_status);
        }
}

static void coordinator_update_status(Coordinator *c) {
        size_t queued = 0;
        Job *running = NULL;

        for (size_t i = 0; i < c->n_jobs; i++) {
                Job *j = c->jobs[i];
                if (job_ended(j))
                        continue;
                if (!running && j->start_time > 0)
                        running = j;
                else
                        queued++;
        }
        if (running)
                (void) sd_notifyf(false,
                                  "STATUS=Job %s %s: map %u/%u, reduce %u/%u; %zu job(s) waiting; %u worker(s)",
                                  running->id, job_state_to_string(running->state), running->done[TASK_MAP],
                                  running->nmap, running->done[TASK_REDUCE], running->nreduce, queued,
                                  coordinator_n_workers(c));
        else
                (void) sd_notifyf(false, "STATUS=Waiting for jobs; %zu job(s) queued; %u worker(s)", queued,
                                  coordinator_n_workers(c));
}

void coordinator_job_changed(Coordinator *c, Job *j) {
        if (job_ended(j) && j->finish_time == 0) {
                j->finish_time = clock_usec(CLOCK_REALTIME);
                coordinator_job_ended(c, j);
        }
        job_api_job_changed(c, j);
        if (c->job_hook)
                c->job_hook(c, j, JOB_CHANGED, c->hook_userdata);
        coordinator_update_status(c);
}

unsigned coordinator_n_workers(Coordinator *c) {
        unsigned n = 0;
        for (Worker *w = c->workers; w; w = w->next)
                n++;
        return n;
}

Job *coordinator_find_job(Coordinator *c, const char *id) {
        for (size_t i = 0; i < c->n_jobs; i++)
                if (streq(c->jobs[i]->id, id))
                        return c->jobs[i];
        return NULL;
}

/* The oldest job with a task for this worker: 1 and the task, 0 if none now, -ESHUTDOWN
 * if every job has ended. */
static int coordinator_assign(Coordinator *c, Worker *w, uint64_t now, Job **ret_job, Task **ret_task) {
        bool any = false;

        for (size_t i = 0; i < c->n_jobs; i++) {
                Job *j = c->jobs[i];
                int r;

                if (job_ended(j))
                        continue;
                any = true;
                r = job_assign(j, w, now, ret_task);
                if (r > 0) {
                        *ret_job = j;
                        if (j->start_time == 0) {
                                j->start_time = clock_usec(CLOCK_REALTIME);
                                coordinator_job_changed(c, j);
                        }
                        return 1;
                }
        }
        return any ? 0 : -ESHUTDOWN;
}

/* Hands tasks to waiting workers, in arrival order, while there are tasks to hand out. */
static void coordinator_dispatch(Coordinator *c) {
        uint64_t now = now_usec();
        Worker *w;

        while ((w = waiting_pop(c))) {
                Job *j;
                Task *t;
                int r;

                r = coordinator_assign(c, w, now, &j, &t);
                if (r == -ESHUTDOWN && c->exit_when_done && c->n_jobs > 0) {
                        /* Lab mode: the job is over, and so is the worker's work. */
                        (void) reply_exit(w);
                        continue;
                }
                if (r <= 0) {
                        waiting_push_front(c, w);
                        break;
                }
                json_object *p = task_to_json(j, t);
                if (!p) {
                        log_oom();
                        (void) job_release_owner(j, w);
                        varlink_conn_close(w->conn);
                        continue;
                }
                log_debug("Assigned %s task %u attempt %u of job %s to %s.", task_kind_to_string(t->kind), t->index,
                          t->attempt, j->id, varlink_conn_describe(w->conn));
                (void) varlink_conn_reply(w->conn, p);
        }
        coordinator_arm_timer(c);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Coordinator *c = userdata;
        uint64_t now = now_usec();

        for (size_t i = 0; i < c->n_jobs; i++) {
                Job *j = c->jobs[i];
                unsigned n = job_ended(j) ? 0 : job_expire(j, now);
                if (n > 0)
                        log_notice("%u task(s) of job %s not finished within %.1f s, handing them out again.", n,
                                   j->id, (double) j->timeout / USEC_PER_SEC);
        }
        coordinator_dispatch(c);
        return 0;
}

static void remove_attempt_output(Job *j, Task *t, unsigned attempt) {
        char name[MR_NAME_MAX];
        _cleanup_close_ int dfd = open(j->workdir, O_DIRECTORY | O_CLOEXEC);

        if (dfd < 0)
                return;
        if (t->kind == TASK_MAP)
                for (unsigned r = 0; r < j->nreduce; r++) {
                        mr_map_temp_name(name, j->id, t->index, attempt, r);
                        (void) unlinkat(dfd, name, 0);
                }
        else {
                mr_reduce_temp_name(name, j->id, t->index, attempt);
                (void) unlinkat(dfd, name, 0);
        }
}

/* Makes an attempt's output visible under its final names. */
static int commit_attempt_output(Job *j, Task *t, unsigned attempt) {
        char from[MR_NAME_MAX], to[MR_NAME_MAX];
        _cleanup_close_ int dfd = open(j->workdir, O_DIRECTORY | O_CLOEXEC);

        if (dfd < 0)
                return -errno;

        if (t->kind == TASK_REDUCE) {
                mr_reduce_temp_name(from, j->id, t->index, attempt);
                mr_output_name(to, t->index);
                return renameat(dfd, from, dfd, to) < 0 ? -errno : 0;
        }

        /* Check every file first, so a map attempt is committed whole or not at all. */
        for (unsigned r = 0; r < j->nreduce; r++) {
                mr_map_temp_name(from, j->id, t->index, attempt, r);
                if (faccessat(dfd, from, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
        }
        for (unsigned r = 0; r < j->nreduce; r++) {
                mr_map_temp_name(from, j->id, t->index, attempt, r);
                mr_intermediate_name(to, t->index, r);
                if (renameat(dfd, from, dfd, to) < 0)
                        return -errno;
        }
        return 0;
}

static int method_request_task(VarlinkConn *conn, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        Coordinator *c = userdata;
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
                w = calloc(1, sizeof(*w));
                if (!w)
                        return -ENOMEM;
                w->coordinator = c;
                w->conn = conn;
                w->next = c->workers;
                if (w->next)
                        w->next->prev = w;
                c->workers = w;
                varlink_conn_set_userdata(conn, w);
                if (c->workers_hook)
                        c->workers_hook(c, c->hook_userdata);
                log_debug("Worker %s%s%s connected.", varlink_conn_describe(conn), p.worker ? " " : "",
                          p.worker ?: "");
        }

        /* The reply is deferred until there is a task; this worker waits in line. */
        waiting_push(c, w);
        coordinator_dispatch(c);
        return 0;
}

static int method_finish_task(VarlinkConn *conn, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        Coordinator *c = userdata;
        struct {
                const char *job, *kind, *error;
                uint32_t task, attempt;
                bool ok;
        } p = {};
        const char *bad;
        Task *t;
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

        Job *job = coordinator_find_job(c, p.job);
        if (!job) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "job", json_object_new_string(p.job));
                return varlink_conn_error(conn, "org.mrkv.MapReduce.NoSuchJob", e);
        }
        t = job_find_task(job, kind, p.task);
        if (!t) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "job", json_object_new_string(p.job));
                json_object_object_add(e, "kind", json_object_new_string(p.kind));
                json_object_object_add(e, "task", json_object_new_int64(p.task));
                return varlink_conn_error(conn, "org.mrkv.MapReduce.NoSuchTask", e);
        }

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
        JobState before = job->state;
        unsigned done_before = job->done[TASK_MAP] + job->done[TASK_REDUCE];
        (void) job_finish(job, t, p.attempt, accept, error);
        if (!accept)
                remove_attempt_output(job, t, p.attempt);

        if (!p.ok)
                log_warning("%s task %u attempt %u failed on %s: %s", p.kind, p.task, p.attempt,
                            varlink_conn_describe(conn), error);
        else
                log_debug("%s task %u attempt %u finished on %s%s.", p.kind, p.task, p.attempt,
                          varlink_conn_describe(conn), accept ? "" : " (not committed)");

        r = varlink_conn_reply(conn, NULL);
        if (job->state != before || job->done[TASK_MAP] + job->done[TASK_REDUCE] != done_before)
                coordinator_job_changed(c, job);
        coordinator_dispatch(c);
        return r;
}

static void on_disconnect(VarlinkConn *conn, void *userdata) {
        Coordinator *c = userdata;
        Worker *w = varlink_conn_get_userdata(conn);
        unsigned n;

        job_api_disconnect(c, conn);
        if (!w)
                return;
        waiting_remove(c, w);
        if (w->prev)
                w->prev->next = w->next;
        else
                c->workers = w->next;
        if (w->next)
                w->next->prev = w->prev;

        for (size_t i = 0; i < c->n_jobs; i++) {
                n = job_release_owner(c->jobs[i], w);
                if (n > 0)
                        log_notice("Worker %s went away with %u task(s) of job %s; handing them out again.",
                                   varlink_conn_describe(conn), n, c->jobs[i]->id);
        }
        free(w);
        varlink_conn_set_userdata(conn, NULL);
        if (c->workers_hook)
                c->workers_hook(c, c->hook_userdata);
        coordinator_dispatch(c);
}

int coordinator_new(sd_event *event, Coordinator **ret) {
        _cleanup_(coordinator_freep) Coordinator *c = NULL;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(event);
        c->default_nreduce = 10;
        c->default_task_timeout = 10 * USEC_PER_SEC;

        r = varlink_server_new(event,
                               &(VarlinkServerInfo) {
                                       .vendor = "mrkv",
                                       .product = "mrkv-coordinator",
                                       .version = PACKAGE_VERSION,
                                       .url = "https://github.com/mrkv/mrkv",
                               },
                               c, &c->server);
        if (r < 0)
                return r;
        r = varlink_server_add_interface(c->server, org_mrkv_MapReduce_varlink);
        if (r < 0)
                return r;
        r = varlink_server_bind(c->server, "org.mrkv.MapReduce.RequestTask", method_request_task);
        if (r < 0)
                return r;
        r = varlink_server_bind(c->server, "org.mrkv.MapReduce.FinishTask", method_finish_task);
        if (r < 0)
                return r;
        varlink_server_set_disconnect_handler(c->server, on_disconnect);
        r = job_api_register(c);
        if (r < 0)
                return r;

        r = sd_event_add_time(event, &c->timer, CLOCK_MONOTONIC, UINT64_MAX, 10 * USEC_PER_MSEC, on_timer, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);

        *ret = TAKE_PTR(c);
        return 0;
}

Coordinator *coordinator_free(Coordinator *c) {
        if (!c)
                return NULL;
        /* Freeing the server runs the disconnect handler for every worker. */
        c->server = varlink_server_free(c->server);
        c->timer = sd_event_source_disable_unref(c->timer);
        job_api_free(c);
        for (size_t i = 0; i < c->n_jobs; i++)
                job_free(c->jobs[i]);
        free(c->jobs);
        free(c->state_dir);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

int coordinator_listen_fd(Coordinator *c, int fd) {
        return varlink_server_listen_fd(c->server, fd);
}

/* Forgets the oldest ended jobs beyond MAX_ENDED_JOBS. */
static void coordinator_prune(Coordinator *c) {
        size_t ended = 0;

        for (size_t i = 0; i < c->n_jobs; i++)
                ended += job_ended(c->jobs[i]);
        for (size_t i = 0; i < c->n_jobs && ended > MAX_ENDED_JOBS;) {
                if (!job_ended(c->jobs[i])) {
                        i++;
                        continue;
                }
                if (c->job_hook)
                        c->job_hook(c, c->jobs[i], JOB_REMOVED, c->hook_userdata);
                job_free(c->jobs[i]);
                memmove(c->jobs + i, c->jobs + i + 1, (c->n_jobs - i - 1) * sizeof(Job *));
                c->n_jobs--;
                ended--;
        }
}

int coordinator_start_job(Coordinator *c, Job *job) {
        Job **n;

        n = reallocarray(c->jobs, c->n_jobs + 1, sizeof(Job *));
        if (!n)
                return -ENOMEM;
        c->jobs = n;
        c->jobs[c->n_jobs++] = job;
        if (job->submit_time == 0)
                job->submit_time = clock_usec(CLOCK_REALTIME);
        if (c->job_hook)
                c->job_hook(c, job, JOB_ADDED, c->hook_userdata);
        log_info("Job %s: %u input file(s), %u reduce task(s), app %s, in %s.", job->id, job->nmap, job->nreduce,
                 job->app ?: "(the workers')", job->workdir);
        coordinator_prune(c);
        coordinator_job_changed(c, job);
        coordinator_dispatch(c);
        return 0;
}

static bool app_name_valid(const char *app) {
        /* A name looked up by the workers, or an absolute path to a plugin. */
        if (app[0] == '/')
                return strlen(app) < 4096;
        return app[0] != '\0' && app[0] != '.' && strlen(app) < 256 &&
               strspn(app, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == strlen(app);
}

static int make_job_dir(Coordinator *c, unsigned *ret_id, char **ret_path) {
        _cleanup_free_ char *jobs = NULL;

        if (!c->state_dir)
                return -ENOENT;
        if (asprintf(&jobs, "%s/jobs", c->state_dir) < 0)
                return -ENOMEM;
        if (mkdir(c->state_dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        if (mkdir(jobs, 0755) < 0 && errno != EEXIST)
                return -errno;

        /* Ids go on from earlier runs: a directory that exists belongs to an older job. */
        for (unsigned tries = 0; tries < 100000; tries++) {
                char *path;
                unsigned id = ++c->last_job_id;

                if (asprintf(&path, "%s/%u", jobs, id) < 0)
                        return -ENOMEM;
                if (mkdir(path, 0755) == 0) {
                        *ret_id = id;
                        *ret_path = path;
                        return 0;
                }
                free(path);
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

int coordinator_submit_job(Coordinator *c, const char *app, char *const *files, unsigned n_files,
                           unsigned nreduce, const char *workdir, uint64_t timeout, Job **ret,
                           char **ret_reason) {
        _cleanup_free_ char *dir = NULL, *id = NULL;
        unsigned id_number = 0;
        Job *job;
        int r;

        *ret_reason = NULL;
        if (!app_name_valid(app))
                return asprintf(ret_reason, "invalid app name '%s'", app) < 0 ? -ENOMEM : -EINVAL;
        if (n_files == 0)
                return asprintf(ret_reason, "no input files") < 0 ? -ENOMEM : -EINVAL;
        if (nreduce == 0 || nreduce > 100000)
                return asprintf(ret_reason, "nreduce must be 1…100000") < 0 ? -ENOMEM : -EINVAL;
        for (unsigned i = 0; i < n_files; i++) {
                struct stat st;
                /* Workers open the files from the job's directory: relative names would
                 * depend on it, so clients resolve them. */
                if (files[i][0] != '/')
                        return asprintf(ret_reason, "input file '%s' is not an absolute path", files[i]) < 0
                                       ? -ENOMEM : -EINVAL;
                if (stat(files[i], &st) < 0 || !S_ISREG(st.st_mode))
                        return asprintf(ret_reason, "input file '%s' is not a readable regular file", files[i]) < 0
                                       ? -ENOMEM : -EINVAL;
        }

        if (workdir) {
                struct stat st;
                if (workdir[0] != '/' || stat(workdir, &st) < 0 || !S_ISDIR(st.st_mode))
                        return asprintf(ret_reason, "working directory '%s' is not an existing absolute directory",
                                        workdir) < 0 ? -ENOMEM : -EINVAL;
                dir = strdup(workdir);
                if (!dir)
                        return -ENOMEM;
                id_number = ++c->last_job_id;
        } else {
                r = make_job_dir(c, &id_number, &dir);
                if (r < 0) {
                        errno = -r;
                        return asprintf(ret_reason, "cannot create a working directory under %s/jobs: %m",
                                        c->state_dir ?: "(no state directory)") < 0 ? -ENOMEM : -EINVAL;
                }
        }
        if (asprintf(&id, "%u", id_number) < 0)
                return -ENOMEM;

        r = job_new(id, app, dir, files, n_files, nreduce, timeout, &job);
        if (r < 0)
                return r;
        r = coordinator_start_job(c, job);
        if (r < 0) {
                job_free(job);
                return r;
        }
        *ret = job;
        return 0;
}

int coordinator_cancel_job(Coordinator *c, Job *j) {
        int r = job_cancel(j);
        if (r < 0)
                return r;
        coordinator_job_changed(c, j);
        coordinator_dispatch(c);
        return 0;
}

void coordinator_shutdown(Coordinator *c) {
        /* Give waiting workers their "exit" before the sockets go away. */
        coordinator_dispatch(c);
        varlink_server_flush_and_close(c->server, USEC_PER_SEC);
}
