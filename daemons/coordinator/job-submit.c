/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
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

/* Checks what a client asked for: 0, or -EINVAL and why in *ret_reason. */
static int validate_request(JobSubmitter *s, const char *app, char *const *files, unsigned n_files,
                            unsigned nreduce, char **ret_reason) {
        if (!app_name_valid(app))
                return asprintf(ret_reason, "invalid app name '%s'", app) < 0 ? -ENOMEM : -EINVAL;
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

int job_submit(JobSubmitter *s, const JobOwner *owner, const char *app, char *const *files, unsigned n_files,
               unsigned nreduce, const char *workdir, uint64_t timeout, Job **ret, char **ret_reason) {
        _cleanup_free_ char *dir = NULL, *id = NULL;
        unsigned id_number = 0;
        Job *job;
        int r;

        *ret_reason = NULL;
        r = validate_request(s, app, files, n_files, nreduce, ret_reason);
        if (r < 0)
                return r;
        r = job_dir(s, owner, workdir, &id_number, &dir, ret_reason);
        if (r < 0)
                return r;
        if (asprintf(&id, "%u", id_number) < 0)
                return -ENOMEM;

        r = job_new(id, app, dir, files, n_files, nreduce, timeout, &job);
        if (r < 0)
                return r;
        job->owner_uid = owner->uid;
        job->owner_gid = owner->gid;
        r = scheduler_add_job(s->scheduler, job);
        if (r < 0) {
                job_free(job);
                return r;
        }
        *ret = job;
        return 0;
}
