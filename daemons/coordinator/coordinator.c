/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <systemd/sd-daemon.h>

#include "config.h"
#include "coordinator.h"
#include "job-api.h"
#include "worker-api.h"
#include "org.mrkv.MapReduce.varlink.h"

static void on_wake_at(uint64_t usec, void *userdata) {
        Coordinator *c = userdata;

        if (usec == UINT64_MAX) {
                (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(c->timer, usec);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

static void on_finished(int status, void *userdata) {
        Coordinator *c = userdata;

        c->exit_status = status;
        (void) sd_event_exit(c->event, status);
}

static const SchedulerCallbacks scheduler_callbacks = {
        .assign = worker_api_assign,
        .wake_at = on_wake_at,
        .finished = on_finished,
};

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Coordinator *c = userdata;

        scheduler_expire(c->scheduler);
        return 0;
}

/* The service manager's status line, on every change of a job. */
static void update_status(ObserverEvent event, Job *changed, void *userdata) {
        Coordinator *c = userdata;
        Scheduler *s = c->scheduler;
        size_t queued = 0;
        Job *running = NULL;

        if (event != EVENT_JOB_CHANGED)
                return;
        for (size_t i = 0; i < s->n_jobs; i++) {
                Job *j = s->jobs[i];
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
                                  scheduler_n_workers(s));
        else
                (void) sd_notifyf(false, "STATUS=Waiting for jobs; %zu job(s) queued; %u worker(s)", queued,
                                  scheduler_n_workers(s));
}

static void on_disconnect(VarlinkConn *conn, void *userdata) {
        MapReduceApi *a = userdata;

        job_journal_forget(a->journal, conn);
        job_api_disconnect(a, conn);
        worker_api_disconnect(a, conn);
}

static void on_drained(VarlinkConn *conn, void *userdata) {
        job_api_drained(userdata, conn);
}

static int coordinator_setup_server(Coordinator *c) {
        int r;

        r = varlink_server_new(c->event,
                               &(VarlinkServerInfo) {
                                       .vendor = "mrkv",
                                       .product = "mrkv-coordinator",
                                       .version = PACKAGE_VERSION,
                                       .url = "https://github.com/mrkv/mrkv",
                               },
                               &c->api, &c->server);
        if (r < 0)
                return r;
        r = varlink_server_add_interface(c->server, org_mrkv_MapReduce_varlink);
        if (r < 0)
                return r;
        r = worker_api_register(c->server);
        if (r < 0)
                return r;
        r = job_api_register(&c->api, c->server);
        if (r < 0)
                return r;
        varlink_server_set_disconnect_handler(c->server, on_disconnect);
        varlink_server_set_drained_handler(c->server, on_drained);
        return 0;
}

int coordinator_new(sd_event *event, Coordinator **ret) {
        _cleanup_(coordinator_freep) Coordinator *c = NULL;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(event);

        r = scheduler_new(&scheduler_callbacks, c, &c->scheduler);
        if (r < 0)
                return r;
        c->submitter = (JobSubmitter) {
                .scheduler = c->scheduler,
                .default_nreduce = 10,
                .max_files = JOB_SUBMITTER_MAX_FILES_DEFAULT,
                .max_map_tasks = JOB_SUBMITTER_MAX_MAP_TASKS_DEFAULT,
                .backup_tasks = true,
                .default_task_timeout = 10 * USEC_PER_SEC,
        };
        c->api = (MapReduceApi) {
                .scheduler = c->scheduler,
                .submitter = &c->submitter,
        };
        r = coordinator_setup_server(c);
        if (r < 0)
                return r;
        r = scheduler_subscribe(c->scheduler, update_status, c);
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
        c->journal = job_journal_free(c->journal);
        c->api.journal = NULL;
        if (c->scheduler)
                job_api_done(&c->api);
        c->scheduler = scheduler_free(c->scheduler);
        job_submitter_done(&c->submitter);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

int coordinator_listen_fd(Coordinator *c, int fd) {
        return varlink_server_listen_fd(c->server, fd);
}

int coordinator_open_journal(Coordinator *c, const JobJournalOptions *opts) {
        int r;

        scheduler_set_max_ended_jobs(c->scheduler, opts->keep_jobs);
        r = job_journal_open(c->event, c->scheduler, &c->submitter, opts, &c->journal);
        if (r < 0)
                return r;
        c->api.journal = c->journal;
        return 0;
}

int coordinator_start_job(Coordinator *c, Job *job) {
        scheduler_set_exit_when_done(c->scheduler, c->exit_when_done);
        return scheduler_add_job(c->scheduler, job);
}

void coordinator_shutdown(Coordinator *c) {
        /* Answer what waits for the journal, and waiting workers their "exit", before the
         * sockets go away. */
        job_journal_flush(c->journal);
        scheduler_dispatch(c->scheduler);
        varlink_server_flush_and_close(c->server, USEC_PER_SEC);
}
