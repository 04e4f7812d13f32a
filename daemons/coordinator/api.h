/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "job-submit.h"
#include "journal.h"
#include "scheduler.h"

/* What the Varlink handlers of org.mrkv.MapReduce reach, the Varlink server's userdata:
 * the model they translate calls into. worker-api.c answers the workers (RequestTask,
 * FinishTask), job-api.c the clients (SubmitJob, GetJob, ListJobs, CancelJob). */

typedef struct JobWatch JobWatch;

typedef struct MapReduceApi {
        Scheduler *scheduler;
        JobSubmitter *submitter;
        JobWatch *watches; /* job-api.c's: GetJob calls with "more" */
        JobJournal *journal; /* NULL without one (lab mode): nothing waits for the disk */
} MapReduceApi;
