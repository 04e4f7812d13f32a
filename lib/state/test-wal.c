/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The write-ahead log: replay, torn tails at every byte, damage refused and repaired,
 * failed writes and syncs, group commit and the sync modes. */
#include <check.h>
#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>

#include "macro.h"
#include "tests.h"
#include "test-state-util.h"
#include "wal.h"

#define SEGMENT_1 "log-0000000000000001.wal"

static const WalOptions always = { .sync_mode = WAL_SYNC_ALWAYS };

/* Waits on the eventfd, as an event loop would, until target is durable or the log fails. */
static int wait_durable(Wal *w, uint64_t target) {
        for (int i = 0; i < 3000; i++) {
                struct pollfd p = { .fd = wal_get_event_fd(w), .events = POLLIN };
                uint64_t durable;
                int r;

                r = wal_process(w, &durable);
                if (r < 0)
                        return r;
                if (durable >= target)
                        return 0;
                ck_assert_int_ge(poll(&p, 1, 10), 0);
        }
        ck_abort_msg("record %" PRIu64 " not durable after 30 s", target);
        return -ETIMEDOUT;
}

static Wal *open_model(int dfd, const WalOptions *opts, Model *m) {
        Wal *w = NULL;

        *m = (Model) {};
        ck_assert_int_eq(wal_open(dfd, "test", 0, opts, model_apply, m, &w), 0);
        return w;
}

static void assert_model_eq(const Model *a, const Model *b) {
        ck_assert_uint_eq(a->last_seqnum, b->last_seqnum);
        model_assert_values_eq(a, b);
}

/* Records of any size and type, collected whole. */
typedef struct Collected {
        uint64_t n;
        uint64_t seqnum[64];
        uint32_t type[64];
        size_t size[64];
        uint32_t crc[64];
} Collected;

static int collect(uint64_t seqnum, uint32_t type, const void *payload, size_t size, void *userdata) {
        Collected *c = userdata;

        ck_assert_uint_lt(c->n, 64);
        c->seqnum[c->n] = seqnum;
        c->type[c->n] = type;
        c->size[c->n] = size;
        c->crc[c->n] = (uint32_t) crc32(0, payload, (uInt) size);
        c->n++;
        return 0;
}

START_TEST(test_round_trip) {
        _cleanup_free_ char *path = test_dir_new();
        static const size_t sizes[] = { 0, 1, 7, 4096, 100000, 3 << 20 };
        _cleanup_free_ uint8_t *big = malloc((3 << 20) + 16); /* record i starts at big + i */
        Collected c = {};
        WalStats st;
        Wal *w = NULL;
        int dfd = test_dir_open(path);

        ck_assert_ptr_nonnull(big);
        for (size_t i = 0; i < (3 << 20) + 16; i++)
                big[i] = (uint8_t) (i * 7 + i / 251);

        ck_assert_int_eq(wal_open(dfd, path, 0, &always, collect, &c, &w), 0);
        ck_assert_uint_eq(c.n, 0);
        ck_assert_uint_eq(wal_last_seqnum(w), 0);
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                uint64_t seqnum;
                ck_assert_int_eq(wal_append(w, (uint32_t) i + 5, big + i, sizes[i], &seqnum), 0);
                ck_assert_uint_eq(seqnum, i + 1);
        }
        ck_assert_int_eq(wal_append(w, 1, big, RECORD_PAYLOAD_MAX + 1, NULL), -EMSGSIZE);
        ck_assert_int_eq(wal_sync(w), 0);
        ck_assert_uint_eq(wal_durable_seqnum(w), ELEMENTSOF(sizes));
        wal_get_stats(w, &st);
        ck_assert_uint_eq(st.appends, ELEMENTSOF(sizes));
        ck_assert_uint_eq(st.segments, 1);
        ck_assert_uint_ge(st.syncs, 1);
        w = wal_free(w);

        /* Reopened: the same records, numbered on, in a new segment. */
        ck_assert_int_eq(wal_open(dfd, path, 0, &always, collect, &c, &w), 0);
        ck_assert_uint_eq(c.n, ELEMENTSOF(sizes));
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                ck_assert_uint_eq(c.seqnum[i], i + 1);
                ck_assert_uint_eq(c.type[i], i + 5);
                ck_assert_uint_eq(c.size[i], sizes[i]);
                ck_assert_uint_eq(c.crc[i], (uint32_t) crc32(0, big + i, (uInt) sizes[i]));
        }
        ck_assert_uint_eq(wal_durable_seqnum(w), ELEMENTSOF(sizes));
        ck_assert_int_eq(wal_append(w, 42, "x", 1, NULL), 0);
        ck_assert_int_eq(wal_sync(w), 0);
        w = wal_free(w);
        ck_assert_uint_eq(test_count_files(dfd, "log-", ".wal"), 2);

        c = (Collected) {};
        ck_assert_int_eq(wal_open(dfd, path, 0, &always, collect, &c, &w), 0);
        ck_assert_uint_eq(c.n, ELEMENTSOF(sizes) + 1);
        ck_assert_uint_eq(c.seqnum[ELEMENTSOF(sizes)], ELEMENTSOF(sizes) + 1);
        ck_assert_uint_eq(c.type[ELEMENTSOF(sizes)], 42);
        wal_free(w);

        /* Only the records after a snapshot's are delivered. */
        c = (Collected) {};
        ck_assert_int_eq(wal_open(dfd, path, 4, &always, collect, &c, &w), 0);
        ck_assert_uint_eq(c.n, 3);
        ck_assert_uint_eq(c.seqnum[0], 5);
        ck_assert_uint_eq(wal_last_seqnum(w), 7);
        wal_free(w);
        close(dfd);
}
END_TEST

/* Records gathered from pieces, of every size up to 300 bytes, at every alignment in the
 * segment: on the disk each carries zlib's CRC-32 of its header (crc field zeroed) and
 * payload, whichever library computed it, and each reads back whole. */
