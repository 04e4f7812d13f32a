/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* A job's counters, as Hadoop's job counters: what its tasks read and wrote, added up
 * from the attempt the coordinator committed for each task (a task run twice counts
 * once), and what the coordinator saw of its attempts. Names are those of the interface
 * (org.mrkv.MapReduce, Job.counters). */

typedef enum JobCounter {
        /* Reported by workers in FinishTask. */
        COUNTER_MAP_INPUT_RECORDS,
        COUNTER_MAP_INPUT_BYTES,
        COUNTER_MAP_OUTPUT_RECORDS,
        COUNTER_MAP_OUTPUT_BYTES,
        COUNTER_COMBINE_INPUT_RECORDS,
        COUNTER_COMBINE_OUTPUT_RECORDS,
        COUNTER_SPILLED_RECORDS,
        COUNTER_SHUFFLE_BYTES,
        COUNTER_REDUCE_INPUT_GROUPS,
        COUNTER_REDUCE_INPUT_RECORDS,
        COUNTER_REDUCE_OUTPUT_RECORDS,
        _COUNTER_WORKER_MAX,
        /* The coordinator's own. */
        COUNTER_BACKUP_ATTEMPTS_STARTED = _COUNTER_WORKER_MAX,
        COUNTER_BACKUP_ATTEMPTS_WON,
        COUNTER_TASK_ATTEMPTS_FAILED, /* ended without output: an error, a time-out, a lost worker */
        COUNTER_TASK_ATTEMPTS,        /* handed out, backups included */
        COUNTER_TASK_ATTEMPTS_TIMED_OUT,
        COUNTER_TASK_ATTEMPTS_LOST,   /* with their worker's connection */
        _COUNTER_MAX,
} JobCounter;

typedef struct JobCounters {
        uint64_t v[_COUNTER_MAX];
} JobCounters;

const char *job_counter_to_string(JobCounter c);
/* -ENOENT for a name it does not know. */
int job_counter_from_string(const char *s);

/* Adds the workers' counters of b to a, saturating. */
void job_counters_add_worker(JobCounters *a, const JobCounters *b);
