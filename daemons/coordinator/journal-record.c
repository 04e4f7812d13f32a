/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "job-counters-json.h"
#include "journal-record.h"
#include "json-util.h"
#include "macro.h"
#include "mr-files.h"

int journal_get_string(json_object *o, const char *key, const char **ret) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return -EBADMSG;
        *ret = json_object_get_string(v);
        return 0;
}

int journal_get_u64(json_object *o, const char *key, uint64_t *ret) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return -EBADMSG;
        *ret = json_object_get_uint64(v);
        return 0;
}

static json_object *sizes_to_json(const uint64_t *sizes, unsigned n) {
        _cleanup_json_ json_object *a = json_object_new_array_ext((int) n);

        for (unsigned i = 0; a && i < n; i++)
                if (json_array_append(a, json_object_new_uint64(sizes[i])) < 0)
                        return NULL;
        return TAKE_PTR(a);
}

/* "sizes", one per file, or NULL without them. */
static int sizes_from_json(json_object *o, unsigned n, uint64_t **ret) {
        _cleanup_free_ uint64_t *sizes = NULL;
        json_object *a;

        *ret = NULL;
        if (!json_object_object_get_ex(o, "sizes", &a))
                return 0;
        if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) != n)
                return -EBADMSG;
        sizes = calloc(MAX(n, 1U), sizeof(uint64_t));
        if (!sizes)
                return -ENOMEM;
        for (unsigned i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(a, i);
                if (!json_object_is_type(v, json_type_int))
                        return -EBADMSG;
                sizes[i] = json_object_get_uint64(v);
        }
        *ret = TAKE_PTR(sizes);
        return 0;
}

/* What a JOB record adds to what job_new() makes: splits, commands, backups. */
static int job_extras_from_json(json_object *o, Job *j, bool dropped) {
        _cleanup_free_ uint64_t *sizes = NULL;
        const char *mapper = NULL, *reducer = NULL;
        uint64_t split_size = 0, nmap = 0;
        json_object *v;
        int r;

        if (json_object_object_get_ex(o, "backup_tasks", &v))
                j->backup_tasks = json_object_get_boolean(v);
        /* Records older than the switch are of jobs with the combiner. */
        if (json_object_object_get_ex(o, "combine", &v))
                j->combine = json_object_get_boolean(v);
        (void) journal_get_string(o, "mapper", &mapper);
        (void) journal_get_string(o, "reducer", &reducer);
        if (!mapper != !reducer)
                return -EBADMSG;
        r = job_set_commands(j, mapper, reducer);
        if (r < 0)
                return r;
        if (dropped)
                return 0;
        r = sizes_from_json(o, j->nfiles, &sizes);
        if (r < 0)
                return r;
        (void) journal_get_u64(o, "split_size", &split_size);
        if (sizes) {
                r = job_split(j, sizes, split_size, UINT_MAX);
                if (r < 0)
                        return r == -E2BIG ? -EBADMSG : r;
        }
        /* The tasks cut again are those the job had. */
        if (journal_get_u64(o, "nmap", &nmap) >= 0 && nmap != j->nmap)
                return -EBADMSG;
        return 0;
}

