/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>

#include "log.h"
#include "macro.h"
#include "state-dir.h"
#include "strv.h"
#include "time-util.h"

#define LOCK_FILE "lock"
#define LOCK_WAIT_USEC (10 * USEC_PER_SEC)

struct StateDir {
        char *path;
        int fd;
        int lock_fd;
};

StateDir *state_dir_free(StateDir *d) {
        if (!d)
                return NULL;
        /* Closing the last descriptor of the open file description drops the lock. */
        if (d->lock_fd >= 0)
                close(d->lock_fd);
        if (d->fd >= 0)
                close(d->fd);
        free(d->path);
        return mfree(d);
}

static pid_t lock_holder_read(int fd) {
        char buf[32] = {};
        ssize_t n;
        long pid;
        char *end;

        n = pread(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
                return 0;
        errno = 0;
        pid = strtol(buf, &end, 10);
        if (errno != 0 || end == buf || pid <= 0 || pid > INT32_MAX)
                return 0;
        return (pid_t) pid;
}

static int lock_take(int dir_fd, const char *path, int *ret_fd, pid_t *ret_holder) {
        _cleanup_close_ int fd = -EBADF;
        struct flock fl = {
                .l_type = F_WRLCK,
                .l_whence = SEEK_SET,
        };
        char buf[32];
        int n;

        fd = openat(dir_fd, LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return log_error_errno(errno, "Failed to open %s/" LOCK_FILE ": %m", path);

        if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
                pid_t holder;

                if (errno != EAGAIN && errno != EACCES)
                        return log_error_errno(errno, "Failed to lock %s/" LOCK_FILE ": %m", path);

                holder = lock_holder_read(fd);
                if (ret_holder)
                        *ret_holder = holder;
                if (holder > 0)
                        log_error("State directory %s is in use by another process (pid %d).", path,
                                  (int) holder);
                else
                        log_error("State directory %s is in use by another process.", path);
                return -EBUSY;
        }

        /* The pid is for the message above only: OFD locks do not report their owner. */
        n = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t) n, 0) != n)
                return log_error_errno(errno ? errno : EIO, "Failed to write %s/" LOCK_FILE ": %m", path);

        *ret_fd = TAKE_FD(fd);
        return 0;
}

int state_dir_open(const char *path, StateDir **ret, pid_t *ret_holder) {
        _cleanup_(state_dir_freep) StateDir *d = NULL;
        int r;

        assert(path);
        assert(ret);

        if (ret_holder)
                *ret_holder = 0;

        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Failed to create state directory %s: %m", path);

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->fd = d->lock_fd = -EBADF;
        d->path = strdup(path);
        if (!d->path)
                return -ENOMEM;

        /* The directory itself may be a symlink (StateDirectory= with DynamicUser=). */
        d->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d->fd < 0)
                return log_error_errno(errno, "Failed to open state directory %s: %m", path);

        r = lock_take(d->fd, path, &d->lock_fd, ret_holder);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(d);
        return 0;
}

int state_dir_fd(const StateDir *d) {
        return d->fd;
}

const char *state_dir_path(const StateDir *d) {
        return d->path;
}

int state_dir_fsync(int dir_fd) {
        if (fsync(dir_fd) < 0)
                return -errno;
        return 0;
}

char *state_tmp_name(const char *name) {
        char *s;

        if (asprintf(&s, ".%s.tmp", name) < 0)
                return NULL;
        return s;
}

int state_file_create(int dir_fd, const char *tmp_name) {
        int fd;

        fd = openat(dir_fd, tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        return fd;
}

int state_file_commit(int dir_fd, const char *tmp_name, const char *name, bool sync_dir) {
        if (renameat(dir_fd, tmp_name, dir_fd, name) < 0)
                return -errno;
        return sync_dir ? state_dir_fsync(dir_fd) : 0;
}

static bool has_affixes(const char *s, const char *prefix, const char *suffix) {
        size_t n = strlen(s), np = strlen(prefix), ns = strlen(suffix);

        return n >= np + ns && strncmp(s, prefix, np) == 0 && streq(s + n - ns, suffix);
}

static int strv_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int state_dir_list(int dir_fd, const char *prefix, const char *suffix, char ***ret) {
        _cleanup_strv_free_ char **names = NULL;
        size_t n = 0, allocated = 0;
        DIR *dir;
        int fd;

        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        dir = fdopendir(fd);
        if (!dir) {
                int r = -errno;
                close(fd);
                return r;
        }

        for (;;) {
                struct dirent *de;

                errno = 0;
                de = readdir(dir);
                if (!de) {
                        if (errno != 0) {
                                int r = -errno;
                                closedir(dir);
                                return r;
                        }
                        break;
                }
                if (!has_affixes(de->d_name, prefix, suffix))
                        continue;

                if (n + 2 > allocated) {
                        size_t a = MAX(allocated * 2, (size_t) 16);
                        char **p = realloc(names, a * sizeof(char *));
                        if (!p) {
                                closedir(dir);
                                return -ENOMEM;
                        }
                        names = p;
                        allocated = a;
                }
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        closedir(dir);
                        return -ENOMEM;
                }
                names[++n] = NULL;
        }
        closedir(dir);

        if (!names) {
                names = calloc(1, sizeof(char *));
                if (!names)
                        return -ENOMEM;
        }
        qsort(names, n, sizeof(char *), strv_cmp);
        *ret = TAKE_PTR(names);
        return 0;
}

int state_dir_remove_tmp(int dir_fd) {
        return state_dir_remove_tmp_prefix(dir_fd, "");
}

int state_dir_remove_tmp_prefix(int dir_fd, const char *prefix) {
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ char *tmp_prefix = NULL;
        int r, n = 0;

        if (asprintf(&tmp_prefix, ".%s", prefix) < 0)
                return -ENOMEM;
        r = state_dir_list(dir_fd, tmp_prefix, ".tmp", &names);
        if (r < 0)
                return r;
        for (char **s = names; *s; s++) {
                if (unlinkat(dir_fd, *s, 0) < 0 && errno != ENOENT)
                        return -errno;
                log_debug("Removed leftover temporary file %s.", *s);
                n++;
        }
        return n;
}

void state_dir_wait_orphaned_lock(const char *path) {
        _cleanup_free_ char *lock = NULL;
        _cleanup_close_ int fd = -EBADF;
        uint64_t deadline = usec_add(now_usec(), LOCK_WAIT_USEC);
        bool logged = false;

        if (asprintf(&lock, "%s/" LOCK_FILE, path) < 0)
                return;
        fd = open(lock, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return;

        while (now_usec() < deadline) {
                struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
                pid_t pid;

                if (fcntl(fd, F_OFD_GETLK, &fl) < 0 || fl.l_type == F_UNLCK)
                        return;
                pid = lock_holder_read(fd);
                if (pid <= 0 || kill(pid, 0) >= 0 || errno != ESRCH)
                        return; /* a live owner: state_dir_open() refuses it */
                if (!logged) {
                        log_info("Waiting for the snapshot writer of the previous owner of %s (pid %ld) to exit.",
                                 path, (long) pid);
                        logged = true;
                }
                (void) poll(NULL, 0, 10);
        }
}
