/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "job-counters.h"
#include "macro.h"

static const char *const counter_table[_COUNTER_MAX] = {
        [COUNTER_MAP_INPUT_RECORDS] = "map_input_records",
        [COUNTER_MAP_INPUT_BYTES] = "map_input_bytes",
        [COUNTER_MAP_OUTPUT_RECORDS] = "map_output_records",
        [COUNTER_MAP_OUTPUT_BYTES] = "map_output_bytes",
        [COUNTER_COMBINE_INPUT_RECORDS] = "combine_input_records",
        [COUNTER_COMBINE_OUTPUT_RECORDS] = "combine_output_records",
        [COUNTER_SPILLED_RECORDS] = "spilled_records",
        [COUNTER_SHUFFLE_BYTES] = "shuffle_bytes",
        [COUNTER_REDUCE_INPUT_GROUPS] = "reduce_input_groups",
        [COUNTER_REDUCE_INPUT_RECORDS] = "reduce_input_records",
        [COUNTER_REDUCE_OUTPUT_RECORDS] = "reduce_output_records",
        [COUNTER_BACKUP_ATTEMPTS_STARTED] = "backup_attempts_started",
        [COUNTER_BACKUP_ATTEMPTS_WON] = "backup_attempts_won",
        [COUNTER_TASK_ATTEMPTS_FAILED] = "task_attempts_failed",
        [COUNTER_TASK_ATTEMPTS] = "task_attempts",
        [COUNTER_TASK_ATTEMPTS_TIMED_OUT] = "task_attempts_timed_out",
        [COUNTER_TASK_ATTEMPTS_LOST] = "task_attempts_lost",
};

const char *job_counter_to_string(JobCounter c) {
        return c < _COUNTER_MAX ? counter_table[c] : NULL;
}

int job_counter_from_string(const char *s) {
        for (int i = 0; i < _COUNTER_MAX; i++)
                if (streq(s, counter_table[i]))
                        return i;
        return -ENOENT;
}

void job_counters_add_worker(JobCounters *a, const JobCounters *b) {
        for (int i = 0; i < _COUNTER_WORKER_MAX; i++)
                a->v[i] = a->v[i] > UINT64_MAX - b->v[i] ? UINT64_MAX : a->v[i] + b->v[i];
}
