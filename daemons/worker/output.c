/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>

#include "macro.h"
#include "output.h"

/* Large enough to make writes cheap, small enough for one per partition at once. */
#define OUTPUT_BUFFER (128U * 1024U)

/* A new file: never one that exists, never through a symbolic link. Whatever has the
 * name (a leftover of a crashed attempt, or a link someone planted) is removed first:
 * unlinkat() removes the name, not what a link points to. */
static int create_new(int dir_fd, const char *name, int mode) {
        int fd = openat(dir_fd, name, mode | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);

        if (fd >= 0 || errno != EEXIST)
                return fd < 0 ? -errno : fd;
        if (unlinkat(dir_fd, name, 0) < 0)
                return -errno;
        fd = openat(dir_fd, name, mode | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        return fd < 0 ? -errno : fd;
}

static int output_file_create(OutputFile *f, int dir_fd, const char *name, int mode) {
        *f = (OutputFile) { .fd = -EBADF };
        f->fd = create_new(dir_fd, name, mode);
        if (f->fd < 0)
                return f->fd;
        f->buf = malloc(OUTPUT_BUFFER);
        if (!f->buf) {
                closep(&f->fd);
                return -ENOMEM;
        }
        f->allocated = OUTPUT_BUFFER;
        return 0;
}

int output_file_open(OutputFile *f, int dir_fd, const char *name) {
        return output_file_create(f, dir_fd, name, O_WRONLY);
}

int output_file_open_readable(OutputFile *f, int dir_fd, const char *name) {
        return output_file_create(f, dir_fd, name, O_RDWR);
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static int output_file_flush(OutputFile *f) {
        int r;

        if (f->error < 0)
                return f->error;
        r = write_all(f->fd, f->buf, f->used);
        f->used = 0;
        if (r < 0)
                f->error = r;
        return r;
}

int output_file_write(OutputFile *f, const void *data, size_t n) {
        if (f->error < 0)
                return f->error;
        f->offset += n;
        if (f->used + n > f->allocated) {
                int r = output_file_flush(f);
                if (r < 0)
                        return r;
                if (n > f->allocated) {
                        r = write_all(f->fd, data, n);
                        if (r < 0)
                                f->error = r;
                        return r;
                }
        }
        memcpy(f->buf + f->used, data, n);
        f->used += n;
        return 0;
}

int output_file_close(OutputFile *f) {
        int r = 0;

        if (f->fd >= 0) {
                r = output_file_flush(f);
                if (close(f->fd) < 0 && r >= 0)
                        r = -errno;
        }
        f->fd = -EBADF;
        free(f->buf);
        f->buf = NULL;
        return f->error < 0 ? f->error : r;
}

int output_file_detach(OutputFile *f) {
        int r = output_file_flush(f), fd = f->fd;

        f->fd = -EBADF;
        f->buf = mfree(f->buf);
        if (r < 0 || f->error < 0) {
                closep(&fd);
                return r < 0 ? r : f->error;
        }
        return fd;
}
