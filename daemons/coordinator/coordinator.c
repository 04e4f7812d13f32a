/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <time.h>

#include "config.h"
#include "coordinator.h"
#include "log.h"
#include "macro.h"
#include "mr-files.h"
#include "org.mrkv.MapReduce.varlink.h"

struct Worker {
        Coordinator *coordinator;
        VarlinkConn *conn;
        Worker *prev, *next;  /* in coordinator->workers */
        Worker *wait_next;    /* in coordinator->waiting */
        bool waiting;
        unsigned tasks_done;
};

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

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
        uint64_t d = c->job && !job_ended(c->job) ? job_next_deadline(c->job) : UINT64_MAX;

        if (d == UINT64_MAX) {
                (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(c->timer, d);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

static void coordinator_job_ended(Coordinator *c) {
        Job *j = c->job;
        double secs = (double) (now_usec() - c->start_usec) / USEC_PER_SEC;

        if (j->state == JOB_DONE)
                log_info("Job %s done: %u map and %u reduce tasks in %.3f s.", j->id, j->nmap, j->nreduce, secs);
        else
                log_error("Job %s failed after %.3f s: %s", j->id, secs, j->error ?: "unknown error");

        if (c->exit_when_done) {
                c->exit_status = j->state == JOB_DONE ? 0 : 1;
                (void) sd_event_exit(c->event, c->exit_status);
        }
}

/* Hands tasks to waiting workers, in arrival order, while there are tasks to hand out. */
static void coordinator_dispatch(Coordinator *c) {
        uint64_t now = now_usec();
        Worker *w;

        while ((w = waiting_pop(c))) {
                Task *t;
                int r;

                if (!c->job) {
                        waiting_push_front(c, w);
                        break;
                }
                r = job_assign(c->job, w, now, &t);
                if (r == 0) {
                        waiting_push_front(c, w);
                        break;
                }
                if (r == -ESHUTDOWN) {
                        (void) reply_exit(w);
                        continue;
                }
                json_object *p = task_to_json(c->job, t);
                if (!p) {
                        log_oom();
                        (void) job_release_owner(c->job, w);
                        varlink_conn_close(w->conn);
                        continue;
                }
                log_debug("Assigned %s task %u attempt %u to %s.", task_kind_to_string(t->kind), t->index,
                          t->attempt, varlink_conn_describe(w->conn));
                (void) varlink_conn_reply(w->conn, p);
        }
        coordinator_arm_timer(c);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Coordinator *c = userdata;
        unsigned n;

        if (!c->job)
                return 0;
        n = job_expire(c->job, now_usec());
        if (n > 0)
                log_notice("%u task(s) of job %s not finished within %.1f s, handing them out again.", n, c->job->id,
                           (double) c->job->timeout / USEC_PER_SEC);
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

        if (!c->job || !streq(c->job->id, p.job)) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "job", json_object_new_string(p.job));
                return varlink_conn_error(conn, "org.mrkv.MapReduce.NoSuchJob", e);
        }
        t = job_find_task(c->job, kind, p.task);
        if (!t) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "job", json_object_new_string(p.job));
                json_object_object_add(e, "kind", json_object_new_string(p.kind));
                json_object_object_add(e, "task", json_object_new_int64(p.task));
                return varlink_conn_error(conn, "org.mrkv.MapReduce.NoSuchTask", e);
        }

        const char *error = p.error ?: "no reason given";
        bool accept = p.ok && job_may_complete(c->job, t, p.attempt);
        if (accept) {
                r = commit_attempt_output(c->job, t, p.attempt);
                if (r < 0) {
                        log_warning_errno(r, "Cannot commit %s task %u attempt %u of %s: %m", p.kind, p.task,
                                          p.attempt, varlink_conn_describe(conn));
                        accept = false;
                        error = "output files missing";
                }
        }
        (void) job_finish(c->job, t, p.attempt, accept, error);
        if (!accept)
                remove_attempt_output(c->job, t, p.attempt);

        if (!p.ok)
                log_warning("%s task %u attempt %u failed on %s: %s", p.kind, p.task, p.attempt,
                            varlink_conn_describe(conn), error);
        else
                log_debug("%s task %u attempt %u finished on %s%s.", p.kind, p.task, p.attempt,
                          varlink_conn_describe(conn), accept ? "" : " (not committed)");

        r = varlink_conn_reply(conn, NULL);
        if (job_ended(c->job))
                coordinator_job_ended(c);
        coordinator_dispatch(c);
        return r;
}

static void on_disconnect(VarlinkConn *conn, void *userdata) {
        Coordinator *c = userdata;
        Worker *w = varlink_conn_get_userdata(conn);
        unsigned n;

        if (!w)
                return;
        waiting_remove(c, w);
        if (w->prev)
                w->prev->next = w->next;
        else
                c->workers = w->next;
        if (w->next)
                w->next->prev = w->prev;

        if (c->job) {
                n = job_release_owner(c->job, w);
                if (n > 0)
                        log_notice("Worker %s went away with %u task(s); handing them out again.",
                                   varlink_conn_describe(conn), n);
        }
        free(w);
        varlink_conn_set_userdata(conn, NULL);
        coordinator_dispatch(c);
}

int coordinator_new(sd_event *event, Coordinator **ret) {
        _cleanup_(coordinator_freep) Coordinator *c = NULL;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(event);

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
        c->job = job_free(c->job);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

int coordinator_listen_fd(Coordinator *c, int fd) {
        return varlink_server_listen_fd(c->server, fd);
}

int coordinator_start_job(Coordinator *c, Job *job) {
        if (c->job)
                return -EBUSY;
        c->job = job;
        c->start_usec = now_usec();
        log_info("Job %s: %u input file(s), %u reduce task(s), in %s.", job->id, job->nmap, job->nreduce,
                 job->workdir);
        coordinator_dispatch(c);
        return 0;
}

void coordinator_shutdown(Coordinator *c) {
        /* Give waiting workers their "exit" before the sockets go away. */
        coordinator_dispatch(c);
        varlink_server_flush_and_close(c->server, USEC_PER_SEC);
}
