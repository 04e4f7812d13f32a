/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"

static int input_buffer_reserve(InputBuffer *b, size_t need) {
        size_t n;
        char *p;

        if (need <= b->allocated)
                return 0;
        n = b->allocated > 0 ? b->allocated : 64 * 1024;
        while (n < need) {
                if (n > SIZE_MAX / 2)
                        return -ENOMEM;
                n *= 2;
        }
        p = realloc(b->data, n);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->allocated = n;
        return 0;
}

int input_buffer_read(InputBuffer *b, const char *filename, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        size_t size = 0;
        int r;

        fd = open(filename, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        r = input_buffer_reserve(b, S_ISREG(st.st_mode) ? (size_t) st.st_size + 1 : 0);
        if (r < 0)
                return r;

        for (;;) {
                ssize_t l;

                r = input_buffer_reserve(b, size + 2); /* room to read one more byte and the NUL */
                if (r < 0)
                        return r;
                l = read(fd, b->data + size, b->allocated - size - 1);
                if (l < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (l == 0)
                        break;
                size += (size_t) l;
        }

        b->data[size] = '\0';
        *ret_size = size;
        return 0;
}

void input_buffer_done(InputBuffer *b) {
        free(b->data);
        *b = (InputBuffer) {};
}

int output_line(FILE *f, const char *key, size_t key_len, const char *value, size_t value_len) {
        if ((key_len > 0 && fwrite(key, 1, key_len, f) != key_len) || putc(' ', f) == EOF ||
            (value_len > 0 && fwrite(value, 1, value_len, f) != value_len) || putc('\n', f) == EOF)
                return errno > 0 ? -errno : -EIO;
        return 0;
}

static int open_temporary(const char *output, char **ret_path, FILE **ret_file) {
        _cleanup_free_ char *path = NULL;
        const char *slash = strrchr(output, '/');
        FILE *f;
        mode_t mask;
        int fd;

        /* Beside output, so rename() stays within one file system; hidden and not named
         * mr-out*, so nothing reading outputs picks up a partial file. */
        if (asprintf(&path, "%.*s.mr-seq-XXXXXX", slash ? (int) (slash - output + 1) : 0, output) < 0)
                return -ENOMEM;
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0)
                return -errno;

        /* mkostemp() creates 0600; the output should get the usual 0666 & ~umask. */
        mask = umask(0);
        umask(mask);
        if (fchmod(fd, 0666 & ~mask) < 0 || !(f = fdopen(fd, "w"))) {
                int r = -errno;
                (void) unlink(path);
                close(fd);
                return r;
        }
        (void) setvbuf(f, NULL, _IOFBF, 1024 * 1024);

        *ret_path = TAKE_PTR(path);
        *ret_file = f;
        return 0;
}

int output_write_atomic(const char *output, int (*write)(void *userdata, FILE *f), void *userdata) {
        _cleanup_free_ char *tmp = NULL;
        FILE *f = NULL;
        int r;

        r = open_temporary(output, &tmp, &f);
        if (r < 0)
                return log_error_errno(r, "Failed to create a temporary file for %s: %m", output);

        r = write(userdata, f);
        if (r >= 0 && fflush(f) == EOF)
                r = log_error_errno(errno, "Failed to write %s: %m", tmp);
        if (fclose(f) == EOF && r >= 0)
                r = log_error_errno(errno, "Failed to write %s: %m", tmp);
        if (r >= 0 && rename(tmp, output) < 0)
                r = log_error_errno(errno, "Failed to rename %s to %s: %m", tmp, output);
        if (r < 0)
                (void) unlink(tmp);
        return r;
}
