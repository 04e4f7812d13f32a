/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "scheduler.h"

/* Jobs submitted by clients (over Varlink or D-Bus): the request is checked, the job gets
 * an id and a working directory, and joins the scheduler's queue. */

/* Each input file name is kept while the job runs and sent in its GetJob replies. */
#define JOB_SUBMITTER_MAX_FILES_DEFAULT 100000U
#define JOB_SUBMITTER_MAX_FILES_MAX 1000000U
/* Each map task is a Task, a COMMIT record kept while the job runs, and nreduce
 * intermediate files. */
#define JOB_SUBMITTER_MAX_MAP_TASKS_DEFAULT 100000U
#define JOB_SUBMITTER_MAX_MAP_TASKS_MAX 1000000U
#define JOB_SPLIT_SIZE_DEFAULT (64ULL << 20)
/* A streaming job's command line. */
#define JOB_COMMAND_MAX 4096U

typedef struct JobSubmitter {
        Scheduler *scheduler;
        char *state_dir;               /* working directories of jobs that name none: <state_dir>/jobs/<id> */
        unsigned default_nreduce;      /* for jobs that name none */
        unsigned max_files;            /* input files per job */
        unsigned max_map_tasks;        /* map tasks (splits) per job */
        uint64_t default_task_timeout;
        bool backup_tasks;             /* jobs may have backup tasks (unless they ask for none) */
        unsigned last_job_id;
} JobSubmitter;

void job_submitter_done(JobSubmitter *s);

/* The submitter of a job, as the transport found it (SO_PEERCRED, D-Bus credentials). */
typedef struct JobOwner {
        uid_t uid;
        gid_t gid;
} JobOwner;

/* What a client asks for. */
typedef struct JobRequest {
        const char *app;         /* "" or "streaming" with mapper and reducer */
        char *const *files;
        unsigned n_files;
        /* The files' sizes as the client saw them (n_files of them), or NULL: the
         * coordinator does not look at the files (see validate_request()), so without
         * them each file is one map task. */
        const uint64_t *sizes;
        uint64_t split_size;     /* 0: one map task per file */
        unsigned nreduce;
        const char *workdir;     /* NULL: a new one, <state_dir>/jobs/<id> */
        uint64_t timeout;
        const char *mapper, *reducer;
        bool backup_tasks;
        bool combine;            /* false: map tasks skip the app's combiner */
} JobRequest;

/* The defaults of a request, for the transports to fill in. */
JobRequest job_request_default(const JobSubmitter *s);

/* Validates the request, creates the working directory (<state_dir>/jobs/<id> unless one
 * is given) and queues the job of owner. A given working directory must be one the owner
 * owns (access.h); the coordinator makes one only for jobs the service's workers run. On
 * a bad request returns -EINVAL and a reason in *ret_reason (malloc'd). */
int job_submit(JobSubmitter *s, const JobOwner *owner, const JobRequest *req, Job **ret, char **ret_reason);
