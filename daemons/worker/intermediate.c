/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/stat.h>

#include "intermediate.h"
#include "io-util.h"
#include "macro.h"
#include "record.h"
#include "unaligned.h"

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

/* The crc of entry p: of le32 p | le64 end. */
static uint32_t entry_crc(unsigned p, uint64_t end) {
        uint8_t b[12];

        unaligned_write_le32(b, p);
        unaligned_write_le64(b + 4, end);
        return record_crc32(0, b, sizeof(b));
}

void intermediate_trailer_encode(uint8_t *buf, const uint64_t *ends, unsigned nreduce) {
        size_t n = (size_t) nreduce * INTERMEDIATE_ENTRY_SIZE;

        for (unsigned p = 0; p < nreduce; p++) {
                uint8_t *e = buf + (size_t) p * INTERMEDIATE_ENTRY_SIZE;
                unaligned_write_le64(e, ends[p]);
                unaligned_write_le32(e + 8, entry_crc(p, ends[p]));
        }
        unaligned_write_le32(buf + n, nreduce);
        unaligned_write_le32(buf + n + 4, INTERMEDIATE_FORMAT_VERSION);
        unaligned_write_le32(buf + n + 8, record_crc32(0, buf + n, 8));
        memcpy(buf + n + 12, INTERMEDIATE_MAGIC, 8);
}

int intermediate_footer_parse(const uint8_t *buf, size_t size, uint64_t file_size, unsigned nreduce,
                              uint64_t *ret_index_start, const char **ret_reason) {
        const uint8_t *footer;

        assert(size <= file_size);

        if (size < INTERMEDIATE_FOOTER_SIZE) {
                *ret_reason = "too short for the index of its partitions (truncated?)";
                return -EBADMSG;
        }
        footer = buf + size - INTERMEDIATE_FOOTER_SIZE;
        if (memcmp(footer + 12, INTERMEDIATE_MAGIC, 8) != 0) {
                *ret_reason = "not an intermediate file, or truncated (no index at its end)";
                return -EBADMSG;
        }
        if (unaligned_read_le32(footer + 4) != INTERMEDIATE_FORMAT_VERSION) {
                *ret_reason = "written in another version of the intermediate format";
                return -EBADMSG;
        }
        if (unaligned_read_le32(footer + 8) != record_crc32(0, footer, 8)) {
                *ret_reason = "the checksum of its index's footer does not match";
                return -EBADMSG;
        }
        if (unaligned_read_le32(footer) != nreduce) {
                *ret_reason = "written for another number of reduce partitions than the job's";
                return -EBADMSG;
        }
        if (file_size < intermediate_trailer_size(nreduce)) {
                *ret_reason = "too short for the index of its partitions (truncated?)";
                return -EBADMSG;
        }
        *ret_index_start = file_size - intermediate_trailer_size(nreduce);
        return 0;
}

/* Entry p at e: its end, or -EBADMSG. */
static int entry_parse(const uint8_t *e, unsigned p, uint64_t *ret_end, const char **ret_reason) {
        uint64_t end = unaligned_read_le64(e);

        if (unaligned_read_le32(e + 8) != entry_crc(p, end)) {
                *ret_reason = "the checksum of its index entry of the partition does not match";
                return -EBADMSG;
        }
        *ret_end = end;
        return 0;
}

int intermediate_entries_parse(const uint8_t *entries, unsigned nreduce, unsigned partition, uint64_t index_start,
                               uint64_t *ret_offset, uint64_t *ret_length, const char **ret_reason) {
        uint64_t start = 0, end;
        int r;

        assert(partition < nreduce);

        if (partition > 0) {
                r = entry_parse(entries, partition - 1, &start, ret_reason);
                if (r < 0)
                        return r;
                entries += INTERMEDIATE_ENTRY_SIZE;
        }
        r = entry_parse(entries, partition, &end, ret_reason);
        if (r < 0)
                return r;
        if (start > end) {
                *ret_reason = "its partition offsets do not ascend";
                return -EBADMSG;
        }
        if (end > index_start) {
                *ret_reason = "its partition's range runs past the start of its index";
                return -EBADMSG;
        }
        if (partition == nreduce - 1 && end != index_start) {
                *ret_reason = "its partitions do not span the file up to its index";
                return -EBADMSG;
        }
        *ret_offset = start;
        *ret_length = end - start;
        return 0;
}

/* The first entry partition's range is read from, and how many. */
static unsigned entries_first(unsigned partition) {
        return partition > 0 ? partition - 1 : 0;
}

static size_t entries_size(unsigned partition) {
        return (partition > 0 ? 2 : 1) * (size_t) INTERMEDIATE_ENTRY_SIZE;
}

int intermediate_trailer_parse(const uint8_t *buf, size_t size, uint64_t file_size, unsigned nreduce,
                               unsigned partition, uint64_t *ret_offset, uint64_t *ret_length,
                               const char **ret_reason) {
        uint64_t index_start;
        int r;

        assert(partition < nreduce);

        r = intermediate_footer_parse(buf, size, file_size, nreduce, &index_start, ret_reason);
        if (r < 0)
                return r;
        if (size < intermediate_trailer_size(nreduce)) {
                *ret_reason = "too short for the index of its partitions (truncated?)";
                return -EBADMSG;
        }
        return intermediate_entries_parse(buf + size - intermediate_trailer_size(nreduce) +
                                                  (size_t) entries_first(partition) * INTERMEDIATE_ENTRY_SIZE,
                                          nreduce, partition, index_start, ret_offset, ret_length, ret_reason);
}

