/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "access.h"
#include "job-submit.h"
#include "macro.h"

void job_submitter_done(JobSubmitter *s) {
        s->state_dir = mfree(s->state_dir);
}

static bool app_name_valid(const char *app) {
        /* A name looked up by the workers, or an absolute path to a plugin. */
        if (app[0] == '/')
                return strlen(app) < 4096;
        return app[0] != '\0' && app[0] != '.' && strlen(app) < 256 &&
               strspn(app, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == strlen(app);
}

JobRequest job_request_default(const JobSubmitter *s) {
        return (JobRequest) {
                .split_size = JOB_SPLIT_SIZE_DEFAULT,
                .nreduce = s->default_nreduce,
                .timeout = s->default_task_timeout,
                .backup_tasks = s->backup_tasks,
                .combine = true,
        };
}

static bool command_valid(const char *cmd) {
        return cmd[0] != '\0' && strlen(cmd) <= JOB_COMMAND_MAX;
}

/* A streaming job names its commands, a plugin job none. */
static int validate_app(const JobRequest *req, char **ret_reason) {
        bool streaming = req->mapper || req->reducer;

        if (!streaming) {
                if (!app_name_valid(req->app))
                        return asprintf(ret_reason, "invalid app name '%s'", req->app) < 0 ? -ENOMEM : -EINVAL;
                return 0;
        }
        if (!streq(req->app, "") && !streq(req->app, "streaming"))
                return asprintf(ret_reason, "a job with mapper and reducer commands has app \"\" or \"streaming\", "
                                "not '%s'", req->app) < 0 ? -ENOMEM : -EINVAL;
        if (!req->mapper || !req->reducer)
                return asprintf(ret_reason, "a streaming job needs both a mapper and a reducer command") < 0
                               ? -ENOMEM : -EINVAL;
        if (!command_valid(req->mapper) || !command_valid(req->reducer))
                return asprintf(ret_reason, "mapper and reducer must be commands of 1…%u bytes", JOB_COMMAND_MAX) < 0
                               ? -ENOMEM : -EINVAL;
        return 0;
}

/* Checks what a client asked for: 0, or -EINVAL and why in *ret_reason. */
static int validate_request(JobSubmitter *s, const JobRequest *req, char **ret_reason) {
        char *const *files = req->files;
        unsigned n_files = req->n_files, nreduce = req->nreduce;
        uint64_t nmap;
        int r;

        r = validate_app(req, ret_reason);
        if (r < 0)
                return r;
        if (n_files == 0)
                return asprintf(ret_reason, "no input files") < 0 ? -ENOMEM : -EINVAL;
        if (n_files > s->max_files)
                return asprintf(ret_reason, "too many input files: %u, at most %u per job", n_files,
                                s->max_files) < 0 ? -ENOMEM : -EINVAL;
        if (nreduce == 0 || nreduce > 100000)
                return asprintf(ret_reason, "nreduce must be 1…100000") < 0 ? -ENOMEM : -EINVAL;
        /* Workers open the files from the job's directory: relative names would depend on
         * it, so clients resolve them. The coordinator does not look at the files: the
         * submitter's workers open them with the submitter's rights, which are not the
         * service's (a file in a private home, a file only the service may read). */
        for (unsigned i = 0; i < n_files; i++)
                if (files[i][0] != '/')
                        return asprintf(ret_reason, "input file '%s' is not an absolute path", files[i]) < 0
                                       ? -ENOMEM : -EINVAL;
        /* For the same reason the files' sizes, which the splits are cut by, come from the
         * client: a stat() by the service would tell the submitter the size of a file only
         * the service may see. A client that lies about them only cuts its own job wrong. */
        nmap = job_count_splits(req->sizes, n_files, req->split_size);
        if (nmap > s->max_map_tasks)
                return asprintf(ret_reason, "too many map tasks: %" PRIu64 " splits of %" PRIu64 " bytes, at most %u "
                                "per job (a larger split_size makes fewer)", nmap, req->split_size,
                                s->max_map_tasks) < 0 ? -ENOMEM : -EINVAL;
        return 0;
}

static int make_job_dir(JobSubmitter *s, unsigned *ret_id, char **ret_path) {
        _cleanup_free_ char *jobs = NULL;

        if (!s->state_dir)
                return -ENOENT;
        if (asprintf(&jobs, "%s/jobs", s->state_dir) < 0)
                return -ENOMEM;
        if (mkdir(s->state_dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        if (mkdir(jobs, 0755) < 0 && errno != EEXIST)
                return -errno;

        /* Ids go on from earlier runs: a directory that exists belongs to an older job. */
        for (unsigned tries = 0; tries < 100000; tries++) {
                char *path;
                unsigned id = ++s->last_job_id;

                if (asprintf(&path, "%s/%u", jobs, id) < 0)
                        return -ENOMEM;
                if (mkdir(path, 0755) == 0) {
                        *ret_id = id;
                        *ret_path = path;
                        return 0;
                }
                free(path);
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

/* A given working directory: an absolute path to a directory (not a symbolic link) the
 * owner owns. 0, or -EINVAL and why in *ret_reason. One the service may not reach (in a
 * private home) is left to the owner's workers, which check it again. */
static int check_workdir(const JobOwner *owner, const char *workdir, char **ret_reason) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (workdir[0] == '/')
                fd = open(workdir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == EACCES)
                return 0;
        if (fd < 0 || fstat(fd, &st) < 0)
                return asprintf(ret_reason, "working directory '%s' is not an existing absolute directory",
                                workdir) < 0 ? -ENOMEM : -EINVAL;
        if (!access_workdir_allowed(owner->uid, st.st_uid))
                return asprintf(ret_reason, "working directory '%s' belongs to uid %u, not to the submitter (uid %u)",
                                workdir, (unsigned) st.st_uid, (unsigned) owner->uid) < 0 ? -ENOMEM : -EINVAL;
        return 0;
}

/* The job's id and working directory: the one given, which must exist, or a new one. */
static int job_dir(JobSubmitter *s, const JobOwner *owner, const char *workdir, unsigned *ret_id, char **ret_path,
                   char **ret_reason) {
        int r;

        if (workdir) {
                r = check_workdir(owner, workdir, ret_reason);
                if (r < 0)
                        return r;
                *ret_path = strdup(workdir);
                if (!*ret_path)
                        return -ENOMEM;
                *ret_id = ++s->last_job_id;
                return 0;
        }

        /* A directory made here belongs to the service: only its workers could write in it. */
        if (!access_default_workdir_allowed(owner->uid, s->scheduler->service_uid))
                return asprintf(ret_reason, "a job of uid %u needs a working directory it owns (workdir)",
                                (unsigned) owner->uid) < 0 ? -ENOMEM : -EINVAL;
        r = make_job_dir(s, ret_id, ret_path);
        if (r < 0) {
                errno = -r;
                return asprintf(ret_reason, "cannot create a working directory under %s/jobs: %m",
                                s->state_dir ?: "(no state directory)") < 0 ? -ENOMEM : -EINVAL;
        }
        return 0;
}

int job_submit(JobSubmitter *s, const JobOwner *owner, const JobRequest *req, Job **ret, char **ret_reason) {
        _cleanup_free_ char *dir = NULL, *id = NULL;
        bool streaming = req->mapper;
        unsigned id_number = 0;
        Job *job;
        int r;

        *ret_reason = NULL;
        r = validate_request(s, req, ret_reason);
        if (r < 0)
                return r;
        r = job_dir(s, owner, req->workdir, &id_number, &dir, ret_reason);
        if (r < 0)
                return r;
        if (asprintf(&id, "%u", id_number) < 0)
                return -ENOMEM;

        r = job_new(id, streaming ? "streaming" : req->app, dir, req->files, req->n_files, req->nreduce, req->timeout,
                    &job);
        if (r < 0)
                return r;
        job->owner_uid = owner->uid;
        job->owner_gid = owner->gid;
        job->backup_tasks = req->backup_tasks && s->backup_tasks;
        job->combine = req->combine;
        r = job_split(job, req->sizes, req->sizes ? req->split_size : 0, s->max_map_tasks);
        if (r >= 0 && streaming)
                r = job_set_commands(job, req->mapper, req->reducer);
        if (r >= 0)
                r = scheduler_add_job(s->scheduler, job);
        if (r < 0) {
                job_free(job);
                return r;
        }
        *ret = job;
        return 0;
}
