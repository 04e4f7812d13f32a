/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/stat.h>

#include "intermediate.h"
#include "macro.h"

uint32_t fnv1a32(const void *data, size_t n) {
        const uint8_t *p = data;
        uint32_t h = 2166136261U;

        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= 16777619U;
        }
        return h;
}

int varint_decode(const uint8_t *p, const uint8_t *end, uint64_t *ret) {
        uint64_t v = 0;

        for (size_t i = 0; i < VARINT_MAX; i++) {
                if (p + i >= end)
                        return 0;
                if (i == VARINT_MAX - 1 && p[i] > 1)
                        return -EBADMSG; /* more than 64 bits */
                v |= (uint64_t) (p[i] & 0x7f) << (7 * i);
                if (!(p[i] & 0x80)) {
                        *ret = v;
                        return (int) i + 1;
                }
        }
        return -EBADMSG;
}

int group_reader_open(GroupReader *r, int dir_fd, const char *path, size_t buffer_size) {
        int fd = openat(dir_fd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

        if (fd < 0) {
                *r = (GroupReader) { .fd = -EBADF };
                return -errno;
        }
        return group_reader_open_fd(r, fd, buffer_size);
}

int group_reader_open_fd(GroupReader *r, int fd, size_t buffer_size) {
        *r = (GroupReader) { .fd = fd };
        if (lseek(fd, 0, SEEK_SET) < 0) {
                int e = -errno;
                group_reader_close(r);
                return e;
        }
        struct stat st;
        int e = fstat(r->fd, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EINVAL : 0;
        if (e < 0) {
                group_reader_close(r);
                return e;
        }
        r->file_size = (uint64_t) st.st_size;
        r->allocated = MAX(buffer_size, (size_t) 2 * VARINT_MAX);
        r->buf = malloc(r->allocated);
        if (!r->buf) {
                group_reader_close(r);
                return -ENOMEM;
        }
        (void) posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        return 0;
}

void group_reader_close(GroupReader *r) {
        closep(&r->fd);
        r->fd = -EBADF;
        r->buf = mfree(r->buf);
}

/* Makes at least n bytes available from start: 1, or 0 if the file ends first. */
static int reader_fill(GroupReader *r, size_t n) {
        while (r->end - r->start < n) {
                if (r->eof)
                        return 0;
                if (r->start > 0) {
                        memmove(r->buf, r->buf + r->start, r->end - r->start);
                        r->end -= r->start;
                        r->start = 0;
                }
                if (n > r->allocated) {
                        uint8_t *b = realloc(r->buf, n);
                        if (!b)
                                return -ENOMEM;
                        r->buf = b;
                        r->allocated = n;
                }
                ssize_t k = read(r->fd, r->buf + r->end, r->allocated - r->end);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        r->eof = true;
                r->end += (size_t) k;
        }
        return 1;
}

/* Reads a varint, then that many bytes: the layout of a key and of a value. */
static int read_string(GroupReader *r, const char **ret, size_t *ret_len) {
        uint64_t len;
        int k, n;

        k = reader_fill(r, VARINT_MAX);
        if (k < 0)
                return k;
        n = varint_decode(r->buf + r->start, r->buf + r->end, &len);
        if (n <= 0)
                return -EBADMSG;
        if (len > r->file_size)
                return -EBADMSG;
        k = reader_fill(r, (size_t) n + len);
        if (k < 0)
                return k;
        if (k == 0)
                return -EBADMSG; /* truncated */
        *ret = (const char *) r->buf + r->start + n;
        *ret_len = len;
        r->start += (size_t) n + len;
        return 1;
}

int group_reader_next_run(GroupReader *r, const char **ret_value, size_t *ret_len) {
        uint64_t repeat;
        int k, n;

        assert(r->run_left == 0);
        if (r->values_left == 0)
                return 0;

        k = reader_fill(r, VARINT_MAX);
        if (k < 0)
                return k;
        n = varint_decode(r->buf + r->start, r->buf + r->end, &repeat);
        /* Writers count runs in 32 bits; more is a corrupt file, not work to do. */
        if (n <= 0 || repeat == 0 || repeat > r->values_left || repeat > UINT32_MAX)
                return -EBADMSG;
        r->start += (size_t) n;
        k = read_string(r, &r->run_value, &r->run_len);
        if (k < 0)
                return k;

        r->run_left = repeat - 1;
        r->values_left--;
        *ret_value = r->run_value;
        *ret_len = r->run_len;
        return 1;
}

int group_reader_take_run(GroupReader *r, uint64_t *ret_repeat, const char **ret_value, size_t *ret_len) {
        int k;

        if (r->run_left > 0) {
                /* The rest of a run a caller began reading value by value. */
                *ret_repeat = r->run_left;
                r->values_left -= r->run_left;
                r->run_left = 0;
                *ret_value = r->run_value;
                *ret_len = r->run_len;
                return 1;
        }
        k = group_reader_next_run(r, ret_value, ret_len);
        if (k <= 0)
                return k;
        *ret_repeat = r->run_left + 1;
        r->values_left -= r->run_left;
        r->run_left = 0;
        return 1;
}

int group_reader_next_key(GroupReader *r) {
        uint64_t key_len, count;
        const char *v;
        size_t len;
        int k, n, m;

        /* Skip what was not read, a run at a time. */
        while (r->values_left > 0) {
                r->values_left -= r->run_left;
                r->run_left = 0;
                if (r->values_left == 0)
                        break;
                k = group_reader_next_run(r, &v, &len);
                if (k < 0)
                        return k;
        }

        k = reader_fill(r, 1);
        if (k <= 0)
                return k; /* 0: a clean end, between groups */

        /* Get the whole header (key length, key, value count) into the buffer before
         * pointing into it: filling may move the bytes. Near the end of the file there
         * may be fewer bytes than asked for; decoding then tells whether they suffice. */
        k = reader_fill(r, VARINT_MAX);
        if (k < 0)
                return k;
        n = varint_decode(r->buf + r->start, r->buf + r->end, &key_len);
        if (n <= 0 || key_len > r->file_size)
                return -EBADMSG;
        k = reader_fill(r, (size_t) n + key_len + VARINT_MAX);
        if (k < 0)
                return k;
        if (r->end - r->start < (size_t) n + key_len)
                return -EBADMSG;
        m = varint_decode(r->buf + r->start + n + key_len, r->buf + r->end, &count);
        if (m <= 0)
                return -EBADMSG;

        r->key = (const char *) r->buf + r->start + n;
        r->key_len = key_len;
        r->values_left = count;
        r->start += (size_t) n + key_len + (size_t) m;
        return 1;
}
