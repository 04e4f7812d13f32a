/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-event.h>

#include "api.h"
#include "job-submit.h"
#include "macro.h"
#include "scheduler.h"
#include "varlink-server.h"

/* The coordinator service: owns the scheduler (the model) and the Varlink server whose
 * handlers (worker-api.c, job-api.c) translate calls into scheduler calls; runs the timer
 * of task deadlines, keeps the service manager's STATUS= current, and in lab mode exits
 * once the job has ended. Observers of the model subscribe with scheduler_subscribe(). */

typedef struct Coordinator {
        sd_event *event;
        sd_event_source *timer;
        Scheduler *scheduler;
        JobSubmitter submitter; /* jobs submitted by clients; its directory and defaults are settings */
        VarlinkServer *server;
        MapReduceApi api;       /* the Varlink handlers' view */
        JobJournal *journal;    /* a job server's; NULL in lab mode */
        bool exit_when_done;    /* lab mode: exit once the job's output is final */
        int exit_status;
} Coordinator;

int coordinator_new(sd_event *event, Coordinator **ret);
Coordinator *coordinator_free(Coordinator *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Coordinator *, coordinator_free);

int coordinator_listen_fd(Coordinator *c, int fd);
/* A job server's journal: replays it into the scheduler and journals from then on. */
int coordinator_open_journal(Coordinator *c, const JobJournalOptions *opts);
/* Takes the job and starts handing out its tasks (after those of older jobs). */
int coordinator_start_job(Coordinator *c, Job *job);
/* Answers waiting workers and flushes and closes every connection. */
void coordinator_shutdown(Coordinator *c);