START_TEST(test_record_crc_is_zlib) {
        _cleanup_free_ char *path = test_dir_new();
        uint8_t data[300];
        WalCheckReport report = {};
        MappedFile m = {};
        Collected c = {};
        Wal *w = NULL;
        uint64_t offset = RECORD_FILE_HEADER_SIZE;
        int dfd = test_dir_open(path);

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t) (i * 7 + 3);
        ck_assert_int_eq(wal_open(dfd, path, 0, &always, collect, &c, &w), 0);
        for (size_t size = 0; size <= sizeof(data); size++) {
                size_t cut = size / 3;
                uint64_t seqnum;

                ck_assert_int_eq(wal_appendv(w, 7, (const struct iovec[]) {
                                        { .iov_base = data, .iov_len = cut },
                                        { .iov_base = NULL, .iov_len = 0 },
                                        { .iov_base = data + cut, .iov_len = size - cut },
                                }, 3, &seqnum), 0);
                ck_assert_uint_eq(seqnum, size + 1);
        }
        ck_assert_int_eq(wal_sync(w), 0);
        wal_free(w);

        ck_assert_int_eq(mapped_file_open(dfd, SEGMENT_1, &m), 0);
        for (size_t size = 0; size <= sizeof(data); size++) {
                uint8_t header[RECORD_HEADER_SIZE];
                uint32_t crc, want;
                Record rec;

                ck_assert_uint_le(offset + RECORD_HEADER_SIZE + size, m.size);
                memcpy(header, m.data + offset, sizeof(header));
                memcpy(&crc, header + 4, 4);
                memset(header + 4, 0, 4);
                want = (uint32_t) crc32(0, header, sizeof(header));
                want = (uint32_t) crc32(want, data, (uInt) size);
                ck_assert_uint_eq(le32toh(crc), want);

                ck_assert_int_eq(record_parse(m.data + offset, m.size - offset, 0, &rec),
                                 (int64_t) (RECORD_HEADER_SIZE + size));
                ck_assert_uint_eq(rec.size, size);
                ck_assert(memcmp(rec.payload, data, size) == 0);
                offset += RECORD_HEADER_SIZE + size;
        }
        mapped_file_close(&m);

        ck_assert_int_eq(wal_check(dfd, path, 0, &report), 0);
        ck_assert_uint_eq(report.records, sizeof(data) + 1);
        ck_assert_ptr_null(report.file);
        wal_check_report_done(&report);
        close(dfd);
}
END_TEST

START_TEST(test_segments) {
        _cleanup_free_ char *path = test_dir_new();
        WalOptions opts = { .sync_mode = WAL_SYNC_ALWAYS, .segment_size_max = 200 };
        WalCheckReport report = {};
        Model m, loaded;
        WalStats st;
        Wal *w;
        int dfd = test_dir_open(path);

        w = open_model(dfd, &opts, &m);
        for (unsigned i = 0; i < 50; i++) {
                model_append(w, &m, 1);
                ck_assert_int_eq(wal_commit(w), 0);
        }
        ck_assert_int_eq(wait_durable(w, 50), 0);
        wal_get_stats(w, &st);
        /* 6 records of 32 bytes after the 24-byte header fill a segment. */
        ck_assert_uint_eq(st.segments, 9);
        wal_free(w);
        ck_assert_uint_eq(test_count_files(dfd, "log-", ".wal"), 9);

        ck_assert_int_eq(wal_check(dfd, path, 0, &report), 0);
        ck_assert_uint_eq(report.records, 50);
        ck_assert_uint_eq(report.last_seqnum, 50);
        ck_assert_ptr_null(report.file);
        wal_check_report_done(&report);

        w = open_model(dfd, &opts, &loaded);
        ck_assert_uint_eq(loaded.records, 50);
        assert_model_eq(&loaded, &m);
        wal_free(w);
        close(dfd);
}
END_TEST

/* Writes 20 records (the last one bigger) and returns the segment's bytes and the offset
 * of the last record. */
static void make_log(const char *path, Model *m, uint8_t **ret_data, size_t *ret_size, uint64_t *ret_last) {
        int dfd = test_dir_open(path);
        uint8_t last[100];
        Wal *w;

        w = open_model(dfd, &always, m);
        model_append(w, m, 19);
        memset(last, 0xab, sizeof(last));
        ck_assert_int_eq(wal_append(w, 7, last, sizeof(last), NULL), 0);
        ck_assert_int_eq(wal_sync(w), 0);
        wal_free(w);

        test_file_read(dfd, SEGMENT_1, ret_data, ret_size);
        /* The records, without the zeros ahead of them. */
        *ret_size = test_records_end(*ret_data, *ret_size);
        *ret_last = *ret_size - RECORD_HEADER_SIZE - sizeof(last);
        close(dfd);
}

static void assert_torn_replays_prefix(const uint8_t *data, size_t size, const Model *full, uint64_t last) {
        _cleanup_free_ char *path = test_dir_new();
        int dfd = test_dir_open(path);
        Model m;
        Wal *w;

        test_file_write(dfd, SEGMENT_1, data, size);
        w = open_model(dfd, &always, &m);
        ck_assert_uint_eq(m.records, 19);
        assert_model_eq(&m, full);
        ck_assert_uint_eq(wal_last_seqnum(w), 19);
        /* Cut away, and logged. */
        ck_assert_uint_eq(test_file_size(dfd, SEGMENT_1), last);

        model_append(w, &m, 1);
        ck_assert_int_eq(wal_sync(w), 0);
        wal_free(w);
        w = open_model(dfd, &always, &m);
        ck_assert_uint_eq(m.records, 20);
        ck_assert_uint_eq(wal_last_seqnum(w), 20);
        wal_free(w);
        close(dfd);
}

START_TEST(test_torn_tail_every_offset) {
        _cleanup_free_ char *path = test_dir_new();
        _cleanup_free_ uint8_t *data = NULL;
        uint64_t last;
        size_t size;
        Model m;

        make_log(path, &m, &data, &size, &last);
        /* The model as 19 records leave it: record 20 is not a MODEL_SET. */
        m.last_seqnum = 19;

        for (size_t cut = last; cut < size; cut++)
                assert_torn_replays_prefix(data, cut, &m, last);
}
END_TEST

START_TEST(test_torn_tail_every_flipped_byte) {
        _cleanup_free_ char *path = test_dir_new();
        _cleanup_free_ uint8_t *data = NULL;
        uint64_t last;
        size_t size;
        Model m;

        make_log(path, &m, &data, &size, &last);
        m.last_seqnum = 19;

        /* A checksum failure in the last record, nothing valid after it: a torn write. */
        for (size_t i = last; i < size; i++) {
                data[i] ^= 0x20;
                assert_torn_replays_prefix(data, size, &m, last);
                data[i] ^= 0x20;
        }
}
END_TEST

