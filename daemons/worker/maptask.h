/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "counters.h"
#include "groups.h"
#include "mrkv/app.h"

typedef struct MapTask {
        const mrkv_app *app;  /* the app, or NULL for a streaming job's mapper */
        const char *mapper;   /* a streaming job's mapper command */
        uint64_t deadline;    /* the mapper's (CLOCK_MONOTONIC µs; UINT64_MAX: none) */
        bool combine;         /* run the app's combiner, if it has one */
        Groups *groups;       /* scratch space, kept for the next task */
        uint64_t map_memory;  /* the bytes groups may take before a run is spilled (0: no bound) */
        int dir_fd;           /* the job's directory */
        const char *input;    /* relative to dir_fd: a regular file, not a symbolic link */
        uint64_t offset, length; /* the split; 0 and UINT64_MAX for the whole file */
        uint64_t max_input;   /* bytes of the split's text at most */
        unsigned nreduce;
        const char *name;     /* the file to write, in dir_fd */
        const char *run_name; /* a temporary name for spilled runs */
        TaskCounters *counters;
} MapTask;

/* Runs one map task: reads the split of the input (see split.h), hands its text to the
 * app's map (or, streaming, to the mapper on its stdin), and writes the emitted pairs,
 * partitioned by FNV-1a of the key, each partition sorted by key, to name, one
 * partition after another with their index (see intermediate.h, and mapoutput.h for
 * runs spilled beyond the budget and the app's combiner). Returns 0 or -errno;
 * *ret_error describes an app or input failure (malloc'd). */
int map_task_run(const MapTask *t, char **ret_error);
