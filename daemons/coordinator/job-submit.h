/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "scheduler.h"

/* Jobs submitted by clients (over Varlink or D-Bus): the request is checked, the job gets
 * an id and a working directory, and joins the scheduler's queue. */

/* Each input file name is kept while the job runs and sent in its GetJob replies. */
#define JOB_SUBMITTER_MAX_FILES_DEFAULT 100000U
#define JOB_SUBMITTER_MAX_FILES_MAX 1000000U

typedef struct JobSubmitter {
        Scheduler *scheduler;
        char *state_dir;               /* working directories of jobs that name none: <state_dir>/jobs/<id> */
        unsigned default_nreduce;      /* for jobs that name none */
        unsigned max_files;            /* input files (map tasks) per job */
        uint64_t default_task_timeout;
        unsigned last_job_id;
} JobSubmitter;

void job_submitter_done(JobSubmitter *s);

/* The submitter of a job, as the transport found it (SO_PEERCRED, D-Bus credentials). */
typedef struct JobOwner {
        uid_t uid;
        gid_t gid;
} JobOwner;

/* Validates the request, creates the working directory (<state_dir>/jobs/<id> unless one
 * is given) and queues the job of owner. A given working directory must be one the owner
 * owns (access.h); the coordinator makes one only for jobs the service's workers run. On
 * a bad request returns -EINVAL and a reason in *ret_reason (malloc'd). */
int job_submit(JobSubmitter *s, const JobOwner *owner, const char *app, char *const *files, unsigned n_files,
               unsigned nreduce, const char *workdir, uint64_t timeout, Job **ret, char **ret_reason);
