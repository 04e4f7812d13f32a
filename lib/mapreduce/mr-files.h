/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdio.h>

/* Names of a MapReduce job's files in its working directory. A worker writes an
 * attempt's output under temporary names (created afresh, O_EXCL) and renames them into
 * place within the directory before it reports the attempt, so a final name only ever
 * holds a whole file of a successful attempt. Temporary names start with ".mrkv-tmp",
 * never "mr-out". */

#define MR_NAME_MAX 256

/* Map task M's output: every reduce partition in one file, with an index of where each
 * starts (see daemons/worker/intermediate.h). */
static inline void mr_intermediate_name(char buf[static MR_NAME_MAX], unsigned map) {
        snprintf(buf, MR_NAME_MAX, "mr-%u", map);
}

static inline void mr_output_name(char buf[static MR_NAME_MAX], unsigned reduce) {
        snprintf(buf, MR_NAME_MAX, "mr-out-%u", reduce);
}

static inline void mr_map_temp_name(char buf[static MR_NAME_MAX], const char *job, unsigned map,
                                    unsigned attempt) {
        snprintf(buf, MR_NAME_MAX, ".mrkv-tmp-%s-m%u.%u", job, map, attempt);
}

/* A map attempt's spilled runs are created under this name and unlinked at once. */
static inline void mr_map_run_name(char buf[static MR_NAME_MAX], const char *job, unsigned map, unsigned attempt) {
        snprintf(buf, MR_NAME_MAX, ".mrkv-tmp-%s-m%u.%u-run", job, map, attempt);
}

static inline void mr_reduce_temp_name(char buf[static MR_NAME_MAX], const char *job, unsigned reduce,
                                       unsigned attempt) {
        snprintf(buf, MR_NAME_MAX, ".mrkv-tmp-%s-r%u.%u", job, reduce, attempt);
}