/* The always mode's zeros ahead of the records: a crash in the middle of a record's write
 * leaves its first bytes and then zeros, up to where the zeros went. */
START_TEST(test_torn_tail_in_prefilled_space) {
        _cleanup_free_ char *path = test_dir_new();
        _cleanup_free_ uint8_t *data = NULL, *padded = NULL;
        const size_t zeros = 64 * 1024;
        uint64_t last;
        size_t size;
        Model m;

        make_log(path, &m, &data, &size, &last);
        m.last_seqnum = 19;
        padded = calloc(1, size + zeros);
        ck_assert_ptr_nonnull(padded);

        /* Cut at the record's start, the zeros are the log's end (test_prefilled_tail);
         * from its first byte on, a torn record, cut away with the zeros after it. */
        for (size_t cut = last + 1; cut < size; cut++) {
                memcpy(padded, data, cut);
                memset(padded + cut, 0, size + zeros - cut);
                assert_torn_replays_prefix(padded, size + zeros, &m, last);
        }
}
END_TEST

START_TEST(test_prefilled_tail) {
        _cleanup_free_ char *path = test_dir_new(), *other = test_dir_new();
        _cleanup_free_ uint8_t *data = NULL;
        const WalOptions none = { .sync_mode = WAL_SYNC_NONE };
        size_t size, end;
        uint64_t record10;
        Model m, loaded;
        Wal *w = NULL;
        int dfd = test_dir_open(path), ofd = test_dir_open(other);

        /* The always mode writes zeros ahead of its records ... */
        w = open_model(dfd, &always, &m);
        model_append(w, &m, 20);
        ck_assert_int_eq(wal_sync(w), 0);
        wal_free(w);
        test_file_read(dfd, SEGMENT_1, &data, &size);
        end = test_records_end(data, size);
        ck_assert_uint_eq(end, RECORD_FILE_HEADER_SIZE + 20 * (RECORD_HEADER_SIZE + 8));
        ck_assert_uint_gt(size, end);

        /* A zero record header fails its checksum (zlib's CRC-32 of zeros is not zero), and
         * its sequence number 0 is below every record's. */
        {
                static const uint8_t zero_record[RECORD_HEADER_SIZE + 64] = {};

                ck_assert_int_eq(record_parse(zero_record, sizeof(zero_record), 0, NULL), -EBADMSG);
        }

        /* ... which end the records: all load, and the file is not cut as torn. */
        w = open_model(dfd, &always, &loaded);
        ck_assert_uint_eq(loaded.records, 20);
        assert_model_eq(&loaded, &m);
        ck_assert_uint_eq(test_file_size(dfd, SEGMENT_1), size);
        wal_free(w);

        /* Zeros where a record was, with records after them, are damage, not an end. */
        record10 = RECORD_FILE_HEADER_SIZE + 9 * (RECORD_HEADER_SIZE + 8);
        memset(data + record10, 0, RECORD_HEADER_SIZE + 8);
        test_file_write(dfd, SEGMENT_1, data, size);
        ck_assert_int_eq(wal_open(dfd, path, 0, &always, model_apply, &loaded, &w), -EBADMSG);

        /* The other modes append only. */
        w = open_model(ofd, &none, &m);
        model_append(w, &m, 20);
        ck_assert_int_eq(wal_commit(w), 0);
        wal_free(w);
        ck_assert_uint_eq(test_file_size(ofd, SEGMENT_1), RECORD_FILE_HEADER_SIZE + 20 * (RECORD_HEADER_SIZE + 8));
        close(dfd);
        close(ofd);
}
END_TEST

START_TEST(test_damage_refused_and_repaired) {
        _cleanup_free_ char *path = test_dir_new();
        _cleanup_free_ uint8_t *data = NULL, *cut = NULL;
        WalCheckReport report = {};
        size_t size, cut_size;
        uint64_t offset;
        Model m, loaded;
        Wal *w = NULL;
        int dfd = test_dir_open(path);

        w = open_model(dfd, &always, &m);
        model_append(w, &m, 20);
        ck_assert_int_eq(wal_sync(w), 0);
        w = wal_free(w);

        /* A flipped bit in record 10's payload. */
        test_file_read(dfd, SEGMENT_1, &data, &size);
        offset = RECORD_FILE_HEADER_SIZE + 9 * (RECORD_HEADER_SIZE + 8);
        data[offset + RECORD_HEADER_SIZE + 3] ^= 0x01;
        test_file_write(dfd, SEGMENT_1, data, size);

        ck_assert_int_eq(wal_open(dfd, path, 0, &always, model_apply, &loaded, &w), -EBADMSG);
        ck_assert_ptr_null(w);
        ck_assert_uint_eq(test_file_size(dfd, SEGMENT_1), size); /* untouched */

        ck_assert_int_eq(wal_check(dfd, path, 0, &report), -EBADMSG);
        ck_assert_str_eq(report.file, SEGMENT_1);
        ck_assert_uint_eq(report.offset, offset);
        ck_assert_uint_eq(report.records, 9);
        ck_assert_uint_eq(report.last_seqnum, 9);
        ck_assert(!report.torn);
        wal_check_report_done(&report);

        ck_assert_int_eq(wal_repair(dfd, path, 0, &report), 0);
        ck_assert_str_eq(report.file, SEGMENT_1);
        ck_assert_uint_eq(report.offset, offset);
        ck_assert_ptr_nonnull(report.cut_file);
        ck_assert(test_file_exists(dfd, report.cut_file));
        test_file_read(dfd, report.cut_file, &cut, &cut_size);
        ck_assert_uint_eq(cut_size, size - offset);
        ck_assert_mem_eq(cut, data + offset, cut_size);
        ck_assert_uint_eq(test_file_size(dfd, SEGMENT_1), offset);
        wal_check_report_done(&report);

        ck_assert_int_eq(wal_check(dfd, path, 0, &report), 0);
        ck_assert_uint_eq(report.records, 9);
        wal_check_report_done(&report);

        w = open_model(dfd, &always, &loaded);
        ck_assert_uint_eq(loaded.records, 9);
        ck_assert_uint_eq(wal_last_seqnum(w), 9);
        for (unsigned k = 0; k < 9; k++)
                ck_assert_uint_eq(loaded.value[k], m.value[k]);
        ck_assert_uint_eq(loaded.value[9], 0);
        wal_free(w);
        close(dfd);
}
END_TEST