json_object *journal_job_to_json(const Job *j) {
        _cleanup_json_ json_object *o = NULL;

        if (json_build_object(&o,
                              "id", json_object_new_string(j->id),
                              "workdir", json_object_new_string(j->workdir),
                              "owner_uid", json_object_new_uint64(j->owner_uid),
                              "owner_gid", json_object_new_uint64(j->owner_gid),
                              "nmap", json_object_new_uint64(j->nmap),
                              "nreduce", json_object_new_uint64(j->nreduce),
                              "timeout", json_object_new_uint64(j->timeout),
                              "max_failures", json_object_new_uint64(j->max_failures),
                              "submit_time", json_object_new_uint64(j->submit_time),
                              NULL) < 0)
                return NULL;
        if (j->app && json_object_add(o, "app", json_object_new_string(j->app)) < 0)
                return NULL;
        /* An ended job's list may have been dropped (job_drop_files()): nmap says how many. */
        if (j->files && json_object_add(o, "files", json_string_array_new(j->files, j->nfiles)) < 0)
                return NULL;
        if (json_object_add(o, "backup_tasks", json_object_new_boolean(j->backup_tasks)) < 0)
                return NULL;
        if (!j->combine && json_object_add(o, "combine", json_object_new_boolean(false)) < 0)
                return NULL;
        if (j->files && j->sizes && (json_object_add(o, "split_size", json_object_new_uint64(j->split_size)) < 0 ||
                                     json_object_add(o, "sizes", sizes_to_json(j->sizes, j->nfiles)) < 0))
                return NULL;
        if (j->mapper && (json_object_add(o, "mapper", json_object_new_string(j->mapper)) < 0 ||
                          json_object_add(o, "reducer", json_object_new_string(j->reducer)) < 0))
                return NULL;
        return TAKE_PTR(o);
}

uint32_t journal_job_record_type(const Job *j) {
        return j->nmap != j->nfiles || j->mapper ? JOURNAL_RECORD_JOB_V2 : JOURNAL_RECORD_JOB;
}

/* The "files" of a JOB record, or without them (an ended job's dropped list) nmap empty
 * names, which journal_job_from_json() drops again. */
static int files_from_json(json_object *o, char ***ret, unsigned *ret_n, bool *ret_dropped) {
        _cleanup_free_ char **files = NULL;
        json_object *a = NULL;
        uint64_t nmap = 0;
        size_t n;

        if (!json_object_object_get_ex(o, "files", &a) && journal_get_u64(o, "nmap", &nmap) < 0)
                return -EBADMSG;
        if (a && !json_object_is_type(a, json_type_array))
                return -EBADMSG;
        n = a ? json_object_array_length(a) : nmap;
        if (n == 0 || n > UINT32_MAX)
                return -EBADMSG;
        files = calloc(n + 1, sizeof(char *));
        if (!files)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *f = a ? json_object_array_get_idx(a, i) : NULL;
                if (a && !json_object_is_type(f, json_type_string))
                        return -EBADMSG;
                files[i] = f ? (char *) json_object_get_string(f) : (char *) "";
        }
        *ret = TAKE_PTR(files);
        *ret_n = (unsigned) n;
        *ret_dropped = !a;
        return 0;
}

int journal_job_from_json(json_object *o, Job **ret, bool *ret_files_dropped) {
        _cleanup_free_ char **files = NULL;
        const char *id, *workdir, *app = NULL;
        uint64_t nreduce, timeout, max_failures = 0, submit_time = 0, uid = 0, gid = 0;
        bool dropped;
        unsigned n;
        Job *j;
        int r;

        if (journal_get_string(o, "id", &id) < 0 || journal_get_string(o, "workdir", &workdir) < 0 ||
            journal_get_u64(o, "nreduce", &nreduce) < 0 || journal_get_u64(o, "timeout", &timeout) < 0 ||
            nreduce == 0 || nreduce > UINT32_MAX)
                return -EBADMSG;
        r = files_from_json(o, &files, &n, &dropped);
        if (r < 0)
                return r;
        /* Optional members. */
        (void) journal_get_string(o, "app", &app);
        (void) journal_get_u64(o, "max_failures", &max_failures);
        (void) journal_get_u64(o, "submit_time", &submit_time);
        /* Without an owner (a journal older than owners), root's, as job_new() makes it. */
        (void) journal_get_u64(o, "owner_uid", &uid);
        (void) journal_get_u64(o, "owner_gid", &gid);
        if (uid >= UINT32_MAX || gid >= UINT32_MAX)
                return -EBADMSG;

        r = job_new(id, app, workdir, files, n, (unsigned) nreduce, timeout, &j);
        if (r < 0)
                return r;
        r = job_extras_from_json(o, j, dropped);
        if (r < 0) {
                job_free(j);
                return r;
        }
        if (max_failures > 0 && max_failures <= UINT32_MAX)
                j->max_failures = (unsigned) max_failures;
        j->submit_time = submit_time;
        j->owner_uid = (uid_t) uid;
        j->owner_gid = (gid_t) gid;
        *ret = j;
        *ret_files_dropped = dropped;
        return 0;
}

