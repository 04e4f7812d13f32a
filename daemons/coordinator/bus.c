/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "access.h"
#include "bus.h"
#include "job-submit.h"
#include "log.h"
#include "macro.h"
#include "strv.h"

/* Job ids are decimal numbers, valid object path elements as they are. */
static int job_object_path(const Job *j, char **ret) {
        return asprintf(ret, "%s/%s", MAPREDUCE_BUS_JOB_PREFIX, j->id) < 0 ? -ENOMEM : 0;
}

/* The caller of m, from its sender's credentials: 0, or a negative errno. The bus
 * daemon vouches for the uid (dbus-daemon tells the real uid, a kernel peer the
 * effective one); a gid it does not tell is left invalid. */
static int sender_owner(sd_bus_message *m, JobOwner *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        int r;

        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_GID | SD_BUS_CREDS_EGID,
                                      &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &ret->uid);
        if (r < 0)
                r = sd_bus_creds_get_uid(creds, &ret->uid);
        if (r < 0)
                return r;
        if (sd_bus_creds_get_egid(creds, &ret->gid) < 0 && sd_bus_creds_get_gid(creds, &ret->gid) < 0)
                ret->gid = (gid_t) -1;
        return 0;
}

/* Whether the message being answered comes from someone who may control job j. Only
 * calls that read properties count: the values that signals carry to everyone
 * (InterfacesAdded after a SubmitJob, say) are built with no detail. */
static bool current_caller_may_control(sd_bus *bus, const Job *j) {
        sd_bus_message *m = sd_bus_get_current_message(bus);
        const char *interface;
        JobOwner caller;

        if (!m)
                return false;
        interface = sd_bus_message_get_interface(m);
        if (!interface || (!streq(interface, "org.freedesktop.DBus.Properties") &&
                           !streq(interface, "org.freedesktop.DBus.ObjectManager")))
                return false;
        return sender_owner(m, &caller) >= 0 && access_may_control(caller.uid, j);
}

/* The manager object. */

static int property_get_workers(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Coordinator *c = userdata;
        return sd_bus_message_append(reply, "u", scheduler_n_workers(c->scheduler));
}

static int property_get_jobs(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Coordinator *c = userdata;
        Scheduler *s = c->scheduler;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "o");
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_jobs; i++) {
                _cleanup_free_ char *p = NULL;
                r = job_object_path(s->jobs[i], &p);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(reply, "o", p);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

/* A reply that waits for the job journal (a job server's): a submission or a cancellation
 * is answered once it would survive a crash. */
typedef struct DurableReply {
        sd_bus_message *call;
        char *id, *path; /* SubmitJob's reply; NULL for an empty one */
} DurableReply;

static void on_durable(void *owner, void *userdata, int error) {
        DurableReply *d = userdata;

        if (error < 0)
                (void) sd_bus_reply_method_errnof(d->call, error, "The job journal failed: %m");
        else if (d->id)
                (void) sd_bus_reply_method_return(d->call, "so", d->id, d->path);
        else
                (void) sd_bus_reply_method_return(d->call, NULL);
        sd_bus_message_unref(d->call);
        free(d->id);
        free(d->path);
        free(d);
}

static int reply_when_durable(Coordinator *c, sd_bus_message *m, const char *id, const char *path) {
        DurableReply *d;
        int r;

        if (!c->journal)
                return id ? sd_bus_reply_method_return(m, "so", id, path) : sd_bus_reply_method_return(m, NULL);
        d = calloc(1, sizeof(DurableReply));
        if (!d)
                return -ENOMEM;
        d->call = sd_bus_message_ref(m);
        d->id = id ? strdup(id) : NULL;
        d->path = path ? strdup(path) : NULL;
        if (id && (!d->id || !d->path)) {
                on_durable(NULL, d, -ENOMEM);
                return 1;
        }
        r = job_journal_wait(c->journal, NULL, on_durable, d);
        if (r < 0)
                on_durable(NULL, d, r);
        return 1;
}

static int method_submit_job(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Coordinator *c = userdata;
        _cleanup_strv_free_ char **files = NULL;
        _cleanup_free_ char *reason = NULL, *path = NULL;
        const char *app, *workdir;
        uint32_t nreduce;
        JobOwner owner;
        Job *job;
        int r;

        r = sd_bus_message_read(m, "s", &app);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(m, &files);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "us", &nreduce, &workdir);
        if (r < 0)
                return r;

        /* The job runs with its submitter's rights. */
        r = sender_owner(m, &owner);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot tell who submits the job: %m");
        JobRequest req = job_request_default(&c->submitter);
        req.app = app;
        req.files = files;
        req.n_files = (unsigned) strv_length(files);
        req.nreduce = nreduce ?: req.nreduce;
        req.workdir = workdir[0] ? workdir : NULL;
        /* No sizes: each file is one map task (the bus call carries none). */
        r = job_submit(&c->submitter, &owner, &req, &job, &reason);
        if (r == -EINVAL)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid job: %s", reason ?: "?");
        if (r < 0)
                return r;
        log_info("Job %s submitted over D-Bus by uid %u, %s.", job->id, (unsigned) owner.uid,
                 sd_bus_message_get_sender(m) ?: "?");

        r = job_object_path(job, &path);
        if (r < 0)
                return r;
        return reply_when_durable(c, m, job->id, path);
}

