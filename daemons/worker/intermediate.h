/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The intermediate file format. A file holds the pairs of one map task for one reduce
 * partition, grouped by key, groups sorted by key (bytewise), each key once:
 *
 *   group := varint(key length) key varint(number of values) run*
 *   run   := varint(repeat count) varint(value length) bytes
 *
 * with LEB128 varints; any bytes may appear in keys and values. A run is one value
 * repeated (consecutive equal values, in emission order); the repeat counts of a group
 * add up to its number of values. A word count writes each distinct word once per
 * file with a single run of "1"s, so reduce merges distinct keys, not every pair. */

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

/* Reads the groups of one file through a buffer of fixed size (grown only for a key or
 * value larger than it), so memory does not grow with the file. */
typedef struct GroupReader {
        int fd;
        uint8_t *buf;
        size_t allocated, start, end;
        bool eof;
        uint64_t file_size; /* a length beyond it is corruption, not a reason to allocate */
        const char *key; /* the current group's key: valid until the next call on this reader */
        size_t key_len;
        uint64_t values_left;
        uint64_t run_left;       /* repeats of run_value still to hand out */
        const char *run_value;   /* valid while the run lasts: nothing is read meanwhile */
        size_t run_len;
} GroupReader;

int group_reader_open(GroupReader *r, int dir_fd, const char *path, size_t buffer_size);
/* The same over an open file (a spilled run), read from its start; takes fd. */
int group_reader_open_fd(GroupReader *r, int fd, size_t buffer_size);
void group_reader_close(GroupReader *r);
/* Moves to the next group, skipping values not read: 1 and key set, 0 at the end of the
 * file, -EBADMSG for a corrupt or truncated file, -errno on read errors. */
int group_reader_next_key(GroupReader *r);
/* Reads the next run of the current group and returns its first value. */
int group_reader_next_run(GroupReader *r, const char **ret_value, size_t *ret_len);
/* Reads the next whole run of the current group: 1 with its repeat count and value, 0 when
 * the group has no more, or an error. For copying runs as they are. */
int group_reader_take_run(GroupReader *r, uint64_t *ret_repeat, const char **ret_value, size_t *ret_len);

/* The next value of the current group: 1 and the value (valid until the next call), 0
 * when the group has no more, or an error as above. Inline: a reduce over a word count
 * calls it once per word of the corpus, and mostly the value just repeats. */
static inline int group_reader_next_value(GroupReader *r, const char **ret_value, size_t *ret_len) {
        if (r->run_left > 0) {
                r->run_left--;
                r->values_left--;
                *ret_value = r->run_value;
                *ret_len = r->run_len;
                return 1;
        }
        return group_reader_next_run(r, ret_value, ret_len);
}