START_TEST(test_damage_in_earlier_segment) {
        _cleanup_free_ char *path = test_dir_new();
        _cleanup_free_ uint8_t *data = NULL;
        WalOptions opts = { .sync_mode = WAL_SYNC_ALWAYS, .segment_size_max = 100 };
        WalCheckReport report = {};
        size_t size, end;
        Model m, loaded;
        Wal *w = NULL;
        int dfd = test_dir_open(path);

        w = open_model(dfd, &opts, &m);
        for (unsigned i = 0; i < 12; i++) {
                model_append(w, &m, 1);
                ck_assert_int_eq(wal_commit(w), 0);
        }
        ck_assert_int_eq(wal_sync(w), 0);
        wal_free(w);
        ck_assert_uint_ge(test_count_files(dfd, "log-", ".wal"), 4);

        /* The last record of the first segment, which later segments follow. */
        test_file_read(dfd, SEGMENT_1, &data, &size);
        end = test_records_end(data, size);
        data[end - 1] ^= 0x80;
        test_file_write(dfd, SEGMENT_1, data, size);

        ck_assert_int_eq(wal_open(dfd, path, 0, &opts, model_apply, &loaded, &w), -EBADMSG);
        ck_assert_int_eq(wal_check(dfd, path, 0, &report), -EBADMSG);
        ck_assert_str_eq(report.file, SEGMENT_1);
        ck_assert_uint_eq(report.offset, end - RECORD_HEADER_SIZE - 8);
        wal_check_report_done(&report);

        ck_assert_int_eq(wal_repair(dfd, path, 0, &report), 0);
        /* 3 records a segment: the later ones (4, 7, 10 and the empty 13) are set aside. */
        ck_assert_uint_eq(report.records, 2);
        ck_assert_uint_eq(test_count_files(dfd, "log-", ".cut-0"), 4);
        ck_assert_uint_eq(test_count_files(dfd, "log-", ".wal"), 1);
        wal_check_report_done(&report);

        w = open_model(dfd, &opts, &loaded);
        ck_assert_uint_eq(loaded.records, 2);
        ck_assert_uint_eq(wal_last_seqnum(w), loaded.records);
        wal_free(w);
        close(dfd);
}
END_TEST

/* A segment holding only a header of format version v. */
static void write_header_version(int dfd, uint32_t version) {
        uint8_t header[RECORD_FILE_HEADER_SIZE];
        uint32_t v = htole32(version), crc;
        static const uint8_t zero[4] = {};

        record_file_header_encode(header, RECORD_MAGIC_WAL, 1);
        memcpy(header + 8, &v, 4);
        crc = (uint32_t) crc32(0, header, 12);
        crc = (uint32_t) crc32(crc, zero, 4);
        crc = htole32((uint32_t) crc32(crc, header + 16, 8));
        memcpy(header + 12, &crc, 4);
        test_file_write(dfd, SEGMENT_1, header, sizeof(header));
}

START_TEST(test_format_version) {
        _cleanup_free_ char *path = test_dir_new();
        Wal *w = NULL;
        Model m = {};
        int dfd = test_dir_open(path);

        write_header_version(dfd, RECORD_FORMAT_VERSION + 1);
        ck_assert_int_eq(wal_open(dfd, path, 0, &always, model_apply, &m, &w), -EPROTONOSUPPORT);
        ck_assert_uint_eq(test_file_size(dfd, SEGMENT_1), RECORD_FILE_HEADER_SIZE);

        /* Older versions are still read. */
        write_header_version(dfd, RECORD_FORMAT_VERSION_MIN);
        ck_assert_int_eq(wal_open(dfd, path, 0, &always, model_apply, &m, &w), 0);
        wal_free(w);
        close(dfd);
}
END_TEST

START_TEST(test_gap_refused) {
        _cleanup_free_ char *path = test_dir_new();
        WalOptions opts = { .sync_mode = WAL_SYNC_ALWAYS, .segment_size_max = 100 };
        Model m;
        Wal *w = NULL;
        int dfd = test_dir_open(path);

        w = open_model(dfd, &opts, &m);
        for (unsigned i = 0; i < 12; i++) {
                model_append(w, &m, 1);
                ck_assert_int_eq(wal_commit(w), 0);
        }
        ck_assert_int_eq(wal_sync(w), 0);
        wal_free(w);

        /* A segment in the middle lost. */
        ck_assert_int_eq(unlinkat(dfd, "log-0000000000000004.wal", 0), 0);
        ck_assert_int_eq(wal_open(dfd, path, 0, &opts, model_apply, &m, &w), -EBADMSG);
        /* As is a log that starts after what the snapshot covers. */
        ck_assert_int_eq(unlinkat(dfd, SEGMENT_1, 0), 0);
        ck_assert_int_eq(wal_open(dfd, path, 0, &opts, model_apply, &m, &w), -EBADMSG);
        close(dfd);
}
END_TEST

/* A segment in the middle whose header is damaged: valid records follow, so it is damage
 * (refused), not a torn tail that open would cut with everything after it. */
START_TEST(test_bad_header_refused) {
        _cleanup_free_ char *path = test_dir_new();
        _cleanup_free_ uint8_t *data = NULL;
        WalOptions opts = { .sync_mode = WAL_SYNC_ALWAYS, .segment_size_max = 100 };
        WalCheckReport report = {};
        size_t size;
        Model m;
        Wal *w = NULL;
        int dfd = test_dir_open(path);

        w = open_model(dfd, &opts, &m);
        for (unsigned i = 0; i < 12; i++) {
                model_append(w, &m, 1);
                ck_assert_int_eq(wal_commit(w), 0);
        }
        ck_assert_int_eq(wal_sync(w), 0);
        wal_free(w);

        test_file_read(dfd, "log-0000000000000004.wal", &data, &size);
        data[0] ^= 0x01; /* the magic */
        test_file_write(dfd, "log-0000000000000004.wal", data, size);

        ck_assert_int_eq(wal_open(dfd, path, 0, &opts, model_apply, &m, &w), -EBADMSG);
        ck_assert_int_eq(wal_check(dfd, path, 0, &report), -EBADMSG);
        ck_assert_str_eq(report.file, "log-0000000000000004.wal");
        ck_assert_uint_eq(report.offset, 0);
        ck_assert(!report.torn);
        ck_assert_uint_eq(report.records, 3);
        wal_check_report_done(&report);
        ck_assert_uint_eq(test_count_files(dfd, "log-", ".wal"), 5);
        close(dfd);
}
END_TEST

