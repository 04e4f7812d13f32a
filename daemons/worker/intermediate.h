/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The intermediate file format: a sequence of records, each
 *   varint(key length) varint(value length) key-bytes value-bytes
 * with LEB128 varints. Any bytes may appear in keys and values. Each file holds the
 * pairs of one map task for one reduce partition, sorted by key (bytewise), so that
 * a reduce task merges its inputs as streams. */

#define VARINT_MAX 10

static inline size_t varint_encode(uint8_t *p, uint64_t v) {
        size_t n = 0;
        while (v >= 0x80) {
                p[n++] = (uint8_t) (v | 0x80);
                v >>= 7;
        }
        p[n++] = (uint8_t) v;
        return n;
}

/* Decodes a varint from [p, end). Returns the bytes used, 0 if incomplete, -EBADMSG if invalid. */
int varint_decode(const uint8_t *p, const uint8_t *end, uint64_t *ret);

/* FNV-1a, 32 bit: the partition of a key is (fnv1a32(key) & 0x7fffffff) % nreduce. */
uint32_t fnv1a32(const void *data, size_t n);

/* Reads the records of one file through a fixed-size buffer (grown only for a record
 * larger than it), so memory does not grow with the file. */
typedef struct RecordReader {
        int fd;
        uint8_t *buf;
        size_t allocated, start, end;
        int eof;
        const char *key, *value;
        size_t key_len, value_len;
} RecordReader;

int record_reader_open(RecordReader *r, int dir_fd, const char *path);
void record_reader_close(RecordReader *r);
/* Advances to the next record: 1 and key/value set (valid until the next call), 0 at
 * the end, -EBADMSG for a corrupt or truncated file, -errno on read errors. */
int record_reader_next(RecordReader *r);
