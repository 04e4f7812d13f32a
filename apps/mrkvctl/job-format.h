/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

/* How mrkvctl shows an org.mrkv.MapReduce Job: read from the coordinator's JSON, then
 * printed as a status page, a table row, or a progress line. No sockets here, so the
 * unit test can reach every format. */

/* A Job as the coordinator sent it. Strings and arrays are borrowed from the JSON
 * object, which must outlive this. Times are µs since the epoch, 0 when not yet. */
typedef struct JobInfo {
        const char *id;
        const char *app; /* NULL: the workers' own app (a lab-mode job) */
        const char *state;
        const char *workdir;
        const char *error; /* NULL unless the job failed */
        const char *waiting; /* NULL unless no connected worker may run it: for whom it waits */
        bool has_owner;      /* owner_uid was given (older coordinators give none) */
        uint64_t owner_uid;
        json_object *files, *outputs; /* arrays of strings; NULL where the coordinator left them out */
        uint64_t nreduce, map_done, map_total, reduce_done, reduce_total;
        double progress; /* 0..1 */
        uint64_t submit_time, start_time, finish_time;
        bool has_split_size;         /* older coordinators send none */
        uint64_t split_size;         /* 0: one map task per file */
        int backup_tasks;            /* -1: not said */
        int combine;                 /* -1: not said */
        const char *mapper, *reducer; /* a streaming job's commands, NULL else */
        json_object *counters;       /* name -> integer; NULL where left out */
} JobInfo;

/* Fills ret from a Job object. Unknown fields are ignored (a newer coordinator may add
 * some); a missing mandatory field or a wrong type gives -EBADMSG. */
int job_info_parse(json_object *o, JobInfo *ret);

/* done, failed and cancelled: the job will not change any more. */
bool job_state_is_final(const char *state);

/* "4.2s", "1m05s", "2h03m": a duration to read at a glance. */
char *format_duration(uint64_t usec, char *buf, size_t size);
/* "0:07", "12:34", "1:02:03": elapsed time on a progress line. */
char *format_elapsed(uint64_t usec, char *buf, size_t size);
/* "64 MiB", "1000 B": a byte count in the largest unit that divides it. */
char *format_bytes(uint64_t bytes, char *buf, size_t size);
/* Local time, "2024-05-01 12:00:00" ("-" for 0). */
char *format_timestamp(uint64_t usec, char *buf, size_t size);

/* The completed percentage, rounded down so that 100% means done. */
unsigned job_percent(const JobInfo *j);

/* One line for a log or a pipe: "job 3: mapping, map 3/8, reduce 0/10, 37%, 0:12". */
int job_format_progress_line(const JobInfo *j, uint64_t elapsed_usec, char **ret);
/* The same for a terminal COLUMNS wide, with a bar when there is room; never wider
 * than columns - 1, so redrawing it with "\r" never wraps. */
int job_format_progress_bar(const JobInfo *j, uint64_t elapsed_usec, unsigned columns, char **ret);

/* The end of "submit --wait": the final state, then the output files when done. */
void job_print_summary(FILE *f, const JobInfo *j);
/* "mrkvctl status": every field, one per line. now_usec (realtime) for "ago". */
void job_print_status(FILE *f, const JobInfo *j, uint64_t now_usec);
/* "mrkvctl jobs": a table with a header, columns as wide as their widest cell. */
void job_print_table(FILE *f, const JobInfo *jobs, size_t n);