static int cancel(Coordinator *c, Job *j, sd_bus_message *m, sd_bus_error *error) {
        JobOwner caller;
        int r;

        r = sender_owner(m, &caller);
        if (r < 0 || !access_may_control(caller.uid, j))
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Only the owner of job %s and root may cancel it.", j->id);
        r = scheduler_cancel_job(c->scheduler, j);
        if (r == -ESTALE)
                return sd_bus_error_setf(error, MAPREDUCE_BUS_ERROR_JOB_ENDED, "Job %s has ended (%s).",
                                         j->id, job_display_state(j));
        if (r < 0)
                return r;
        log_info("Job %s cancelled over D-Bus by %s.", j->id, sd_bus_message_get_sender(m) ?: "?");
        return reply_when_durable(c, m, NULL, NULL);
}

static int method_cancel_job(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Coordinator *c = userdata;
        const char *id;
        Job *j;
        int r;

        r = sd_bus_message_read(m, "s", &id);
        if (r < 0)
                return r;
        j = scheduler_find_job(c->scheduler, id);
        if (!j)
                return sd_bus_error_setf(error, MAPREDUCE_BUS_ERROR_NO_SUCH_JOB, "No job %s.", id);
        return cancel(c, j, m, error);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Workers", "u", property_get_workers, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Jobs", "ao", property_get_jobs, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("SubmitJob",
                                SD_BUS_ARGS("s", app, "as", files, "u", nreduce, "s", workdir),
                                SD_BUS_RESULT("s", id, "o", job),
                                method_submit_job, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CancelJob", SD_BUS_ARGS("s", id), SD_BUS_NO_RESULT, method_cancel_job,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* Job objects. */

static int job_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                    sd_bus_error *error) {
        Coordinator *c = userdata;
        const char *id;
        Job *j;

        if (strncmp(path, MAPREDUCE_BUS_JOB_PREFIX "/", strlen(MAPREDUCE_BUS_JOB_PREFIX) + 1) != 0)
                return 0;
        id = path + strlen(MAPREDUCE_BUS_JOB_PREFIX) + 1;
        j = scheduler_find_job(c->scheduler, id);
        if (!j)
                return 0;
        *found = j;
        return 1;
}

static int job_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***nodes, sd_bus_error *error) {
        Coordinator *c = userdata;
        Scheduler *s = c->scheduler;
        char **v;

        v = calloc(s->n_jobs + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_jobs; i++)
                if (job_object_path(s->jobs[i], &v[i]) < 0) {
                        strv_free(v);
                        return -ENOMEM;
                }
        *nodes = v;
        return 0;
}

#define JOB_PROPERTY_GETTER(name, sig, expr)                                                              \
        static int property_get_##name(sd_bus *bus, const char *path, const char *interface,             \
                                       const char *property, sd_bus_message *reply, void *userdata,      \
                                       sd_bus_error *error) {                                            \
                Job *j = userdata;                                                                        \
                return sd_bus_message_append(reply, sig, expr);                                          \
        }

JOB_PROPERTY_GETTER(id, "s", j->id)
JOB_PROPERTY_GETTER(app, "s", j->app ?: "")
JOB_PROPERTY_GETTER(state, "s", job_display_state(j))
JOB_PROPERTY_GETTER(owner_uid, "u", (uint32_t) j->owner_uid)
JOB_PROPERTY_GETTER(workdir, "s", current_caller_may_control(bus, j) ? j->workdir : "")
JOB_PROPERTY_GETTER(map_done, "u", j->done[TASK_MAP])
JOB_PROPERTY_GETTER(map_total, "u", j->nmap)
JOB_PROPERTY_GETTER(reduce_done, "u", j->done[TASK_REDUCE])
JOB_PROPERTY_GETTER(reduce_total, "u", j->nreduce)
JOB_PROPERTY_GETTER(progress, "d", job_progress(j))
JOB_PROPERTY_GETTER(submit_time, "t", j->submit_time)
JOB_PROPERTY_GETTER(start_time, "t", j->start_time)
JOB_PROPERTY_GETTER(finish_time, "t", j->finish_time)
JOB_PROPERTY_GETTER(error, "s", j->error ?: "")

static int property_get_files(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        return sd_bus_message_append_strv(reply, current_caller_may_control(bus, j) ? j->files : (char *[]) { NULL });
}