/* I/O hooks: count syncs, hold them, fail them. */

typedef struct Hooks {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned fdatasyncs;
        unsigned dir_fsyncs;
        bool gate_closed;
        bool in_sync;
        int sync_error;                 /* returned by fdatasync when set */
        ino_t failed_ino;               /* the file whose sync failed */
        unsigned syncs_of_failed;       /* fdatasync calls on it after that */
        int write_error;                /* write: half once, then this error */
        bool wrote_half;
        unsigned writes;
        int truncate_error;             /* returned by truncate when set */
        unsigned truncates;
} Hooks;

static ino_t fd_ino(int fd) {
        struct stat st;
        ck_assert_int_eq(fstat(fd, &st), 0);
        return st.st_ino;
}

static int hook_fdatasync(int fd, void *userdata) {
        Hooks *h = userdata;
        int r = 0;

        pthread_mutex_lock(&h->lock);
        h->fdatasyncs++;
        h->in_sync = true;
        pthread_cond_broadcast(&h->cond);
        while (h->gate_closed)
                pthread_cond_wait(&h->cond, &h->lock);
        h->in_sync = false;
        if (h->failed_ino != 0 && fd_ino(fd) == h->failed_ino)
                h->syncs_of_failed++;
        if (h->sync_error < 0) {
                r = h->sync_error;
                h->failed_ino = fd_ino(fd);
        }
        pthread_mutex_unlock(&h->lock);
        return r == 0 && fdatasync(fd) < 0 ? -errno : r;
}

static int hook_fsync_dir(int fd, void *userdata) {
        Hooks *h = userdata;

        pthread_mutex_lock(&h->lock);
        h->dir_fsyncs++;
        pthread_mutex_unlock(&h->lock);
        return fsync(fd) < 0 ? -errno : 0;
}

static ssize_t hook_write(int fd, const void *buf, size_t size, void *userdata) {
        Hooks *h = userdata;
        ssize_t n;

        h->writes++;
        if (h->write_error < 0) {
                if (h->wrote_half)
                        return h->write_error;
                h->wrote_half = true;
                n = write(fd, buf, size / 2);
                return n < 0 ? -errno : n;
        }
        n = write(fd, buf, size);
        return n < 0 ? -errno : n;
}

static int hook_truncate(int fd, uint64_t size, void *userdata) {
        Hooks *h = userdata;
        int r;

        pthread_mutex_lock(&h->lock);
        h->truncates++;
        r = h->truncate_error;
        pthread_cond_broadcast(&h->cond);
        pthread_mutex_unlock(&h->lock);
        if (r < 0)
                return r;
        return ftruncate(fd, (off_t) size) < 0 || fsync(fd) < 0 ? -errno : 0;
}

static void hooks_init(Hooks *h, WalIO *io) {
        *h = (Hooks) {};
        pthread_mutex_init(&h->lock, NULL);
        pthread_cond_init(&h->cond, NULL);
        *io = (WalIO) {
                .write = hook_write,
                .fdatasync = hook_fdatasync,
                .fsync_dir = hook_fsync_dir,
                .truncate = hook_truncate,
                .userdata = h,
        };
}

/* A log with the hooks, and the first n records of m durable. */
static Wal *open_hooked(int dfd, WalOptions *opts, Hooks *h, WalIO *io, Model *m, unsigned n) {
        Wal *w;

        hooks_init(h, io);
        opts->io = io;
        w = open_model(dfd, opts, m);
        model_append(w, m, n);
        ck_assert_int_eq(wal_commit(w), 0);
        ck_assert_int_eq(wait_durable(w, n), 0);
        return w;
}

static unsigned hooks_truncates(Hooks *h) {
        unsigned n;

        pthread_mutex_lock(&h->lock);
        n = h->truncates;
        pthread_mutex_unlock(&h->lock);
        return n;
}

/* Waits on the eventfd, as an event loop would, until the failed log's records that were
 * not durable are cut. */
static void wait_cut(Wal *w) {
        for (int i = 0; i < 3000 && !wal_undurable_cut(w); i++) {
                struct pollfd p = { .fd = wal_get_event_fd(w), .events = POLLIN };

                (void) wal_process(w, NULL);
                ck_assert_int_ge(poll(&p, 1, 10), 0);
        }
        ck_assert_msg(wal_undurable_cut(w), "the records that were not durable were not cut in 30 s");
}

static void hooks_set(Hooks *h, bool gate_closed, int sync_error) {
        pthread_mutex_lock(&h->lock);
        h->gate_closed = gate_closed;
        h->sync_error = sync_error;
        pthread_cond_broadcast(&h->cond);
        pthread_mutex_unlock(&h->lock);
}

static unsigned hooks_syncs(Hooks *h) {
        unsigned n;

        pthread_mutex_lock(&h->lock);
        n = h->fdatasyncs;
        pthread_mutex_unlock(&h->lock);
        return n;
}

