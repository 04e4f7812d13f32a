/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "counters.h"
#include "mrkv/app.h"

typedef struct ReduceTask {
        const mrkv_app *app;  /* the app, or NULL for a streaming job's reducer */
        const char *reducer;  /* a streaming job's reducer command */
        uint64_t deadline;    /* the reducer's (CLOCK_MONOTONIC µs; UINT64_MAX: none) */
        int dir_fd;           /* the job's directory */
        char *const *inputs;  /* the maps' intermediate files, in map order */
        unsigned n_inputs;
        unsigned partition, nreduce; /* the range of each to read, of the job's nreduce */
        const char *output;   /* the file to write, in dir_fd */
        TaskCounters *counters;
} ReduceTask;

/* Runs one reduce task: merges its partition of the sorted intermediate files
 * (relative to dir_fd; a file's index is checked and only the partition's range read) as
 * streams, calls the app's reduce once per distinct key with an iterator over its values
 * and writes "key value\n" lines to output in dir_fd; or, streaming, feeds the reducer
 * "key<TAB>value\n" lines in key order and writes the lines it prints to output. Memory
 * stays bounded by a buffer per input and the largest single record, whatever the files'
 * sizes. Returns 0 or -errno, *ret_error saying why (malloc'd). */
int reduce_task_run(const ReduceTask *t, char **ret_error);
