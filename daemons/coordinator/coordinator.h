/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-event.h>

#include "job.h"
#include "macro.h"
#include "varlink-server.h"

/* The coordinator service: Varlink handlers for workers, the queue of workers waiting
 * for a task, task time-outs, and committing the accepted attempts' files. */

typedef struct Worker Worker;
typedef struct JobWatch JobWatch;
typedef struct Coordinator Coordinator;

typedef enum JobEvent {
        JOB_ADDED,
        JOB_CHANGED,  /* state or progress */
        JOB_REMOVED,  /* just before an ended job is forgotten */
} JobEvent;

/* Observers of the coordinator's model (the D-Bus plane). */
typedef void (*CoordinatorJobHook)(Coordinator *c, Job *j, JobEvent event, void *userdata);
typedef void (*CoordinatorWorkersHook)(Coordinator *c, void *userdata);

struct Coordinator {
        sd_event *event;
        VarlinkServer *server;
        sd_event_source *timer;
        Job **jobs;        /* in submission order; the oldest that can use a worker gets it */
        size_t n_jobs;
        unsigned last_job_id;
        char *state_dir;   /* default working directories: <state_dir>/jobs/<id> */
        unsigned default_nreduce;      /* for submitted jobs that name none */
        uint64_t default_task_timeout;
        JobWatch *watches; /* GetJob calls with "more" */
        CoordinatorJobHook job_hook;
        CoordinatorWorkersHook workers_hook;
        void *hook_userdata;
        Worker *workers;   /* every connected worker */
        Worker *waiting;   /* FIFO of workers whose RequestTask is pending */
        Worker *waiting_tail;
        uint64_t start_usec;
        bool exit_when_done; /* lab mode: exit once the job's output is final */
        int exit_status;
};

int coordinator_new(sd_event *event, Coordinator **ret);
Coordinator *coordinator_free(Coordinator *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Coordinator *, coordinator_free);

int coordinator_listen_fd(Coordinator *c, int fd);
/* Takes the job and starts handing out its tasks (after those of older jobs). */
int coordinator_start_job(Coordinator *c, Job *job);

/* A job submitted by a client: validates the request, creates the working directory
 * (<state_dir>/jobs/<id> unless one is given) and queues the job. On a bad request
 * returns -EINVAL and a reason in *ret_reason (malloc'd). */
int coordinator_submit_job(Coordinator *c, const char *app, char *const *files, unsigned n_files,
                           unsigned nreduce, const char *workdir, uint64_t timeout, Job **ret,
                           char **ret_reason);
int coordinator_cancel_job(Coordinator *c, Job *j);
Job *coordinator_find_job(Coordinator *c, const char *id);
unsigned coordinator_n_workers(Coordinator *c);
/* Tells watchers, the job hook and the service manager that j changed. */
void coordinator_job_changed(Coordinator *c, Job *j);

/* The client half of org.mrkv.MapReduce (job-api.c). */
int job_api_register(Coordinator *c);
void job_api_job_changed(Coordinator *c, Job *j);
void job_api_disconnect(Coordinator *c, VarlinkConn *conn);
void job_api_free(Coordinator *c);
/* Answers waiting workers and flushes and closes every connection. */
void coordinator_shutdown(Coordinator *c);