START_TEST(test_group_commit) {
        _cleanup_free_ char *path = test_dir_new();
        WalOptions opts = { .sync_mode = WAL_SYNC_ALWAYS };
        Hooks h;
        WalIO io;
        WalStats st;
        Model m;
        Wal *w;
        int dfd = test_dir_open(path);

        hooks_init(&h, &io);
        opts.io = &io;
        w = open_model(dfd, &opts, &m);

        /* The first sync is held in fdatasync() ... */
        hooks_set(&h, true, 0);
        model_append(w, &m, 1);
        ck_assert_int_eq(wal_commit(w), 0);
        pthread_mutex_lock(&h.lock);
        while (!h.in_sync)
                pthread_cond_wait(&h.cond, &h.lock);
        pthread_mutex_unlock(&h.lock);

        /* ... while 100 clients append and commit, each asking for a sync ... */
        for (unsigned i = 0; i < 100; i++) {
                model_append(w, &m, 1);
                ck_assert_int_eq(wal_commit(w), 0);
        }
        ck_assert_uint_eq(wal_durable_seqnum(w), 0);
        ck_assert_uint_eq(hooks_syncs(&h), 1);

        /* ... and one more sync covers them all. */
        hooks_set(&h, false, 0);
        ck_assert_int_eq(wait_durable(w, 101), 0);
        ck_assert_uint_eq(hooks_syncs(&h), 2);
        wal_get_stats(w, &st);
        ck_assert_uint_eq(st.syncs, 2);
        ck_assert_uint_eq(st.appends, 101);
        ck_assert_uint_eq(st.writes, 1 + 101); /* the segment header, then one per commit */
        /* The new segment's directory entry was synced once, with the first batch. */
        ck_assert_uint_eq(h.dir_fsyncs, 1);
        wal_free(w);
        close(dfd);
}
END_TEST

START_TEST(test_sync_failure) {
        _cleanup_free_ char *path = test_dir_new();
        WalOptions opts = { .sync_mode = WAL_SYNC_ALWAYS };
        uint64_t durable, seqnum;
        struct pollfd p;
        Hooks h;
        WalIO io;
        Model m, loaded;
        Wal *w;
        int dfd = test_dir_open(path);

        w = open_hooked(dfd, &opts, &h, &io, &m, 5);

        hooks_set(&h, false, -EIO);
        model_append(w, &m, 5);
        ck_assert_int_eq(wal_commit(w), 0);
        ck_assert_int_eq(wait_durable(w, 10), -EIO);
        ck_assert_int_eq(wal_process(w, &durable), -EIO);
        ck_assert_uint_eq(durable, 5); /* what was durable stays so */
        ck_assert_uint_eq(wal_durable_seqnum(w), 5);
        ck_assert_int_eq(wal_error(w), -EIO);

        /* Refused until a snapshot of everything. */
        ck_assert_int_eq(wal_append(w, MODEL_SET, "12345678", 8, NULL), -EIO);
        ck_assert_int_eq(wal_commit(w), -EIO);
        ck_assert_int_eq(wal_sync(w), -EIO);
        ck_assert_int_eq(wal_rotate_after_snapshot(w, 9), -ESTALE);
        ck_assert_int_eq(wal_error(w), -EIO);

        hooks_set(&h, false, 0);
        ck_assert_int_eq(wal_rotate_after_snapshot(w, 10), 0);
        ck_assert_int_eq(wal_error(w), 0);
        ck_assert_int_eq(wal_process(w, &durable), 0);
        ck_assert_uint_eq(durable, 10);

        ck_assert_int_eq(wal_append(w, MODEL_SET, "\1\0\0\0\7\0\0\0", 8, &seqnum), 0);
        ck_assert_uint_eq(seqnum, 11);
        ck_assert_int_eq(wal_commit(w), 0);
        ck_assert_int_eq(wait_durable(w, 11), 0);
        ck_assert_int_eq(wal_sync(w), 0);

        /* The failed segment was never synced again, as if its pages were good. */
        ck_assert_uint_ne(h.failed_ino, 0);
        ck_assert_uint_eq(h.syncs_of_failed, 0);

        p = (struct pollfd) { .fd = wal_get_event_fd(w), .events = POLLIN };
        ck_assert_int_ge(poll(&p, 1, 0), 0);
        wal_free(w);

        /* The segments of records 1 to 10 went with the (pretended) snapshot of record 10:
         * the log starts after it. */
        ck_assert_int_eq(wal_open(dfd, path, 0, &always, model_apply, &loaded, &w), -EBADMSG);
        loaded = (Model) {};
        ck_assert_int_eq(wal_open(dfd, path, 10, &always, model_apply, &loaded, &w), 0);
        ck_assert_uint_eq(loaded.records, 1);
        ck_assert_uint_eq(loaded.last_seqnum, 11);
        ck_assert_uint_eq(loaded.value[1], 7);
        wal_free(w);
        close(dfd);
}
END_TEST

/* Records written whole but whose sync failed: on the disk or not, the caller answers
 * them as not written, so a crash must not bring them back. */
START_TEST(test_failed_sync_records_cut) {
        _cleanup_free_ char *path = test_dir_new();
        WalOptions opts = { .sync_mode = WAL_SYNC_ALWAYS, .segment_size_max = 4 * (RECORD_HEADER_SIZE + 8) };
        Hooks h;
        WalIO io;
        Model m, loaded;
        Wal *w;
        int dfd = test_dir_open(path);

        w = open_hooked(dfd, &opts, &h, &io, &m, 5);

        /* Records 6 to 13, over three segments, are written while the sync of the first
         * is held; then it fails. */
        hooks_set(&h, true, -EIO);
        for (unsigned i = 0; i < 8; i++) {
                model_append(w, &m, 1);
                ck_assert_int_eq(wal_commit(w), 0);
                pthread_mutex_lock(&h.lock);
                while (!h.in_sync)
                        pthread_cond_wait(&h.cond, &h.lock);
                pthread_mutex_unlock(&h.lock);
        }
        hooks_set(&h, false, -EIO);
        ck_assert_int_eq(wait_durable(w, 13), -EIO);
        wait_cut(w);
        ck_assert_uint_eq(wal_durable_seqnum(w), 5);
        ck_assert_uint_gt(test_count_files(dfd, "log-", ".wal"), 2);
        w = wal_free(w); /* a crash: no snapshot */

        hooks_set(&h, false, 0);
        w = open_model(dfd, &opts, &loaded);
        ck_assert_uint_eq(loaded.records, 5);
        ck_assert_uint_eq(wal_last_seqnum(w), 5);
        wal_free(w);
        close(dfd);
}
END_TEST