/* Sets r up over [offset, offset + length) of fd (a regular file); takes fd. */
static int group_reader_init(GroupReader *r, int fd, uint64_t offset, uint64_t length, size_t buffer_size) {
        *r = (GroupReader) { .fd = fd, .pos = offset, .limit = offset + length, .file_size = length };
        r->allocated = MAX(MIN(buffer_size, (size_t) MAX(length, (uint64_t) 1)), (size_t) 2 * VARINT_MAX);
        r->buf = malloc(r->allocated);
        if (!r->buf) {
                group_reader_close(r);
                return -ENOMEM;
        }
        (void) posix_fadvise(r->fd, (off_t) offset, (off_t) length, POSIX_FADV_SEQUENTIAL);
        return 0;
}

/* The size of a regular file, or -errno. */
static int regular_file_size(int fd, uint64_t *ret) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        *ret = (uint64_t) st.st_size;
        return 0;
}

int group_reader_open_fd(GroupReader *r, int fd, size_t buffer_size) {
        uint64_t size;
        int e = regular_file_size(fd, &size);

        if (e < 0) {
                *r = (GroupReader) { .fd = fd };
                group_reader_close(r);
                return e;
        }
        return group_reader_init(r, fd, 0, size, buffer_size);
}

/* Reads n bytes at offset in full: 0, -EBADMSG if the file ends first, or -errno. */
static int pread_all(int fd, void *buf, size_t n, uint64_t offset) {
        uint8_t *p = buf;

        while (n > 0) {
                ssize_t k = pread_retry(fd, p, n, offset);
                if (k < 0)
                        return (int) k;
                if (k == 0)
                        return -EBADMSG;
                p += k;
                n -= (size_t) k;
                offset += (uint64_t) k;
        }
        return 0;
}

/* Reads partition's range from the index of fd, of size bytes: the whole trailer in one
 * read when it is small, else the footer and then the partition's entries. *ret_read:
 * the bytes of index read. */
static int index_read(int fd, uint64_t size, unsigned nreduce, unsigned partition, uint64_t *ret_offset,
                      uint64_t *ret_length, uint64_t *ret_read, const char **ret_reason) {
        uint8_t buf[INTERMEDIATE_TRAILER_ONE_READ];
        uint64_t index_start;
        size_t n;
        int e;

        *ret_read = 0;
        if (intermediate_trailer_size(nreduce) <= sizeof(buf)) {
                n = (size_t) MIN((uint64_t) intermediate_trailer_size(nreduce), size);
                e = pread_all(fd, buf, n, size - n);
                if (e < 0)
                        return e;
                *ret_read = n;
                return intermediate_trailer_parse(buf, n, size, nreduce, partition, ret_offset, ret_length,
                                                  ret_reason);
        }

        n = (size_t) MIN((uint64_t) INTERMEDIATE_FOOTER_SIZE, size);
        e = pread_all(fd, buf, n, size - n);
        if (e < 0)
                return e;
        *ret_read = n;
        e = intermediate_footer_parse(buf, n, size, nreduce, &index_start, ret_reason);
        if (e < 0)
                return e;
        n = entries_size(partition);
        e = pread_all(fd, buf, n, index_start + (uint64_t) entries_first(partition) * INTERMEDIATE_ENTRY_SIZE);
        if (e < 0)
                return e;
        *ret_read += n;
        return intermediate_entries_parse(buf, nreduce, partition, index_start, ret_offset, ret_length, ret_reason);
}

int group_reader_open_partition(GroupReader *r, int dir_fd, const char *path, unsigned nreduce, unsigned partition,
                                size_t buffer_size, const char **ret_reason) {
        _cleanup_close_ int fd = openat(dir_fd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        uint64_t size = 0, offset, length, index_bytes;
        int e;

        *r = (GroupReader) { .fd = -EBADF };
        *ret_reason = NULL;
        if (fd < 0)
                return -errno;
        e = regular_file_size(fd, &size);
        if (e < 0)
                return e;
        e = index_read(fd, size, nreduce, partition, &offset, &length, &index_bytes, ret_reason);
        if (e < 0)
                return e;
        e = group_reader_init(r, TAKE_FD(fd), offset, length, buffer_size);
        if (e < 0)
                return e;
        r->index_read = index_bytes;
        return 0;
}

void group_reader_close(GroupReader *r) {
        closep(&r->fd);
        r->fd = -EBADF;
        r->buf = mfree(r->buf);
}

/* Makes at least n bytes available from start: 1, or 0 if the range ends first. */
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
                size_t want = (size_t) MIN((uint64_t) (r->allocated - r->end), r->limit - r->pos);
                ssize_t k = want > 0 ? pread_retry(r->fd, r->buf + r->end, want, r->pos) : 0;
                if (k < 0)
                        return (int) k;
                /* The end of the range, or of a file cut short under the reader. */
                if (k == 0 || r->pos + (uint64_t) k == r->limit)
                        r->eof = true;
                r->end += (size_t) k;
                r->pos += (uint64_t) k;
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