void journal_task_file_name(const Task *t, char buf[static 256]) {
        if (t->kind == TASK_MAP)
                mr_intermediate_name(buf, t->index);
        else
                mr_output_name(buf, t->index);
}

static json_object *file_stat_to_json(const struct stat *st) {
        _cleanup_json_ json_object *a = json_object_new_array_ext(3);

        if (!a || json_array_append(a, json_object_new_uint64((uint64_t) st->st_size)) < 0 ||
            json_array_append(a, json_object_new_uint64((uint64_t) st->st_mtim.tv_sec * 1000000000ULL +
                                                        (uint64_t) st->st_mtim.tv_nsec)) < 0 ||
            json_array_append(a, json_object_new_uint64((uint64_t) st->st_ino)) < 0)
                return NULL;
        return TAKE_PTR(a);
}

static bool file_stat_matches(const struct stat *st, json_object *a) {
        json_object *size, *mtime, *ino;

        if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) != 3)
                return false;
        size = json_object_array_get_idx(a, 0);
        mtime = json_object_array_get_idx(a, 1);
        ino = json_object_array_get_idx(a, 2);
        return json_object_get_uint64(size) == (uint64_t) st->st_size &&
               json_object_get_uint64(mtime) ==
                       (uint64_t) st->st_mtim.tv_sec * 1000000000ULL + (uint64_t) st->st_mtim.tv_nsec &&
               json_object_get_uint64(ino) == (uint64_t) st->st_ino;
}

