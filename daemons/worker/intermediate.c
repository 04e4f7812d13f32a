/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>

#include "intermediate.h"
#include "macro.h"

#define READER_CHUNK (64U * 1024U)

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
                v |= (uint64_t) (p[i] & 0x7f) << (7 * i);
                if (!(p[i] & 0x80)) {
                        *ret = v;
                        return (int) i + 1;
                }
        }
        return -EBADMSG;
}

int record_reader_open(RecordReader *r, int dir_fd, const char *path) {
        *r = (RecordReader) { .fd = -EBADF };
        r->fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0)
                return -errno;
        r->buf = malloc(READER_CHUNK);
        if (!r->buf) {
                record_reader_close(r);
                return -ENOMEM;
        }
        r->allocated = READER_CHUNK;
        (void) posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        return 0;
}

void record_reader_close(RecordReader *r) {
        closep(&r->fd);
        r->fd = -EBADF;
        free(r->buf);
        r->buf = NULL;
}

/* Makes at least n bytes available from start; 0 if the file ends first. */
static int reader_fill(RecordReader *r, size_t n) {
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
                        r->eof = 1;
                r->end += (size_t) k;
        }
        return 1;
}

int record_reader_next(RecordReader *r) {
        uint64_t klen, vlen;
        int a, b, k;

        /* Two varints need at most 2 × VARINT_MAX bytes; near the end there may be fewer. */
        k = reader_fill(r, 2 * VARINT_MAX);
        if (k < 0)
                return k;
        if (r->start == r->end)
                return 0;

        const uint8_t *p = r->buf + r->start, *end = r->buf + r->end;
        a = varint_decode(p, end, &klen);
        if (a <= 0)
                return -EBADMSG;
        b = varint_decode(p + a, end, &vlen);
        if (b <= 0)
                return -EBADMSG;
        if (klen > SIZE_MAX / 4 || vlen > SIZE_MAX / 4)
                return -EBADMSG;

        size_t total = (size_t) a + (size_t) b + klen + vlen;
        k = reader_fill(r, total);
        if (k < 0)
                return k;
        if (k == 0)
                return -EBADMSG; /* truncated */

        p = r->buf + r->start;
        r->key = (const char *) p + a + b;
        r->key_len = klen;
        r->value = r->key + klen;
        r->value_len = vlen;
        r->start += total;
        return 1;
}
