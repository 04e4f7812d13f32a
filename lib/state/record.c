/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#if HAVE_ISAL
#include <isa-l/crc.h>
#else
#include <zlib.h>
#endif

#include "macro.h"
#include "record.h"
#include "unaligned.h"

/* CRC-32 (IEEE, reflected, as zlib's crc32()) of size bytes, continuing from crc (0 to
 * start). ISA-L folds 64 bytes at a time with carry-less multiplication where the CPU has
 * it: a record of 150 bytes costs about a tenth of zlib's table-driven code. */
uint32_t record_crc32(uint32_t crc, const void *p, size_t size) {
#if HAVE_ISAL
        return crc32_gzip_refl(crc, p, size);
#else
        return (uint32_t) crc32_z(crc, p, size);
#endif
}

/* The crc of a header whose crc field (4 bytes at crc_offset) counts as zero, and then of
 * the payload. */
static uint32_t crc_compute(const uint8_t *header, size_t header_size, size_t crc_offset, const void *payload,
                            size_t size) {
        uint8_t h[MAX(RECORD_FILE_HEADER_SIZE, RECORD_HEADER_SIZE)];
        uint32_t crc;

        assert(header_size <= sizeof(h));
        memcpy(h, header, header_size);
        memset(h + crc_offset, 0, 4);
        crc = record_crc32(0, h, header_size);
        if (size > 0)
                crc = record_crc32(crc, payload, size);
        return crc;
}

void record_file_header_encode(uint8_t buf[RECORD_FILE_HEADER_SIZE], const char magic[8], uint64_t position) {
        memcpy(buf, magic, 8);
        unaligned_write_le32(buf + 8, RECORD_FORMAT_VERSION);
        unaligned_write_le32(buf + 12, 0);
        unaligned_write_le64(buf + 16, position);
        unaligned_write_le32(buf + 12, crc_compute(buf, RECORD_FILE_HEADER_SIZE, 12, NULL, 0));
}

int record_file_header_parse(const uint8_t *buf, size_t size, const char magic[8], uint64_t *ret_position) {
        if (size < RECORD_FILE_HEADER_SIZE || memcmp(buf, magic, 8) != 0)
                return -EBADMSG;
        if (unaligned_read_le32(buf + 12) != crc_compute(buf, RECORD_FILE_HEADER_SIZE, 12, NULL, 0))
                return -EBADMSG;
        if (unaligned_read_le32(buf + 8) < RECORD_FORMAT_VERSION_MIN || unaligned_read_le32(buf + 8) > RECORD_FORMAT_VERSION)
                return -EPROTONOSUPPORT;
        if (ret_position)
                *ret_position = unaligned_read_le64(buf + 16);
        return 0;
}

void record_header_encode(uint8_t buf[RECORD_HEADER_SIZE], uint64_t seqnum, uint32_t type, const void *payload,
                          uint32_t size) {
        assert(size <= RECORD_PAYLOAD_MAX);

        unaligned_write_le32(buf, size);
        unaligned_write_le32(buf + 4, 0);
        unaligned_write_le32(buf + 8, type);
        unaligned_write_le32(buf + 12, 0);
        unaligned_write_le64(buf + 16, seqnum);
        unaligned_write_le32(buf + 4, crc_compute(buf, RECORD_HEADER_SIZE, 4, payload, size));
}

void record_seal(uint8_t *record, uint64_t seqnum, uint32_t type, uint32_t size) {
        assert(size <= RECORD_PAYLOAD_MAX);

        unaligned_write_le32(record, size);
        unaligned_write_le32(record + 4, 0);
        unaligned_write_le32(record + 8, type);
        unaligned_write_le32(record + 12, 0);
        unaligned_write_le64(record + 16, seqnum);
        unaligned_write_le32(record + 4, record_crc32(0, record, RECORD_HEADER_SIZE + (size_t) size));
}

int64_t record_parse(const uint8_t *p, size_t avail, uint64_t min_seqnum, Record *ret) {
        uint32_t size;

        if (avail < RECORD_HEADER_SIZE)
                return -EBADMSG;
        size = unaligned_read_le32(p);
        if (size > RECORD_PAYLOAD_MAX || size > avail - RECORD_HEADER_SIZE)
                return -EBADMSG;
        /* Cheap tests first: the search for valid records after damage calls this at every
         * byte offset. */
        if (unaligned_read_le32(p + 12) != 0 || unaligned_read_le64(p + 16) < min_seqnum)
                return -EBADMSG;
        if (unaligned_read_le32(p + 4) != crc_compute(p, RECORD_HEADER_SIZE, 4, p + RECORD_HEADER_SIZE, size))
                return -EBADMSG;

        if (ret)
                *ret = (Record) {
                        .seqnum = unaligned_read_le64(p + 16),
                        .type = unaligned_read_le32(p + 8),
                        .size = size,
                        .payload = p + RECORD_HEADER_SIZE,
                };
        return (int64_t) RECORD_HEADER_SIZE + size;
}

int64_t record_parse_checked(const uint8_t *p, size_t avail, Record *ret) {
        uint32_t size;

        if (avail < RECORD_HEADER_SIZE)
                return -EBADMSG;
        size = unaligned_read_le32(p);
        if (size > RECORD_PAYLOAD_MAX || size > avail - RECORD_HEADER_SIZE)
                return -EBADMSG;
        *ret = (Record) {
                .seqnum = unaligned_read_le64(p + 16),
                .type = unaligned_read_le32(p + 8),
                .size = size,
                .payload = p + RECORD_HEADER_SIZE,
        };
        return (int64_t) RECORD_HEADER_SIZE + size;
}

int mapped_file_open(int dir_fd, const char *name, MappedFile *ret) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        void *p;

        fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;

        if (st.st_size == 0) {
                *ret = (MappedFile) {};
                return 0;
        }
        p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        *ret = (MappedFile) { .data = p, .size = (size_t) st.st_size };
        return 0;
}

void mapped_file_close(MappedFile *m) {
        if (m->data)
                (void) munmap((void *) m->data, m->size);
        *m = (MappedFile) {};
}