/* When even the cut fails, the log never says the records are gone. */
START_TEST(test_failed_cut) {
        _cleanup_free_ char *path = test_dir_new();
        WalOptions opts = { .sync_mode = WAL_SYNC_ALWAYS };
        Hooks h;
        WalIO io;
        Model m;
        Wal *w;
        int dfd = test_dir_open(path);

        w = open_hooked(dfd, &opts, &h, &io, &m, 0);
        h.truncate_error = -EIO;
        hooks_set(&h, false, -EIO);
        model_append(w, &m, 3);
        ck_assert_int_eq(wal_commit(w), 0);
        ck_assert_int_eq(wait_durable(w, 3), -EIO);
        for (int i = 0; i < 3000 && hooks_truncates(&h) == 0; i++)
                ck_assert_int_ge(poll(NULL, 0, 10), 0);
        ck_assert_uint_eq(hooks_truncates(&h), 1);
        ck_assert(!wal_undurable_cut(w));

        /* A snapshot of everything settles them: the log is trusted again. */
        hooks_set(&h, false, 0);
        ck_assert_int_eq(wal_rotate_after_snapshot(w, 3), 0);
        ck_assert_int_eq(wal_error(w), 0);
        ck_assert(!wal_undurable_cut(w));
        wal_free(w);
        close(dfd);
}
END_TEST

/* The "none" mode closes the segments it finishes, though it never syncs them. */
START_TEST(test_none_closes_segments) {
        _cleanup_free_ char *path = test_dir_new();
        WalOptions opts = { .sync_mode = WAL_SYNC_NONE, .segment_size_max = 4 * (RECORD_HEADER_SIZE + 8) };
        unsigned before, n = 0;
        WalStats st;
        Model m;
        Wal *w;
        int dfd = test_dir_open(path);

        w = open_model(dfd, &opts, &m);
        before = tests_count_fds();
        for (unsigned i = 0; i < 400; i++) {
                model_append(w, &m, 1);
                ck_assert_int_eq(wal_commit(w), 0);
        }
        wal_get_stats(w, &st);
        ck_assert_uint_ge(st.segments, 100);
        /* The thread closes them: a few may still be open for a moment. */
        for (int i = 0; i < 3000 && (n = tests_count_fds()) > before; i++)
                ck_assert_int_ge(poll(NULL, 0, 10), 0);
        ck_assert_uint_le(n, before);
        wal_free(w);
        close(dfd);
}
END_TEST

START_TEST(test_write_failure) {
        _cleanup_free_ char *path = test_dir_new();
        WalOptions opts = { .sync_mode = WAL_SYNC_ALWAYS };
        struct pollfd p;
        uint64_t durable;
        Hooks h;
        WalIO io;
        Model m, loaded;
        Wal *w;
        int dfd = test_dir_open(path);

        hooks_init(&h, &io);
        opts.io = &io;
        w = open_model(dfd, &opts, &m);
        model_append(w, &m, 3);
        ck_assert_int_eq(wal_sync(w), 0);

        /* The disk fills up in the middle of a write. */
        h.write_error = -ENOSPC;
        model_append(w, &m, 3);
        ck_assert_int_eq(wal_commit(w), -ENOSPC);
        ck_assert_int_eq(wal_error(w), -ENOSPC);
        p = (struct pollfd) { .fd = wal_get_event_fd(w), .events = POLLIN };
        ck_assert_int_eq(poll(&p, 1, 0), 1); /* the event loop hears of it */
        ck_assert_int_eq(wal_process(w, &durable), -ENOSPC);
        ck_assert_uint_eq(durable, 3);
        ck_assert_int_eq(wal_append(w, MODEL_SET, "12345678", 8, NULL), -ENOSPC);
        wait_cut(w);
        w = wal_free(w);

        /* A crash now: of the 96 bytes of records 4 to 6, 48 had been written, record 4
         * whole. Never reported durable, it was cut with the rest: a caller answers such
         * records as not written, and no replay may bring one back. */
        w = open_model(dfd, &always, &loaded);
        ck_assert_uint_eq(loaded.records, 3);
        ck_assert_uint_eq(wal_last_seqnum(w), 3);
        wal_free(w);
        close(dfd);
}
END_TEST

/* A real full file system: a 256 KiB tmpfs in a mount namespace of this test's own. */
static bool tmpfs_mount(const char *path) {
        if (unshare(CLONE_NEWNS) < 0) {
                /* Not root: try as root of a user namespace of our own. */
                uid_t uid = getuid();
                gid_t gid = getgid();
                char map[64];
                int fd;

                if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
                        return false;
                fd = open("/proc/self/setgroups", O_WRONLY | O_CLOEXEC);
                if (fd >= 0) {
                        (void) !write(fd, "deny", 4);
                        close(fd);
                }
                snprintf(map, sizeof(map), "0 %u 1", (unsigned) uid);
                fd = open("/proc/self/uid_map", O_WRONLY | O_CLOEXEC);
                if (fd < 0 || write(fd, map, strlen(map)) < 0)
                        return false;
                close(fd);
                snprintf(map, sizeof(map), "0 %u 1", (unsigned) gid);
                fd = open("/proc/self/gid_map", O_WRONLY | O_CLOEXEC);
                if (fd < 0 || write(fd, map, strlen(map)) < 0)
                        return false;
                close(fd);
        }
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return false;
        return mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=256k,mode=0700") == 0;
}

START_TEST(test_tmpfs_full) {
        _cleanup_free_ char *path = test_dir_new();
        WalOptions opts = { .sync_mode = WAL_SYNC_ALWAYS, .segment_size_max = 1 << 20 };
        static uint8_t payload[8192];
        Model m = {};
        unsigned n = 0;
        Wal *w;
        int dfd, r = 0;

        ck_assert_msg(tmpfs_mount(path), "mount namespace: %m");
        dfd = test_dir_open(path);
        ck_assert_int_eq(wal_open(dfd, path, 0, &opts, model_apply, &m, &w), 0);
        for (; n < 1000; n++) {
                memset(payload, (int) n, sizeof(payload));
                r = wal_append(w, 9, payload, sizeof(payload), NULL);
                if (r >= 0)
                        r = wal_commit(w);
                if (r < 0)
                        break;
        }
        ck_assert_int_eq(r, -ENOSPC);
        ck_assert_uint_gt(n, 10);
        ck_assert_uint_lt(n, 40);
        ck_assert_int_eq(wal_append(w, 9, payload, 1, NULL), -ENOSPC);
        ck_assert_int_eq(wal_sync(w), -ENOSPC);
        wal_free(w);
}
END_TEST

