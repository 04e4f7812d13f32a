/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The intermediate file format. Map task M writes one file, mr-M: its reduce partitions
 * 0..R-1 one after another, then an index of where each ends (as Hadoop's map side
 * writes one output file and an index of partition offsets), so a map commits one file
 * and a reduce opens each map's file once and reads only its own range:
 *
 *   file    := partition{R} entry{R} footer
 *   entry p := le64 end | le32 crc       (12 bytes; end: where partition p ends)
 *   footer  := le32 R | le32 version | le32 crc | magic[8]       (20 bytes)
 *
 * Partition p is [end of p-1, end of p) (partition 0 starts at 0; an empty partition is
 * an empty range); the index starts at file size - 12 R - 20, which the last end
 * equals. An entry's crc is record_crc32() (the job journal's checksum) of le32 p |
 * le64 end, so an entry read for another partition (swapped, shifted) does not check;
 * the footer's is of its R and version. A reduce of partition p reads and checks the
 * footer and entries p-1 and p only: O(1) bytes of index per map file whatever R is
 * (one read for the whole trailer when it is small, else one for the footer and one
 * for the two entries). A partition holds the map's pairs of that partition grouped by key, groups sorted by
 * key (bytewise), each key once:
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

#define INTERMEDIATE_MAGIC "MRKVMAP\n"
#define INTERMEDIATE_FORMAT_VERSION 2U
#define INTERMEDIATE_ENTRY_SIZE 12U
#define INTERMEDIATE_FOOTER_SIZE 20U
/* A trailer up to this size is read in one pread(); a larger one in two small ones. */
#define INTERMEDIATE_TRAILER_ONE_READ 4096U

static inline size_t intermediate_trailer_size(unsigned nreduce) {
        return (size_t) nreduce * INTERMEDIATE_ENTRY_SIZE + INTERMEDIATE_FOOTER_SIZE;
}

/* Encodes the trailer of a file of nreduce partitions, partition p ending at ends[p]
 * (the last end: where the trailer goes), into buf of intermediate_trailer_size(). */
void intermediate_trailer_encode(uint8_t *buf, const uint64_t *ends, unsigned nreduce);

/* Checks the footer at the end of buf (the last size bytes of a file of file_size
 * bytes) for a job of nreduce partitions and returns where the index starts. -EBADMSG
 * with *ret_reason (static) saying what is wrong: too short, bad magic, another
 * version, bad checksum, another partition count. */
int intermediate_footer_parse(const uint8_t *buf, size_t size, uint64_t file_size, unsigned nreduce,
                              uint64_t *ret_index_start, const char **ret_reason);

/* Checks the entries partition's range is read from, entries[] being entry partition - 1
 * and then partition's (only partition's for partition 0), in an index starting at
 * index_start, and returns the range. -EBADMSG with *ret_reason: bad checksum (an
 * entry damaged or not this partition's), a start past its end, an end past the index,
 * the last partition not ending where the index starts. */
int intermediate_entries_parse(const uint8_t *entries, unsigned nreduce, unsigned partition, uint64_t index_start,
                               uint64_t *ret_offset, uint64_t *ret_length, const char **ret_reason);

/* Both of the above over a whole trailer at the end of buf (the last size bytes of a
 * file of file_size bytes; size at least intermediate_trailer_size(nreduce) unless the
 * file is shorter). */
int intermediate_trailer_parse(const uint8_t *buf, size_t size, uint64_t file_size, unsigned nreduce,
                               unsigned partition, uint64_t *ret_offset, uint64_t *ret_length,
                               const char **ret_reason);

/* FNV-1a, 32 bit: the partition of a key is (fnv1a32(key) & 0x7fffffff) % nreduce. */
uint32_t fnv1a32(const void *data, size_t n);

/* Reads the groups of one file, or of a byte range of it, through a buffer of fixed size
 * (grown only for a key or value larger than it), so memory does not grow with the file. */
typedef struct GroupReader {
        int fd;
        uint8_t *buf;
        size_t allocated, start, end;
        bool eof;
        uint64_t pos, limit;  /* the next byte to read and the range's end, in the file */
        uint64_t file_size; /* of the range: a length beyond it is corruption, not a reason to allocate */
        const char *key; /* the current group's key: valid until the next call on this reader */
        size_t key_len;
        uint64_t values_left;
        uint64_t run_left;       /* repeats of run_value still to hand out */
        const char *run_value;   /* valid while the run lasts: nothing is read meanwhile */
        size_t run_len;
        uint64_t index_read; /* bytes of the file's index read to open its partition */
} GroupReader;

/* Opens a whole file of groups (a spilled run) by its fd, which it takes. */
int group_reader_open_fd(GroupReader *r, int fd, size_t buffer_size);
/* Opens partition of the intermediate file path in dir_fd, written for nreduce partitions:
 * checks its footer and the index entries of that partition (not the whole index) and
 * reads only that partition's range. -EBADMSG with *ret_reason
 * (static) for a file that is not whole or not of this job's partitioning. */
int group_reader_open_partition(GroupReader *r, int dir_fd, const char *path, unsigned nreduce, unsigned partition,
                                size_t buffer_size, const char **ret_reason);
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
