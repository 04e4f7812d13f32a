/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "job.h"

/* The records of the job journal (journal.c), each a JSON object in the framing of
 * lib/state (record.h: length, CRC-32, type). A reader ignores members it does not know
 * and takes a default for those that are missing, so a field added to Job is one line in
 * journal_job_to_json() and one in journal_job_from_json(), and an older coordinator
 * still reads a newer journal.
 *
 *   META    {generation, last_job_id}: written at every start, synced before READY=1
 *   JOB     a submitted job, all that is needed to run it: {id, owner_uid, owner_gid,
 *           app?, workdir, nmap,
 *           files (absent once an ended job's list was dropped), nreduce, timeout,
 *           max_failures, submit_time, backup_tasks?, combine? (absent: true), split_size?, sizes? (with the
 *           files: the map tasks are cut from them again), mapper?, reducer?}
 *   JOB_V2  the same, for a job an older coordinator would run wrong: its map tasks are
 *           splits (nmap is not the number of files), or it is a streaming job. A
 *           coordinator that does not know the type skips the job and its records.
 *   START   {job, time}: the first task was handed out
 *   COMMIT  {job, kind, task, attempt, files: [[size, mtime_ns, inode] or null],
 *           counters?, job_counters?}: a task's output is in place; the committed file
 *           (journal_task_file_name()) as it was then; null if the coordinator could not
 *           stat it (a directory private to the job's owner), which fails the check. A
 *           map's record of an older version lists its nreduce files mr-M-R: it fails the
 *           check too, and the map runs again. counters: the attempt's, which the job adds up for the
 *           commits that hold at a restart; job_counters: the coordinator's own counters
 *           of the job then (job-counters.h)
 *   END     {job, state, time, error?, map_done, reduce_done, counters?}
 *
 * A committed file is checked at restart by its size, modification time (ns) and inode
 * number: a rename keeps all three, a rewrite or a truncation changes them, and reading
 * them is a stat(), not a read of the data. */

enum {
        JOURNAL_RECORD_META = 1,
        JOURNAL_RECORD_JOB,
        JOURNAL_RECORD_START,
        JOURNAL_RECORD_COMMIT,
        JOURNAL_RECORD_END,
        JOURNAL_RECORD_JOB_V2,
};

/* JOB, or JOB_V2 for a job older coordinators must not read as a JOB. */
uint32_t journal_job_record_type(const Job *j);

/* Members of a record: a missing or mistyped member gives -EBADMSG. */
int journal_get_string(json_object *o, const char *key, const char **ret);
int journal_get_u64(json_object *o, const char *key, uint64_t *ret);

json_object *journal_job_to_json(const Job *j);
/* *ret_files_dropped: the record has no file names (an ended job's list was dropped): the
 * job has nmap empty ones, for job_drop_files() once its END record is applied. */
int journal_job_from_json(json_object *o, Job **ret, bool *ret_files_dropped);

/* The file a task commits: mr-<map> for a map task (every partition), mr-out-<task> for a
 * reduce task. */
void journal_task_file_name(const Task *t, char buf[static 256]);

/* The COMMIT record of an attempt whose files were just renamed into place, with its
 * counters (NULL: none). */
int journal_commit_to_json(const Job *j, const Task *t, unsigned attempt, const JobCounters *counters,
                           json_object **ret);
/* Adds a verified COMMIT record's counters to the job's, and keeps the highest of the
 * coordinator's own counters it records. */
int journal_commit_apply_counters(Job *j, json_object *commit, bool verified);
/* Whether the files a COMMIT record lists are still there as committed: 0, or -ESTALE with
 * the first that is not in *ret_file (malloc'd). */
int journal_commit_verify(const Job *j, const Task *t, json_object *commit, char **ret_file);

/* Adds the workers' counters a COMMIT record carries to c. */
int journal_commit_add_counters(json_object *commit, JobCounters *c);

/* END: the job's end as it is in j. */
json_object *journal_end_to_json(const Job *j);
/* END of a job that will be done at time once its committing tasks are, with these
 * counters: written with the last COMMIT record, before the model has ended the job. */
json_object *journal_end_done_to_json(const Job *j, uint64_t time, const JobCounters *counters);
/* Applies an END record to a job loaded from the journal. */
int journal_end_apply(Job *j, json_object *o);