int journal_commit_to_json(const Job *j, const Task *t, unsigned attempt, const JobCounters *counters,
                           json_object **ret) {
        _cleanup_json_ json_object *o = NULL, *files = NULL;
        JobCounters own = j->counters;
        _cleanup_close_ int dfd = open(j->workdir, O_DIRECTORY | O_CLOEXEC);
        char name[MR_NAME_MAX];
        struct stat st;

        files = json_object_new_array_ext(1);
        if (!files)
                return -ENOMEM;
        /* A file the coordinator cannot see (a directory private to the job's owner) is
         * recorded as unknown: the task runs again after a restart. */
        journal_task_file_name(t, name);
        if (dfd < 0 || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (json_object_array_add(files, NULL) < 0)
                        return -ENOMEM;
        } else if (json_array_append(files, file_stat_to_json(&st)) < 0)
                return -ENOMEM;
        if (json_build_object(&o,
                              "job", json_object_new_string(j->id),
                              "kind", json_object_new_string(task_kind_to_string(t->kind)),
                              "task", json_object_new_uint64(t->index),
                              "attempt", json_object_new_uint64(attempt),
                              "files", TAKE_PTR(files),
                              NULL) < 0)
                return -ENOMEM;
        /* The job's own counters as they are once this attempt is committed. */
        own.v[COUNTER_BACKUP_ATTEMPTS_WON] += attempt == t->backup_attempt;
        if (json_object_add(o, "job_counters", job_counters_to_json(&own, _COUNTER_WORKER_MAX, _COUNTER_MAX)) < 0)
                return -ENOMEM;
        if (counters && json_object_add(o, "counters", job_counters_to_json(counters, 0, _COUNTER_WORKER_MAX)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

int journal_commit_add_counters(json_object *commit, JobCounters *c) {
        JobCounters own = {};
        json_object *o;

        if (!json_object_object_get_ex(commit, "counters", &o))
                return 0;
        if (job_counters_from_json(o, 0, _COUNTER_WORKER_MAX, &own) < 0)
                return -EBADMSG;
        job_counters_add_worker(c, &own);
        return 0;
}

int journal_commit_apply_counters(Job *j, json_object *commit, bool verified) {
        JobCounters c = {};
        json_object *o;

        if (verified && journal_commit_add_counters(commit, &j->counters) < 0)
                return -EBADMSG;
        if (json_object_object_get_ex(commit, "job_counters", &o)) {
                c = (JobCounters) {};
                if (job_counters_from_json(o, _COUNTER_WORKER_MAX, _COUNTER_MAX, &c) < 0)
                        return -EBADMSG;
                for (JobCounter i = _COUNTER_WORKER_MAX; i < _COUNTER_MAX; i++)
                        j->counters.v[i] = MAX(j->counters.v[i], c.v[i]);
        }
        return 0;
}

int journal_commit_verify(const Job *j, const Task *t, json_object *commit, char **ret_file) {
        _cleanup_close_ int dfd = open(j->workdir, O_DIRECTORY | O_CLOEXEC);
        char name[MR_NAME_MAX];
        json_object *files;
        struct stat st;

        if (!json_object_object_get_ex(commit, "files", &files) || !json_object_is_type(files, json_type_array))
                return -EBADMSG;
        journal_task_file_name(t, name);
        /* A map committed by an older version lists its nreduce files mr-M-R: it has no
         * mr-M and runs again (its old files are left as they are). */
        if (json_object_array_length(files) != 1 || dfd < 0 || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !file_stat_matches(&st, json_object_array_get_idx(files, 0))) {
                *ret_file = strdup(name);
                return -ESTALE;
        }
        return 0;
}

static json_object *end_to_json(const Job *j, JobState state, uint64_t time, unsigned map_done,
                                unsigned reduce_done, const JobCounters *counters) {
        _cleanup_json_ json_object *o = NULL;

        if (json_build_object(&o,
                              "job", json_object_new_string(j->id),
                              "state", json_object_new_string(job_state_to_string(state)),
                              "time", json_object_new_uint64(time),
                              "map_done", json_object_new_uint64(map_done),
                              "reduce_done", json_object_new_uint64(reduce_done),
                              NULL) < 0)
                return NULL;
        if (j->error && json_object_add(o, "error", json_object_new_string(j->error)) < 0)
                return NULL;
        if (json_object_add(o, "counters", job_counters_to_json(counters, 0, _COUNTER_MAX)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

json_object *journal_end_to_json(const Job *j) {
        return end_to_json(j, j->state, j->finish_time, j->done[TASK_MAP], j->done[TASK_REDUCE], &j->counters);
}

json_object *journal_end_done_to_json(const Job *j, uint64_t time, const JobCounters *counters) {
        return end_to_json(j, JOB_DONE, time, j->nmap, j->nreduce, counters);
}

static int job_state_from_string(const char *s) {
        for (JobState st = JOB_MAPPING; st <= JOB_CANCELLED; st++)
                if (streq(s, job_state_to_string(st)))
                        return st;
        return -EBADMSG;
}

int journal_end_apply(Job *j, json_object *o) {
        const char *state, *error = NULL;
        uint64_t time = 0, map_done = 0, reduce_done = 0;
        json_object *v;
        int s;

        if (journal_get_string(o, "state", &state) < 0)
                return -EBADMSG;
        s = job_state_from_string(state);
        if (s < JOB_DONE)
                return -EBADMSG;
        (void) journal_get_u64(o, "time", &time);
        (void) journal_get_u64(o, "map_done", &map_done);
        (void) journal_get_u64(o, "reduce_done", &reduce_done);
        (void) journal_get_string(o, "error", &error);
        /* Without them (a journal older than counters) the job's stay as they are. */
        if (json_object_object_get_ex(o, "counters", &v) && job_counters_from_json(v, 0, _COUNTER_MAX, &j->counters) < 0)
                return -EBADMSG;

        j->state = s;
        j->finish_time = time;
        j->done[TASK_MAP] = (unsigned) MIN(map_done, (uint64_t) j->nmap);
        j->done[TASK_REDUCE] = (unsigned) MIN(reduce_done, (uint64_t) j->nreduce);
        free(j->error);
        j->error = error ? strdup(error) : NULL;
        if (error && !j->error)
                return -ENOMEM;
        return 0;
}