static bool tmpfs_possible(void) {
        _cleanup_free_ char *path = NULL;
        int status;
        pid_t pid;

        if (asprintf(&path, "%s/mrkv-test-tmpfs-XXXXXX", getenv("TMPDIR") ?: "/tmp") < 0 || !mkdtemp(path))
                return false;
        pid = fork();
        if (pid == 0)
                _exit(tmpfs_mount(path) ? 0 : 1);
        status = -1;
        if (pid > 0)
                (void) waitpid(pid, &status, 0);
        (void) rmdir(path);
        return pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

START_TEST(test_interval) {
        _cleanup_free_ char *path = test_dir_new();
        WalOptions opts = { .sync_mode = WAL_SYNC_INTERVAL, .sync_interval_usec = 3600 * USEC_PER_SEC };
        Hooks h;
        WalIO io;
        WalStats st;
        Model m;
        Wal *w;
        int dfd = test_dir_open(path);

        hooks_init(&h, &io);
        opts.io = &io;

        /* An hour apart: commits write, the thread waits for its timer. */
        w = open_model(dfd, &opts, &m);
        for (unsigned i = 0; i < 10; i++) {
                model_append(w, &m, 1);
                ck_assert_int_eq(wal_commit(w), 0);
        }
        wal_get_stats(w, &st);
        ck_assert_uint_eq(st.writes, 1 + 10);
        ck_assert_uint_eq(hooks_syncs(&h), 0);
        ck_assert_int_eq(wal_request_sync(w), 0);
        ck_assert_int_eq(wait_durable(w, 10), 0);
        ck_assert_uint_eq(hooks_syncs(&h), 1);
        wal_free(w);

        /* 5 ms apart: the timer syncs what was committed, with no request. */
        opts.sync_interval_usec = 5 * USEC_PER_MSEC;
        w = open_model(dfd, &opts, &m);
        model_append(w, &m, 3);
        ck_assert_int_eq(wal_commit(w), 0);
        ck_assert_int_eq(wait_durable(w, 13), 0);
        wal_free(w);
        close(dfd);
}
END_TEST

START_TEST(test_none) {
        _cleanup_free_ char *path = test_dir_new();
        WalOptions opts = { .sync_mode = WAL_SYNC_NONE };
        Hooks h;
        WalIO io;
        Model m, loaded;
        Wal *w;
        int dfd = test_dir_open(path);

        hooks_init(&h, &io);
        opts.io = &io;
        w = open_model(dfd, &opts, &m);
        for (unsigned i = 0; i < 10; i++) {
                model_append(w, &m, 1);
                ck_assert_int_eq(wal_commit(w), 0);
        }
        ck_assert_uint_eq(hooks_syncs(&h), 0);
        ck_assert_uint_eq(wal_durable_seqnum(w), 0);
        ck_assert_int_eq(wal_sync(w), 0);
        ck_assert_uint_eq(hooks_syncs(&h), 1);
        ck_assert_uint_eq(wal_durable_seqnum(w), 10);
        wal_free(w);

        w = open_model(dfd, &opts, &loaded);
        assert_model_eq(&loaded, &m);
        wal_free(w);
        close(dfd);
}
END_TEST

START_TEST(test_sync_mode_parse) {
        WalSyncMode mode;
        uint64_t usec;

        ck_assert_int_eq(wal_sync_mode_from_string("always", &mode, &usec), 0);
        ck_assert_int_eq(mode, WAL_SYNC_ALWAYS);
        ck_assert_int_eq(wal_sync_mode_from_string("none", &mode, &usec), 0);
        ck_assert_int_eq(mode, WAL_SYNC_NONE);
        ck_assert_int_eq(wal_sync_mode_from_string("interval:250", &mode, &usec), 0);
        ck_assert_int_eq(mode, WAL_SYNC_INTERVAL);
        ck_assert_uint_eq(usec, 250 * USEC_PER_MSEC);
        ck_assert_str_eq(wal_sync_mode_to_string(WAL_SYNC_INTERVAL), "interval");

        ck_assert_int_eq(wal_sync_mode_from_string("interval:0", &mode, &usec), -EINVAL);
        ck_assert_int_eq(wal_sync_mode_from_string("interval:", &mode, &usec), -EINVAL);
        ck_assert_int_eq(wal_sync_mode_from_string("interval:-5", &mode, &usec), -EINVAL);
        ck_assert_int_eq(wal_sync_mode_from_string("interval:5x", &mode, &usec), -EINVAL);
        ck_assert_int_eq(wal_sync_mode_from_string("interval", &mode, &usec), -EINVAL);
        ck_assert_int_eq(wal_sync_mode_from_string("everysec", &mode, &usec), -EINVAL);
        ck_assert_int_eq(wal_sync_mode_from_string("", &mode, &usec), -EINVAL);
}
END_TEST

static Suite *wal_suite(void) {
        Suite *s = suite_create("wal");
        TCase *tc = tcase_create("wal");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_record_crc_is_zlib);
        tcase_add_test(tc, test_segments);
        tcase_add_test(tc, test_torn_tail_every_offset);
        tcase_add_test(tc, test_torn_tail_every_flipped_byte);
        tcase_add_test(tc, test_prefilled_tail);
        tcase_add_test(tc, test_torn_tail_in_prefilled_space);
        tcase_add_test(tc, test_damage_refused_and_repaired);
        tcase_add_test(tc, test_damage_in_earlier_segment);
        tcase_add_test(tc, test_format_version);
        tcase_add_test(tc, test_gap_refused);
        tcase_add_test(tc, test_bad_header_refused);
        tcase_add_test(tc, test_group_commit);
        tcase_add_test(tc, test_sync_failure);
        tcase_add_test(tc, test_write_failure);
        tcase_add_test(tc, test_failed_sync_records_cut);
        tcase_add_test(tc, test_failed_cut);
        tcase_add_test(tc, test_none_closes_segments);
        tcase_add_test(tc, test_interval);
        tcase_add_test(tc, test_none);
        tcase_add_test(tc, test_sync_mode_parse);
        if (tmpfs_possible())
                tcase_add_test(tc, test_tmpfs_full);
        else
                fprintf(stderr, "No mount namespace here: the tmpfs ENOSPC case is left out "
                                "(the injected ENOSPC case still runs).\n");
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run(wal_suite());
}
