/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io-util.h"
#include "macro.h"
#include "split.h"

/* Reads in chunks of at most this size, so a file that grows while it is read costs at
 * most the bound and a chunk. */
#define SPLIT_CHUNK (1024U * 1024U)
#define SPLIT_LINE_CHUNK (16U * 1024U)

/* The position of the first '\n' at or after from: 1 and *ret, 0 if there is none. */
static int find_newline(int fd, uint64_t from, uint64_t *ret) {
        _cleanup_free_ char *buf = malloc(64 * 1024);

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = pread_retry(fd, buf, 64 * 1024, from);
                const char *nl;

                if (k < 0)
                        return (int) k;
                if (k == 0)
                        return 0;
                nl = memchr(buf, '\n', (size_t) k);
                if (nl) {
                        *ret = from + (uint64_t) (nl - buf);
                        return 1;
                }
                from += (uint64_t) k;
        }
}

int split_read(int fd, uint64_t offset, uint64_t length, uint64_t max_size, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        uint64_t start = 0, want = 0, file_size;
        size_t size = 0, allocated, scanned = 0;
        struct stat st;
        bool done = false;
        int r;

        if (fstat(fd, &st) < 0)
                return -errno;
        file_size = (uint64_t) st.st_size;
        /* The first split has at least its range, up to the end of the file. */
        if (offset == 0 && MIN(file_size, length) > max_size)
                return -EFBIG;

        /* The first line that starts in the range: the one after the first newline at or
         * after offset - 1. */
        if (length == 0)
                done = true;
        else if (offset > 0) {
                r = find_newline(fd, offset - 1, &start);
                if (r < 0)
                        return r;
                if (r == 0 || ++start - offset >= length)
                        done = true; /* no line starts in the range */
        }
        if (!done)
                want = length - (start - offset); /* bytes from start to the range's end */

        /* Room for what the file's size promises, then a chunk more at a time. */
        allocated = (size_t) MIN(MIN(file_size - MIN(file_size, start), want), max_size) + 1;
        buf = malloc(allocated);
        if (!buf)
                return -ENOMEM;

        /* The range from start, then on to the first newline at or after its last byte. */
        while (!done) {
                ssize_t k;

                /* Past the range, only its last line is left: lines are short, mostly. */
                size_t chunk = size >= want ? SPLIT_LINE_CHUNK : SPLIT_CHUNK;

                if (size + 1 == allocated) {
                        char *p = realloc(buf, allocated + chunk);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        allocated += chunk;
                }
                k = pread_retry(fd, buf + size, MIN(allocated - 1 - size, chunk), start + size);
                if (k < 0)
                        return (int) k;
                if (k == 0)
                        break;
                size += (size_t) k;

                if (size >= want) {
                        /* Past the range's last byte: look for the end of its line. */
                        size_t from = (size_t) MAX((uint64_t) scanned, want - 1);
                        const char *nl = memchr(buf + from, '\n', size - from);

                        if (nl) {
                                size = (size_t) (nl - buf) + 1;
                                done = true;
                        }
                        scanned = size;
                }
                if (size > max_size)
                        return -EFBIG;
        }

        buf[size] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

/* Sixteen bytes compared at once (GCC's vector extension: SSE2 on x86-64, NEON on arm64):
 * a pass over every byte of every input only for a counter must cost little beside the
 * map. Eight bytes at a time in a word cost the job 4 % of its instructions. */
typedef uint8_t Bytes16 __attribute__((vector_size(16)));

uint64_t split_count_lines(const char *text, size_t size) {
        uint64_t n = 0;
        size_t i = 0;

        while (size - i >= 16) {
                /* Per byte lane, its '\n's seen: at most 255 before they are added up. */
                Bytes16 lanes = {};
                size_t end = i + 16 * MIN((size - i) / 16, (size_t) 255);

                for (; i < end; i += 16) {
                        Bytes16 v;

                        memcpy(&v, text + i, sizeof(v));
                        lanes -= (Bytes16) (v == '\n'); /* -1 in each lane that matched */
                }
                for (unsigned b = 0; b < sizeof(lanes); b++)
                        n += lanes[b];
        }
        for (; i < size; i++)
                n += text[i] == '\n';
        return n + (size > 0 && text[size - 1] != '\n');
}
