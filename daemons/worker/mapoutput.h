/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "counters.h"
#include "groups.h"
#include "macro.h"
#include "mrkv/app.h"

/* The output of one map task on its way to the map's file: pairs grouped by key in
 * memory (Groups) while they fit its budget; beyond it, the groups are written out as a
 * sorted run (by partition, then key) to an unnamed file in the job's directory and the
 * memory freed. Beyond MAP_MERGE_FAN_IN runs, the newest are merged into one, so a task
 * holds that many files at most. At the end, without runs, the groups go straight to the
 * map's file, partition after partition (see intermediate.h); with runs, the rest becomes
 * one more run and the runs, each in that order too, are merged into it. A combiner, when
 * the app has one, runs over a key's values whenever they are written (into a run, a
 * merged run, or the map's file) and could shrink them: not over
 * one value repeated, which the format keeps as one run, nor over a key of one run in a
 * merge, combined when that run was written.
 *
 * Runs are unlinked as soon as they are created, so nothing is left behind by a task
 * that fails or a worker that dies. */

#define MAP_MERGE_FAN_IN 64U

typedef struct MapOutput {
        Groups *groups;            /* the task's scratch space (see map_output_init()) */
        mrkv_combine_func combine; /* or NULL */
        int dir_fd;
        unsigned nreduce;
        const char *run_name;      /* a temporary name for runs, while they are created */
        TaskCounters *counters;
        int *runs;                 /* fds of the spilled runs, oldest first */
        size_t n_runs;
        char *error;               /* why the last call failed, when it was not the app */
        Group combined;            /* a combiner's output for one key */
} MapOutput;

/* Sets up m over its groups (m->groups, with the task's budget): a full budget spills a
 * run. */
void map_output_init(MapOutput *m, size_t budget);

/* Adds one pair, spilling a run first when the groups are full. 0 or -errno, m->error
 * saying why. Inline and a tail call: a word count calls it once per word of its input
 * (so the map output is counted as it is written, a group at a time). */
static inline int map_output_add(MapOutput *m, const char *key, size_t key_len, const char *value,
                                 size_t value_len) {
        return groups_add(m->groups, key, key_len, value, value_len);
}

/* Writes the map's file name in dir_fd: the partitions in order, each sorted by key, and
 * their index. 0 or -errno, m->error says why. */
int map_output_write(MapOutput *m, const char *name);

/* Closes the runs; the groups are left to their owner. */
void map_output_done(MapOutput *m);
