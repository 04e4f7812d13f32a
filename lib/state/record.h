/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The framing shared by log segments and snapshots. A file starts with a header:
 *
 *     magic[8] | le32 version | le32 crc | le64 position
 *
 * (the crc covers the other 20 bytes; position is a segment's first sequence number or
 * the last one a snapshot covers), then records follow back to back:
 *
 *     le32 length | le32 crc | le32 type | le32 zero | le64 seqnum | payload[length]
 *
 * The crc covers the 24 header bytes (with the crc field as zero) and the payload, so a
 * damaged length or sequence number is caught like damaged data. The checksum is the
 * CRC-32 of zlib and gzip (the IEEE polynomial, reflected), computed by ISA-L's
 * crc32_gzip_refl() where the build found ISA-L (carry-less multiplication: an
 * in-memory Put and a restart checksum every record, and zlib's table-driven crc32()
 * was a seventh of a Put's instructions), else by zlib's crc32(): the same values, so
 * files do not care which wrote them. A CRC-32 catches every burst of up to 32 bits and
 * every 1 to 3 bit error in records of the sizes written here. CRC-32C would need a
 * new format version for no more than ISA-L gives. */

#define RECORD_FILE_HEADER_SIZE 24U
#define RECORD_HEADER_SIZE 24U
/* Version 2 has the framing of version 1. It was bumped because a writer's records
 * changed (the key/value server's carry the uid of their writer): a reader older than
 * a file's version refuses it with a clear message, while this one reads both. */
/* Version 3 likewise: the key/value server's Deletes and leases. */
#define RECORD_FORMAT_VERSION 3U
#define RECORD_FORMAT_VERSION_MIN 1U
/* No record is larger: a larger length is damage, not a record. */
#define RECORD_PAYLOAD_MAX (64U << 20)
/* Types at or above this one are the library's own (a snapshot's end marker). */
#define RECORD_TYPE_RESERVED 0xffff0000U
#define RECORD_TYPE_SNAPSHOT_END 0xffffffffU

#define RECORD_MAGIC_WAL "MRKVWAL\n"
#define RECORD_MAGIC_SNAPSHOT "MRKVSNP\n"

/* Called for every record of a replay or a snapshot load. payload is valid only during the
 * call. A negative return stops the load and is returned by it. */
typedef int (*state_record_cb)(uint64_t seqnum, uint32_t type, const void *payload, size_t size,
                               void *userdata);

typedef struct Record {
        uint64_t seqnum;
        uint32_t type;
        uint32_t size;          /* of the payload */
        const uint8_t *payload;
} Record;

/* The checksum of the records, for other files to use: CRC-32 of size bytes at p,
 * continuing from crc (0 to start). */
uint32_t record_crc32(uint32_t crc, const void *p, size_t size);

void record_file_header_encode(uint8_t buf[RECORD_FILE_HEADER_SIZE], const char magic[8], uint64_t position);
/* 0 with the position, -EPROTONOSUPPORT for another format version (the magic and the crc
 * matched), -EBADMSG for anything else. */
int record_file_header_parse(const uint8_t *buf, size_t size, const char magic[8], uint64_t *ret_position);

/* Fills the record header for a payload; the payload follows it in the file. */
void record_header_encode(uint8_t buf[RECORD_HEADER_SIZE], uint64_t seqnum, uint32_t type, const void *payload,
                          uint32_t size);
/* The same for a payload already in place after the header (size bytes at record +
 * RECORD_HEADER_SIZE): the checksum in one pass over the whole record. */
void record_seal(uint8_t *record, uint64_t seqnum, uint32_t type, uint32_t size);
/* Parses the record at p (avail bytes readable): its total size (header and payload), or
 * -EBADMSG when it is incomplete or damaged, or numbered below min_seqnum. */
int64_t record_parse(const uint8_t *p, size_t avail, uint64_t min_seqnum, Record *ret);
/* The same without the checksum, for a mapping record_parse() has checked whole already:
 * loading a snapshot reads it twice, and the checksum was most of the second pass. */
int64_t record_parse_checked(const uint8_t *p, size_t avail, Record *ret);

/* A file mapped read-only (an empty file maps to NULL). */
typedef struct MappedFile {
        const uint8_t *data;
        size_t size;
} MappedFile;

int mapped_file_open(int dir_fd, const char *name, MappedFile *ret);
void mapped_file_close(MappedFile *m);