static int property_get_outputs(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        int r;

        bool detail = current_caller_may_control(bus, j);

        r = sd_bus_message_open_container(reply, 'a', "s");
        if (r < 0)
                return r;
        for (unsigned i = 0; detail && j->state == JOB_DONE && i < j->nreduce; i++) {
                _cleanup_free_ char *p = NULL;

                r = job_output_path(j, i, &p);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(reply, "s", p);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int property_get_counters(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        uint64_t other = j->counters.v[COUNTER_TASK_ATTEMPTS_TIMED_OUT] + j->counters.v[COUNTER_TASK_ATTEMPTS_LOST];
        int r;

        /* The names of before the job counters first, as they were; "failures" are the
         * attempts that reported an error. */
        r = sd_bus_message_open_container(reply, 'a', "{st}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "{st}{st}{st}{st}", "attempts", j->counters.v[COUNTER_TASK_ATTEMPTS],
                                  "timeouts", j->counters.v[COUNTER_TASK_ATTEMPTS_TIMED_OUT], "worker_losses",
                                  j->counters.v[COUNTER_TASK_ATTEMPTS_LOST], "failures",
                                  j->counters.v[COUNTER_TASK_ATTEMPTS_FAILED] - MIN(other,
                                                                                   j->counters.v[COUNTER_TASK_ATTEMPTS_FAILED]));
        for (JobCounter i = 0; r >= 0 && i < _COUNTER_MAX; i++)
                r = sd_bus_message_append(reply, "{st}", job_counter_to_string(i), j->counters.v[i]);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int method_job_cancel(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        Coordinator *c = sd_bus_slot_get_userdata(sd_bus_get_current_slot(sd_bus_message_get_bus(m)));

        return cancel(c, j, m, error);
}

#define CHANGES SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE
static const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "s", property_get_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("OwnerUID", "u", property_get_owner_uid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("App", "s", property_get_app, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Files", "as", property_get_files, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Workdir", "s", property_get_workdir, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, CHANGES),
        SD_BUS_PROPERTY("MapDone", "u", property_get_map_done, 0, CHANGES),
        SD_BUS_PROPERTY("MapTotal", "u", property_get_map_total, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ReduceDone", "u", property_get_reduce_done, 0, CHANGES),
        SD_BUS_PROPERTY("ReduceTotal", "u", property_get_reduce_total, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Progress", "d", property_get_progress, 0, CHANGES),
        SD_BUS_PROPERTY("SubmitTime", "t", property_get_submit_time, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("StartTime", "t", property_get_start_time, 0, CHANGES),
        SD_BUS_PROPERTY("FinishTime", "t", property_get_finish_time, 0, CHANGES),
        SD_BUS_PROPERTY("Error", "s", property_get_error, 0, CHANGES),
        /* Signals name it without its value: only the owner and root may read it. */
        SD_BUS_PROPERTY("Outputs", "as", property_get_outputs, 0, SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        SD_BUS_PROPERTY("Counters", "a{st}", property_get_counters, 0, CHANGES),
        SD_BUS_METHOD("Cancel", "", "", method_job_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* Tells the bus of a change in the model. */
static void on_event(ObserverEvent event, Job *j, void *userdata) {
        sd_bus *bus = userdata;
        _cleanup_free_ char *path = NULL;

        if (event == EVENT_WORKERS_CHANGED) {
                (void) sd_bus_emit_properties_changed(bus, MAPREDUCE_BUS_PATH, MAPREDUCE_BUS_INTERFACE,
                                                      "Workers", NULL);
                return;
        }
        if (job_object_path(j, &path) < 0)
                return;

        if (event == EVENT_JOB_CHANGED) {
                (void) sd_bus_emit_properties_changed(bus, path, MAPREDUCE_BUS_JOB_INTERFACE, "State",
                                                      "MapDone", "ReduceDone", "Progress", "StartTime",
                                                      "FinishTime", "Error", "Outputs", "Counters", NULL);
                return;
        }
        if (event == EVENT_JOB_ADDED)
                (void) sd_bus_emit_object_added(bus, path);
        else
                (void) sd_bus_emit_object_removed(bus, path);
        (void) sd_bus_emit_properties_changed(bus, MAPREDUCE_BUS_PATH, MAPREDUCE_BUS_INTERFACE, "Jobs",
                                              NULL);
}

int coordinator_bus_setup(Coordinator *c, sd_bus *bus) {
        int r;

        r = sd_bus_add_object_vtable(bus, NULL, MAPREDUCE_BUS_PATH, MAPREDUCE_BUS_INTERFACE, manager_vtable,
                                     c);
        if (r < 0)
                return r;
        r = sd_bus_add_fallback_vtable(bus, NULL, MAPREDUCE_BUS_JOB_PREFIX, MAPREDUCE_BUS_JOB_INTERFACE,
                                       job_vtable, job_find, c);
        if (r < 0)
                return r;
        r = sd_bus_add_node_enumerator(bus, NULL, MAPREDUCE_BUS_JOB_PREFIX, job_enumerate, c);
        if (r < 0)
                return r;
        r = sd_bus_add_object_manager(bus, NULL, MAPREDUCE_BUS_PATH);
        if (r < 0)
                return r;

        return scheduler_subscribe(c->scheduler, on_event, bus);
}

void coordinator_bus_stop(Coordinator *c) {
        scheduler_unsubscribe(c->scheduler, on_event);
}
