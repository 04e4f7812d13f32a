/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-event.h>

#include "job.h"
#include "macro.h"
#include "varlink-server.h"

/* The coordinator service: Varlink handlers for workers, the queue of workers waiting
 * for a task, task time-outs, and committing the accepted attempts' files. */

typedef struct Worker Worker;

typedef struct Coordinator {
        sd_event *event;
        VarlinkServer *server;
        sd_event_source *timer;
        Job *job;          /* the job being run (one at a time for now) */
        Worker *workers;   /* every connected worker */
        Worker *waiting;   /* FIFO of workers whose RequestTask is pending */
        Worker *waiting_tail;
        uint64_t start_usec;
        bool exit_when_done; /* lab mode: exit once the job's output is final */
        int exit_status;
} Coordinator;

int coordinator_new(sd_event *event, Coordinator **ret);
Coordinator *coordinator_free(Coordinator *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Coordinator *, coordinator_free);

int coordinator_listen_fd(Coordinator *c, int fd);
/* Takes the job and starts handing out its tasks. */
int coordinator_start_job(Coordinator *c, Job *job);
/* Answers waiting workers and flushes and closes every connection. */
void coordinator_shutdown(Coordinator *c);
