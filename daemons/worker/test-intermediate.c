/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The intermediate file format of the worker (daemons/worker/intermediate.c): varints,
 * the partition hash, the group reader over files written here (groups of a key and its
 * values, equal consecutive values as runs; see intermediate.h), and a map's file of
 * every partition: each read by its range, its index checked and damage refused. */
#include <check.h>
#include <fcntl.h>
#include <stdarg.h>
#include <ftw.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "intermediate.h"
#include "macro.h"
#include "unit-test.h"

#define TMPDIR_TEMPLATE "/tmp/mrkv-test-intermediate-XXXXXX"
static char tmpdir[] = TMPDIR_TEMPLATE;
static int dir_fd = -EBADF;

/* The directory is made and removed in the parent process (unchecked fixtures), so it
 * goes away even when a test dies; each test opens it in its own process. */
static void make_tmpdir(void) {
        memcpy(tmpdir, TMPDIR_TEMPLATE, sizeof(tmpdir));
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void remove_tmpdir(void) {
        (void) nftw(tmpdir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void setup(void) {
        dir_fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(dir_fd, 0);
}

static void teardown(void) {
        closep(&dir_fd);
        dir_fd = -EBADF;
}

/* A file being written: groups appended to a growing buffer. */
typedef struct Writer {
        uint8_t *data;
        size_t size, allocated;
        size_t boundaries[64]; /* where each group ends: a clean end of file */
        size_t n_boundaries;
} Writer;

static void writer_put(Writer *w, const void *p, size_t n) {
        if (w->size + n > w->allocated) {
                w->allocated = MAX(w->size + n, w->allocated * 2);
                w->data = realloc(w->data, w->allocated);
                ck_assert_ptr_nonnull(w->data);
        }
        if (n > 0)
                memcpy(w->data + w->size, p, n);
        w->size += n;
}

static void writer_varint(Writer *w, uint64_t u) {
        uint8_t v[VARINT_MAX];
        writer_put(w, v, varint_encode(v, u));
}

static void writer_string(Writer *w, const void *p, size_t n) {
        writer_varint(w, n);
        writer_put(w, p, n);
}

/* One group: a key, then n values given as (pointer, length) pairs, written as the map
 * side does: consecutive equal values as one run. */
static void writer_group(Writer *w, const void *key, size_t klen, unsigned n, ...) {
        const void *run = NULL;
        size_t run_len = 0;
        uint64_t repeat = 0;
        va_list ap;

        writer_string(w, key, klen);
        writer_varint(w, n);
        va_start(ap, n);
        for (unsigned i = 0; i < n; i++) {
                const void *v = va_arg(ap, const void *);
                size_t vlen = va_arg(ap, size_t);

                if (repeat > 0 && vlen == run_len && memcmp(v, run, vlen) == 0) {
                        repeat++;
                        continue;
                }
                if (repeat > 0) {
                        writer_varint(w, repeat);
                        writer_string(w, run, run_len);
                }
                run = v;
                run_len = vlen;
                repeat = 1;
        }
        va_end(ap);
        if (repeat > 0) {
                writer_varint(w, repeat);
                writer_string(w, run, run_len);
        }
        if (w->n_boundaries < ELEMENTSOF(w->boundaries))
                w->boundaries[w->n_boundaries++] = w->size;
}

static bool writer_is_boundary(const Writer *w, size_t size) {
        for (size_t i = 0; i < w->n_boundaries; i++)
                if (w->boundaries[i] == size)
                        return true;
        return false;
}

static void write_file(const char *name, const void *data, size_t size) {
        _cleanup_close_ int fd = -EBADF;

        fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, data, size), (ssize_t) size);
}

static void expect_key(GroupReader *r, const void *key, size_t klen, uint64_t nvalues) {
        ck_assert_int_eq(group_reader_next_key(r), 1);
        ck_assert_uint_eq(r->key_len, klen);
        ck_assert_mem_eq(r->key, key, klen);
        ck_assert_uint_eq(r->values_left, nvalues);
}

static void expect_value(GroupReader *r, const void *value, size_t vlen) {
        const char *v = NULL;
        size_t len = SIZE_MAX;

        ck_assert_int_eq(group_reader_next_value(r, &v, &len), 1);
        ck_assert_uint_eq(len, vlen);
        ck_assert_mem_eq(v, value, vlen);
}

static void expect_no_value(GroupReader *r) {
        const char *v;
        size_t len;

        ck_assert_int_eq(group_reader_next_value(r, &v, &len), 0);
}

/* Opens the whole file name as a run of groups. */
static int reader_open(GroupReader *r, const char *name, size_t buffer_size) {
        int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        return group_reader_open_fd(r, fd, buffer_size);
}

/* Reads a file to its end, all values included: 0 for a clean end, or the error. */
static int read_all(const char *name, size_t buffer_size) {
        GroupReader r;
        int k;

        ck_assert_int_eq(reader_open(&r, name, buffer_size), 0);
        while ((k = group_reader_next_key(&r)) > 0) {
                const char *v;
                size_t len;

                while ((k = group_reader_next_value(&r, &v, &len)) > 0)
                        ;
                if (k < 0)
                        break;
        }
        group_reader_close(&r);
        return k;
}

START_TEST(test_varint_round_trip) {
        static const uint64_t values[] = {
                0, 1, 127, 128, 255, 300, 16383, 16384, UINT32_MAX, (uint64_t) UINT32_MAX + 1,
                (uint64_t) INT64_MAX, (uint64_t) INT64_MAX + 1, UINT64_MAX - 1, UINT64_MAX,
        };
        static const size_t lengths[] = { 1, 1, 1, 2, 2, 2, 2, 3, 5, 5, 9, 10, 10, 10 };

        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                uint8_t buf[VARINT_MAX + 4];
                uint64_t back = 0xdeadbeef;
                size_t n;

                memset(buf, 0xaa, sizeof(buf));
                n = varint_encode(buf, values[i]);
                ck_assert_uint_eq(n, lengths[i]);
                ck_assert_uint_eq(buf[n], 0xaa); /* nothing written past the end */
                ck_assert_int_eq(varint_decode(buf, buf + n, &back), (int) n);
                ck_assert_uint_eq(back, values[i]);
                /* Trailing bytes do not change what is decoded. */
                ck_assert_int_eq(varint_decode(buf, buf + sizeof(buf), &back), (int) n);
                ck_assert_uint_eq(back, values[i]);
                /* Every proper prefix is incomplete. */
                for (size_t k = 0; k < n; k++)
                        ck_assert_int_eq(varint_decode(buf, buf + k, &back), 0);
        }
}
END_TEST

START_TEST(test_varint_known_encodings) {
        uint8_t buf[VARINT_MAX];
        uint64_t v;

        ck_assert_uint_eq(varint_encode(buf, 0), 1);
        ck_assert_uint_eq(buf[0], 0x00);
        ck_assert_uint_eq(varint_encode(buf, 127), 1);
        ck_assert_uint_eq(buf[0], 0x7f);
        ck_assert_uint_eq(varint_encode(buf, 128), 2);
        ck_assert_mem_eq(buf, "\x80\x01", 2);
        ck_assert_uint_eq(varint_encode(buf, 300), 2);
        ck_assert_mem_eq(buf, "\xac\x02", 2);
        ck_assert_uint_eq(varint_encode(buf, (uint64_t) 1 << 32), 5);
        ck_assert_mem_eq(buf, "\x80\x80\x80\x80\x10", 5);
        ck_assert_uint_eq(varint_encode(buf, UINT64_MAX), 10);
        ck_assert_mem_eq(buf, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10);

        ck_assert_int_eq(varint_decode((const uint8_t *) "\xac\x02", (const uint8_t *) "\xac\x02" + 2, &v), 2);
        ck_assert_uint_eq(v, 300);
}
END_TEST

START_TEST(test_varint_invalid) {
        uint8_t buf[16] = {};
        uint64_t v = 7;

        /* Empty input and a sequence cut short are incomplete, not invalid. */
        ck_assert_int_eq(varint_decode(buf, buf, &v), 0);
        memset(buf, 0x80, sizeof(buf));
        for (size_t k = 1; k < VARINT_MAX; k++)
                ck_assert_int_eq(varint_decode(buf, buf + k, &v), 0);
        /* Ten continuation bytes can never end in a 64-bit value. */
        ck_assert_int_eq(varint_decode(buf, buf + VARINT_MAX, &v), -EBADMSG);
        ck_assert_int_eq(varint_decode(buf, buf + sizeof(buf), &v), -EBADMSG);
        ck_assert_uint_eq(v, 7); /* untouched on failure */

        /* The tenth byte carries bit 63 only: more would overflow 64 bits. */
        memset(buf, 0xff, 9);
        buf[9] = 0x02;
        ck_assert_int_eq(varint_decode(buf, buf + 10, &v), -EBADMSG);
        buf[9] = 0x81;
        ck_assert_int_eq(varint_decode(buf, buf + 10, &v), -EBADMSG);
        buf[9] = 0x01;
        ck_assert_int_eq(varint_decode(buf, buf + 10, &v), 10);
        ck_assert_uint_eq(v, UINT64_MAX);
}
END_TEST

START_TEST(test_fnv1a32) {
        ck_assert_uint_eq(fnv1a32("", 0), 0x811c9dc5U);
        ck_assert_uint_eq(fnv1a32("a", 1), 0xe40c292cU);
        ck_assert_uint_eq(fnv1a32("foobar", 6), 0xbf9cf968U);
        /* Bytes past n do not count; NUL bytes within n do. */
        ck_assert_uint_eq(fnv1a32("ab", 1), 0xe40c292cU);
        ck_assert_uint_ne(fnv1a32("a\0", 2), fnv1a32("a", 1));
        /* Bytes above 0x7f are taken unsigned. */
        ck_assert_uint_eq(fnv1a32("\xff", 1), (0x811c9dc5U ^ 0xffU) * 16777619U);
}
END_TEST

START_TEST(test_reader_empty_file) {
        GroupReader r;

        write_file("empty", "", 0);
        ck_assert_int_eq(reader_open(&r, "empty", 65536), 0);
        ck_assert_int_eq(group_reader_next_key(&r), 0);
        ck_assert_int_eq(group_reader_next_key(&r), 0); /* and stays at the end */
        expect_no_value(&r);
        group_reader_close(&r);
        ck_assert_int_eq(r.fd, -EBADF);
        ck_assert_ptr_null(r.buf);
}
END_TEST

START_TEST(test_reader_missing_file) {
        const char *reason = "unset";
        GroupReader r;

        ck_assert_int_eq(group_reader_open_partition(&r, dir_fd, "does-not-exist", 4, 0, 65536, &reason),
                         -ENOENT);
        ck_assert_ptr_null(reason);
        group_reader_close(&r); /* safe after a failed open */
}
END_TEST

/* Keys and values of any bytes, empty ones included, through buffers of every size. */
START_TEST(test_reader_odd_groups) {
        static const char nul_key[] = { 'k', '\0', 'y' };
        static const char nul_value[] = { '\0', '\0', 'v', '\0' };
        static const size_t buffer_sizes[] = { 0, 1, 7, 20, 21, 64, 4096, 65536 };
        Writer w = {};

        writer_group(&w, "", (size_t) 0, 1, "", (size_t) 0);
        writer_group(&w, "", (size_t) 0, 1, "value of an empty key", (size_t) 21);
        writer_group(&w, "no values", (size_t) 9, 0);
        writer_group(&w, "two words", (size_t) 9, 2, "line one\nline two\n", (size_t) 18, "", (size_t) 0);
        writer_group(&w, "line\nbreak", (size_t) 10, 1, " leading space", (size_t) 14);
        writer_group(&w, nul_key, sizeof(nul_key), 2, nul_value, sizeof(nul_value), "\0", (size_t) 1);
        writer_group(&w, "\xff\xfe", (size_t) 2, 3, "\x80", (size_t) 1, "1", (size_t) 1, "1", (size_t) 1);
        write_file("odd", w.data, w.size);
        free(w.data);

        for (size_t i = 0; i < ELEMENTSOF(buffer_sizes); i++) {
                GroupReader r;

                ck_assert_int_eq(reader_open(&r, "odd", buffer_sizes[i]), 0);
                expect_key(&r, "", 0, 1);
                expect_value(&r, "", 0);
                expect_no_value(&r);
                expect_key(&r, "", 0, 1);
                expect_value(&r, "value of an empty key", 21);
                expect_key(&r, "no values", 9, 0);
                expect_no_value(&r);
                expect_key(&r, "two words", 9, 2);
                expect_value(&r, "line one\nline two\n", 18);
                expect_value(&r, "", 0);
                expect_no_value(&r);
                expect_key(&r, "line\nbreak", 10, 1);
                expect_value(&r, " leading space", 14);
                expect_key(&r, nul_key, sizeof(nul_key), 2);
                expect_value(&r, nul_value, sizeof(nul_value));
                expect_value(&r, "\0", 1);
                expect_key(&r, "\xff\xfe", 2, 3);
                expect_value(&r, "\x80", 1);
                expect_value(&r, "1", 1);
                expect_value(&r, "1", 1);
                expect_no_value(&r);
                ck_assert_int_eq(group_reader_next_key(&r), 0);
                group_reader_close(&r);
        }
}
END_TEST

/* Moving to the next key skips the values not read, wherever the reader stopped. */
START_TEST(test_reader_skips_unread_values) {
        Writer w = {};
        GroupReader r;

        writer_group(&w, "a", (size_t) 1, 3, "1", (size_t) 1, "22", (size_t) 2, "333", (size_t) 3);
        writer_group(&w, "b", (size_t) 1, 2, "x", (size_t) 1, "y", (size_t) 1);
        writer_group(&w, "c", (size_t) 1, 1, "z", (size_t) 1);
        write_file("skip", w.data, w.size);
        free(w.data);

        ck_assert_int_eq(reader_open(&r, "skip", 21), 0);
        expect_key(&r, "a", 1, 3);
        expect_value(&r, "1", 1);
        expect_key(&r, "b", 1, 2); /* "22" and "333" skipped */
        expect_key(&r, "c", 1, 1); /* none of b's read */
        expect_value(&r, "z", 1);
        ck_assert_int_eq(group_reader_next_key(&r), 0);
        group_reader_close(&r);
}
END_TEST

START_TEST(test_reader_large_group) {
        const size_t big = 200 * 1024; /* over three times the 64 KiB read buffer */
        const size_t big_key = 70000;
        _cleanup_free_ char *value = NULL, *key = NULL;
        Writer w = {};
        GroupReader r;

        value = malloc(big);
        key = malloc(big_key);
        ck_assert_ptr_nonnull(value);
        ck_assert_ptr_nonnull(key);
        for (size_t i = 0; i < big; i++)
                value[i] = (char) (i * 7 + i / 251);
        for (size_t i = 0; i < big_key; i++)
                key[i] = (char) ('a' + i % 26);

        /* Small groups around the big ones, so they straddle buffer refills. */
        writer_group(&w, "before", (size_t) 6, 1, "1", (size_t) 1);
        writer_group(&w, "big", (size_t) 3, 3, "s", (size_t) 1, value, big, "t", (size_t) 1);
        writer_group(&w, "middle", (size_t) 6, 1, "2", (size_t) 1);
        writer_group(&w, key, big_key, 1, "k", (size_t) 1);
        for (unsigned i = 0; i < 5000; i++) {
                char k[32];
                int n = snprintf(k, sizeof(k), "key-%05u", i);
                writer_group(&w, k, (size_t) n, 1, "x", (size_t) 1);
        }
        write_file("large", w.data, w.size);
        free(w.data);

        ck_assert_int_eq(reader_open(&r, "large", 64 * 1024), 0);
        expect_key(&r, "before", 6, 1);
        expect_value(&r, "1", 1);
        expect_key(&r, "big", 3, 3);
        expect_value(&r, "s", 1);
        expect_value(&r, value, big);
        expect_value(&r, "t", 1);
        expect_key(&r, "middle", 6, 1);
        expect_value(&r, "2", 1);
        expect_key(&r, key, big_key, 1);
        expect_value(&r, "k", 1);
        for (unsigned i = 0; i < 5000; i++) {
                char k[32];
                int n = snprintf(k, sizeof(k), "key-%05u", i);
                expect_key(&r, k, (size_t) n, 1);
                expect_value(&r, "x", 1);
        }
        ck_assert_int_eq(group_reader_next_key(&r), 0);
        group_reader_close(&r);

        /* Skipping the big value without reading it works as well. */
        ck_assert_int_eq(reader_open(&r, "large", 64 * 1024), 0);
        expect_key(&r, "before", 6, 1);
        expect_key(&r, "big", 3, 3);
        expect_key(&r, "middle", 6, 1);
        group_reader_close(&r);
}
END_TEST

/* Every cut of a file is either at a group boundary, a valid shorter file, or
 * leaves it corrupt: never a silently short group. */
START_TEST(test_reader_truncated) {
        static const size_t buffer_sizes[] = { 1, 21, 65536 };
        Writer w = {};

        writer_group(&w, "first", (size_t) 5, 1, "complete", (size_t) 8);
        writer_group(&w, "second", (size_t) 6, 2, "cut off here", (size_t) 12, "and here", (size_t) 8);
        writer_group(&w, "", (size_t) 0, 1, "", (size_t) 0);
        for (size_t size = 1; size < w.size; size++) {
                char name[32];

                snprintf(name, sizeof(name), "cut-%zu", size);
                write_file(name, w.data, size);
                for (size_t i = 0; i < ELEMENTSOF(buffer_sizes); i++) {
                        int k = read_all(name, buffer_sizes[i]);
                        if (writer_is_boundary(&w, size))
                                ck_assert_msg(k == 0, "cut at boundary %zu: %d", size, k);
                        else
                                ck_assert_msg(k == -EBADMSG, "cut at %zu (buffer %zu): %d", size,
                                              buffer_sizes[i], k);
                }
        }
        write_file("whole", w.data, w.size);
        ck_assert_int_eq(read_all("whole", 21), 0);
        free(w.data);
}
END_TEST

START_TEST(test_reader_truncated_large) {
        const size_t big = 100 * 1024;
        _cleanup_free_ char *value = calloc(1, big);
        Writer w = {};

        ck_assert_ptr_nonnull(value);
        writer_group(&w, "k", (size_t) 1, 1, value, big);
        write_file("cut-large", w.data, w.size - 1);
        free(w.data);
        ck_assert_int_eq(read_all("cut-large", 65536), -EBADMSG);
}
END_TEST

START_TEST(test_reader_bad_varint) {
        static const uint8_t bad[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
        static const uint8_t over[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 'k' };

        write_file("bad-varint", bad, sizeof(bad));
        ck_assert_int_eq(read_all("bad-varint", 65536), -EBADMSG);
        write_file("over-varint", over, sizeof(over));
        ck_assert_int_eq(read_all("over-varint", 65536), -EBADMSG);

        /* A count that promises more values than the file holds. */
        write_file("bad-count", "\x01k\x05\x01\x01v", 6);
        ck_assert_int_eq(read_all("bad-count", 65536), -EBADMSG);
}
END_TEST

/* Runs: one value stored once and handed out repeat times. */
START_TEST(test_reader_runs) {
        /* "k": a a a b (runs 3 × "a", 1 × "b"); "l": c c; "m": d */
        static const char file[] = "\x01k\x04\x03\x01" "a\x01\x01" "b"
                                   "\x01l\x02\x02\x01" "c"
                                   "\x01m\x01\x01\x01" "d";
        GroupReader r;

        write_file("runs", file, sizeof(file) - 1);
        ck_assert_int_eq(reader_open(&r, "runs", 21), 0);
        expect_key(&r, "k", 1, 4);
        expect_value(&r, "a", 1);
        expect_value(&r, "a", 1);
        expect_value(&r, "a", 1);
        expect_value(&r, "b", 1);
        expect_no_value(&r);
        /* Leaving a run in the middle skips the rest of it. */
        expect_key(&r, "l", 1, 2);
        expect_value(&r, "c", 1);
        expect_key(&r, "m", 1, 1);
        expect_value(&r, "d", 1);
        ck_assert_int_eq(group_reader_next_key(&r), 0);
        group_reader_close(&r);

        /* A run of nothing, and runs adding up to more values than the group has. */
        write_file("run-zero", "\x01k\x01\x00\x01" "a", 6);
        ck_assert_int_eq(read_all("run-zero", 65536), -EBADMSG);
        write_file("run-over", "\x01k\x02\x03\x01" "a", 6);
        ck_assert_int_eq(read_all("run-over", 65536), -EBADMSG);
        write_file("run-over2", "\x01k\x02\x01\x01" "a\x02\x01" "b", 9);
        ck_assert_int_eq(read_all("run-over2", 65536), -EBADMSG);
}
END_TEST

START_TEST(test_reader_huge_length) {
        /* A corrupt key length of 16 MiB in a file of 6 bytes: the file is too short. */
        static const uint8_t huge[] = { 0x80, 0x80, 0x80, 0x08, 0x00, 'k' };

        write_file("huge", huge, sizeof(huge));
        ck_assert_int_eq(read_all("huge", 65536), -EBADMSG);
}
END_TEST

/* A corrupt length claims a key of 2^40 bytes in a file of 4 KiB, before the reader
 * reaches the end of the file: an error, not a request for that much memory (-ENOMEM,
 * or an abort under ASan). */
START_TEST(test_reader_corrupt_length_not_allocated) {
        static const uint8_t huge[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x20 };
        uint8_t file[4096] = {};

        memcpy(file, huge, sizeof(huge));
        write_file("huge", file, sizeof(file));
        ck_assert_int_eq(read_all("huge", 64), -EBADMSG);

        /* The same for a value: key "k", one run of one value of 2^40 bytes. */
        memcpy(file, "\x01k\x01\x01\x80\x80\x80\x80\x80\x20", 10);
        write_file("huge-value", file, sizeof(file));
        ck_assert_int_eq(read_all("huge-value", 64), -EBADMSG);
}
END_TEST

/* A map's file of four partitions, 1 and 3 empty, then its trailer; ends[]: where each
 * partition ends. */
static void write_map_file(const char *name, uint64_t ends[4]) {
        Writer w = {};
        uint8_t trailer[4 * INTERMEDIATE_ENTRY_SIZE + INTERMEDIATE_FOOTER_SIZE];

        writer_group(&w, "apple", 5, 2, "1", (size_t) 1, "1", (size_t) 1);
        writer_group(&w, "berry", 5, 1, "7", (size_t) 1);
        ends[0] = ends[1] = w.size;
        writer_group(&w, "cherry", 6, 1, "x", (size_t) 1);
        ends[2] = ends[3] = w.size;
        ck_assert_uint_eq(intermediate_trailer_size(4), sizeof(trailer));
        intermediate_trailer_encode(trailer, ends, 4);
        writer_put(&w, trailer, sizeof(trailer));
        write_file(name, w.data, w.size);
        free(w.data);
}

/* The keys of one partition of a map's file, joined by spaces; *ret_index_read (if not
 * NULL): the bytes of index read to open it. */
static char *read_partition_counted(const char *name, unsigned nreduce, unsigned partition,
                                    uint64_t *ret_index_read) {
        _cleanup_free_ char *keys = strdup("");
        const char *reason = NULL;
        GroupReader r;
        int k;

        ck_assert_msg(group_reader_open_partition(&r, dir_fd, name, nreduce, partition, 4096, &reason) == 0, "%s",
                      reason ?: "");
        if (ret_index_read)
                *ret_index_read = r.index_read;
        while ((k = group_reader_next_key(&r)) > 0) {
                char *n;
                ck_assert_int_ge(asprintf(&n, "%s%s%.*s", keys, *keys ? " " : "", (int) r.key_len, r.key), 0);
                free(keys);
                keys = n;
        }
        ck_assert_int_eq(k, 0);
        group_reader_close(&r);
        return TAKE_PTR(keys);
}

static char *read_partition(const char *name, unsigned nreduce, unsigned partition) {
        return read_partition_counted(name, nreduce, partition, NULL);
}

/* Asserts partition of name holds the keys (joined by spaces). */
static void expect_partition(const char *name, unsigned nreduce, unsigned partition, const char *keys) {
        char *k = read_partition(name, nreduce, partition);

        ck_assert_str_eq(k, keys);
        free(k);
}

/* Each partition reads only its range; empty ones are empty; a file of empty partitions
 * only is its trailer; a small trailer is read whole. */
START_TEST(test_map_file_round_trip) {
        uint8_t buf[4 * INTERMEDIATE_ENTRY_SIZE + INTERMEDIATE_FOOTER_SIZE];
        uint8_t one[INTERMEDIATE_ENTRY_SIZE + INTERMEDIATE_FOOTER_SIZE];
        uint64_t ends[4], off, len, index_read;
        const char *reason = NULL;
        char *keys;
        Writer w = {};

        write_map_file("mr-0", ends);
        expect_partition("mr-0", 4, 0, "apple berry");
        expect_partition("mr-0", 4, 1, "");
        expect_partition("mr-0", 4, 2, "cherry");
        keys = read_partition_counted("mr-0", 4, 3, &index_read);
        ck_assert_str_eq(keys, "");
        free(keys);
        ck_assert_uint_eq(index_read, sizeof(buf));

        /* The parse gives the ranges as written. */
        intermediate_trailer_encode(buf, ends, 4);
        ck_assert_int_eq(intermediate_trailer_parse(buf, sizeof(buf), ends[3] + sizeof(buf), 4, 2, &off, &len,
                                                    &reason),
                         0);
        ck_assert_uint_eq(off, ends[1]);
        ck_assert_uint_eq(len, ends[2] - ends[1]);
        ck_assert_int_eq(intermediate_trailer_parse(buf, sizeof(buf), ends[3] + sizeof(buf), 4, 0, &off, &len,
                                                    &reason),
                         0);
        ck_assert_uint_eq(off, 0);
        ck_assert_uint_eq(len, ends[0]);

        /* One partition, empty: the file is its trailer. */
        ck_assert_uint_eq(intermediate_trailer_size(1), sizeof(one));
        intermediate_trailer_encode(one, (uint64_t[]) { 0 }, 1);
        write_file("mr-1", one, sizeof(one));
        expect_partition("mr-1", 1, 0, "");

        /* One partition, not empty. */
        writer_group(&w, "apple", 5, 1, "1", (size_t) 1);
        writer_group(&w, "berry", 5, 1, "1", (size_t) 1);
        intermediate_trailer_encode(one, (uint64_t[]) { w.size }, 1);
        writer_put(&w, one, sizeof(one));
        write_file("mr-2", w.data, w.size);
        expect_partition("mr-2", 1, 0, "apple berry");
        free(w.data);
}
END_TEST

/* Opens partition of name for nreduce partitions: -EBADMSG with a reason holding what. */
static void expect_refused(const char *name, unsigned nreduce, unsigned partition, const char *what) {
        const char *reason = NULL;
        GroupReader r;

        ck_assert_int_eq(group_reader_open_partition(&r, dir_fd, name, nreduce, partition, 4096, &reason), -EBADMSG);
        ck_assert_ptr_nonnull(reason);
        ck_assert_msg(strstr(reason, what), "'%s' does not say '%s'", reason, what);
        ck_assert_int_eq(r.fd, -EBADF);
        group_reader_close(&r);
}

/* The bytes of file name, *ret_size of them. */
static uint8_t *read_whole(const char *name, size_t *ret_size) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
        uint8_t *data;
        struct stat st;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fstat(fd, &st), 0);
        data = malloc(MAX((size_t) st.st_size, (size_t) 1));
        ck_assert_ptr_nonnull(data);
        ck_assert_int_eq(read(fd, data, (size_t) st.st_size), st.st_size);
        *ret_size = (size_t) st.st_size;
        return data;
}

/* Writes from into to with the byte at (from the end) xor'd with flip. */
static void damage(const char *from, const char *to, size_t at_from_end, uint8_t flip) {
        size_t size;
        _cleanup_free_ uint8_t *data = read_whole(from, &size);

        data[size - at_from_end] ^= flip;
        write_file(to, data, size);
}

/* Writes from into to with index entries a and b of its nreduce swapped. */
static void swap_entries(const char *from, const char *to, unsigned nreduce, unsigned a, unsigned b) {
        size_t size;
        _cleanup_free_ uint8_t *data = read_whole(from, &size);
        uint8_t *index = data + size - intermediate_trailer_size(nreduce), t[INTERMEDIATE_ENTRY_SIZE];

        memcpy(t, index + (size_t) a * INTERMEDIATE_ENTRY_SIZE, sizeof(t));
        memcpy(index + (size_t) a * INTERMEDIATE_ENTRY_SIZE, index + (size_t) b * INTERMEDIATE_ENTRY_SIZE, sizeof(t));
        memcpy(index + (size_t) b * INTERMEDIATE_ENTRY_SIZE, t, sizeof(t));
        write_file(to, data, size);
}

/* Ten bytes of data, then a trailer of four partitions ending at ends, checksums valid. */
static void write_with_ends(const char *name, const uint64_t ends[4]) {
        uint8_t data[10 + 4 * INTERMEDIATE_ENTRY_SIZE + INTERMEDIATE_FOOTER_SIZE];

        memcpy(data, "0123456789", 10);
        intermediate_trailer_encode(data + 10, ends, 4);
        write_file(name, data, sizeof(data));
}

/* The entry of partition p, from the end of a file of four partitions. */
#define ENTRY_FROM_END(p) (INTERMEDIATE_FOOTER_SIZE + (4 - (p)) * INTERMEDIATE_ENTRY_SIZE)

/* Every kind of damage to the index a reduce relies on is refused, each with its reason;
 * damage to entries it does not read does not stop it. */
START_TEST(test_map_file_refused) {
        uint64_t ends[4];

        write_map_file("mr-0", ends);
        /* The footer: R | version | crc | magic. */
        damage("mr-0", "magic", 1, 0x01);
        expect_refused("magic", 4, 0, "not an intermediate file");
        damage("mr-0", "version", 16, 0x02);
        expect_refused("version", 4, 0, "another version");
        damage("mr-0", "crc", 12, 0x10);
        expect_refused("crc", 4, 0, "checksum of its index's footer");
        damage("mr-0", "nreduce", 20, 0x01);
        expect_refused("nreduce", 4, 0, "checksum of its index's footer");
        /* A job of another partition count. */
        expect_refused("mr-0", 3, 0, "another number of reduce partitions");
        expect_refused("mr-0", 5, 0, "another number of reduce partitions");

        /* Partition 2 reads entries 1 (its start) and 2 (its end): either one's end or
         * checksum damaged is refused. */
        damage("mr-0", "start", ENTRY_FROM_END(1), 0x01);
        expect_refused("start", 4, 2, "checksum of its index entry");
        damage("mr-0", "start-crc", ENTRY_FROM_END(1) - 8, 0x01);
        expect_refused("start-crc", 4, 2, "checksum of its index entry");
        damage("mr-0", "end", ENTRY_FROM_END(2) - 3, 0x80);
        expect_refused("end", 4, 2, "checksum of its index entry");
        damage("mr-0", "end-crc", ENTRY_FROM_END(2) - 11, 0x04);
        expect_refused("end-crc", 4, 2, "checksum of its index entry");
        expect_refused("end-crc", 4, 3, "checksum of its index entry");
        /* Partition 0 reads entry 0 only. */
        damage("mr-0", "first", ENTRY_FROM_END(0), 0x01);
        expect_refused("first", 4, 0, "checksum of its index entry");
        expect_partition("end-crc", 4, 0, "apple berry");
        expect_partition("end-crc", 4, 1, "");

        /* Entries in another's place, valid each but not of that partition. */
        swap_entries("mr-0", "swapped", 4, 1, 2);
        expect_refused("swapped", 4, 2, "checksum of its index entry");
        expect_refused("swapped", 4, 1, "checksum of its index entry");
        swap_entries("mr-0", "swapped-equal", 4, 0, 1); /* equal ends, other partitions */
        expect_refused("swapped-equal", 4, 0, "checksum of its index entry");
        expect_partition("swapped-equal", 4, 3, "");

        /* Ends with valid checksums, but descending, past the index or short of it. */
        write_with_ends("descending", (uint64_t[]) { 6, 4, 8, 10 });
        expect_refused("descending", 4, 1, "do not ascend");
        write_with_ends("past-index", (uint64_t[]) { 2, 4, 11, 11 });
        expect_refused("past-index", 4, 2, "past the start of its index");
        write_with_ends("past-index-last", (uint64_t[]) { 2, 4, 8, 12 });
        expect_refused("past-index-last", 4, 3, "past the start of its index");
        write_with_ends("short-of-index", (uint64_t[]) { 2, 4, 8, 9 });
        expect_refused("short-of-index", 4, 3, "do not span");

        /* Shorter than a footer, or than the trailer its footer tells. */
        write_file("empty", "", 0);
        expect_refused("empty", 4, 0, "too short");
        write_file("short", "MRKVMAP\n", 8);
        expect_refused("short", 4, 0, "too short");
        expect_refused("mr-0", 4000, 0, "another number"); /* not "too short": R comes first */
}
END_TEST

/* A map's file cut short at every length: no trailer at its end, or part of one. */
START_TEST(test_map_file_truncated) {
        uint64_t ends[4];
        size_t size;
        _cleanup_free_ uint8_t *data = NULL;

        write_map_file("mr-0", ends);
        data = read_whole("mr-0", &size);
        for (size_t cut = 0; cut < size; cut++) {
                write_file("cut", data, cut);
                for (unsigned p = 0; p < 4; p++) {
                        const char *reason = NULL;
                        GroupReader r;

                        ck_assert_int_eq(group_reader_open_partition(&r, dir_fd, "cut", 4, p, 4096, &reason),
                                         -EBADMSG);
                        ck_assert_ptr_nonnull(reason);
                        group_reader_close(&r);
                }
        }
}
END_TEST

#define LARGE_R 100000U

/* A file of LARGE_R partitions, 0, the middle one and the last not empty: a reduce reads
 * its footer and two entries, not the 1.2 MB index. */
static void write_large_map_file(const char *name) {
        _cleanup_free_ uint64_t *ends = calloc(LARGE_R, sizeof(uint64_t));
        _cleanup_free_ uint8_t *trailer = malloc(intermediate_trailer_size(LARGE_R));
        Writer w = {};

        ck_assert_ptr_nonnull(ends);
        ck_assert_ptr_nonnull(trailer);
        for (unsigned p = 0; p < LARGE_R; p++) {
                if (p == 0)
                        writer_group(&w, "first", 5, 1, "1", (size_t) 1);
                else if (p == LARGE_R / 2)
                        writer_group(&w, "middle", 6, 2, "1", (size_t) 1, "2", (size_t) 1);
                else if (p == LARGE_R - 1)
                        writer_group(&w, "last", 4, 1, "1", (size_t) 1);
                ends[p] = w.size;
        }
        intermediate_trailer_encode(trailer, ends, LARGE_R);
        writer_put(&w, trailer, intermediate_trailer_size(LARGE_R));
        write_file(name, w.data, w.size);
        free(w.data);
}

START_TEST(test_map_file_large_index_read_in_part) {
        uint64_t index_read;
        size_t size;
        char *keys;
        _cleanup_free_ uint8_t *data = NULL;

        write_large_map_file("mr-0");
        ck_assert_uint_gt(intermediate_trailer_size(LARGE_R), 1000000);

        keys = read_partition_counted("mr-0", LARGE_R, LARGE_R / 2, &index_read);
        ck_assert_str_eq(keys, "middle");
        free(keys);
        ck_assert_uint_eq(index_read, INTERMEDIATE_FOOTER_SIZE + 2 * INTERMEDIATE_ENTRY_SIZE);

        keys = read_partition_counted("mr-0", LARGE_R, 0, &index_read);
        ck_assert_str_eq(keys, "first");
        free(keys);
        ck_assert_uint_eq(index_read, INTERMEDIATE_FOOTER_SIZE + INTERMEDIATE_ENTRY_SIZE);

        expect_partition("mr-0", LARGE_R, LARGE_R / 2 - 1, "");
        expect_partition("mr-0", LARGE_R, LARGE_R / 2 + 1, "");
        expect_partition("mr-0", LARGE_R, LARGE_R - 1, "last");

        /* Damage is refused on this path too. */
        expect_refused("mr-0", LARGE_R - 1, 0, "another number");
        damage("mr-0", "magic", 1, 0x01);
        expect_refused("magic", LARGE_R, LARGE_R / 2, "not an intermediate file");
        damage("mr-0", "entry", INTERMEDIATE_FOOTER_SIZE + (LARGE_R - LARGE_R / 2) * INTERMEDIATE_ENTRY_SIZE, 0x01);
        expect_refused("entry", LARGE_R, LARGE_R / 2, "checksum of its index entry");
        expect_partition("entry", LARGE_R, LARGE_R - 1, "last");
        swap_entries("mr-0", "swapped", LARGE_R, LARGE_R / 2 - 1, LARGE_R / 2);
        expect_refused("swapped", LARGE_R, LARGE_R / 2, "checksum of its index entry");

        /* Cut at the footer, inside the index and before it. */
        data = read_whole("mr-0", &size);
        for (size_t cut = 1; cut <= size; cut += cut < 64 ? 1 : size / 16) {
                write_file("cut", data, size - cut);
                expect_refused("cut", LARGE_R, LARGE_R / 2, "");
        }
}
END_TEST

/* A range that ends inside a group (an index that does not match the data) reads as a
 * truncated file, not into the next partition. */
START_TEST(test_map_file_range_is_the_end) {
        uint8_t trailer[2 * INTERMEDIATE_ENTRY_SIZE + INTERMEDIATE_FOOTER_SIZE];
        const char *reason = NULL;
        GroupReader r;
        Writer w = {};

        writer_group(&w, "apple", 5, 1, "1", (size_t) 1);
        writer_group(&w, "berry", 5, 1, "1", (size_t) 1);
        intermediate_trailer_encode(trailer, (uint64_t[]) { 3, w.size }, 2);
        writer_put(&w, trailer, intermediate_trailer_size(2));
        write_file("mr-0", w.data, w.size);
        ck_assert_int_eq(group_reader_open_partition(&r, dir_fd, "mr-0", 2, 0, 4096, &reason), 0);
        ck_assert_int_eq(group_reader_next_key(&r), -EBADMSG);
        group_reader_close(&r);
        free(w.data);
}
END_TEST

static Suite *regular_suite(void) {
        Suite *s = suite_create("intermediate");
        TCase *tc;

        tc = tcase_create("encoding");
        tcase_add_test(tc, test_varint_round_trip);
        tcase_add_test(tc, test_varint_known_encodings);
        tcase_add_test(tc, test_varint_invalid);
        tcase_add_test(tc, test_fnv1a32);
        suite_add_tcase(s, tc);

        tc = tcase_create("reader");
        tcase_add_unchecked_fixture(tc, make_tmpdir, remove_tmpdir);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_reader_empty_file);
        tcase_add_test(tc, test_reader_missing_file);
        tcase_add_test(tc, test_reader_odd_groups);
        tcase_add_test(tc, test_reader_skips_unread_values);
        tcase_add_test(tc, test_reader_runs);
        tcase_add_test(tc, test_reader_large_group);
        tcase_add_test(tc, test_reader_truncated);
        tcase_add_test(tc, test_reader_truncated_large);
        tcase_add_test(tc, test_reader_bad_varint);
        tcase_add_test(tc, test_reader_huge_length);
        tcase_add_test(tc, test_reader_corrupt_length_not_allocated);
        tcase_add_test(tc, test_map_file_round_trip);
        tcase_add_test(tc, test_map_file_refused);
        tcase_add_test(tc, test_map_file_truncated);
        tcase_add_test(tc, test_map_file_large_index_read_in_part);
        tcase_add_test(tc, test_map_file_range_is_the_end);
        suite_add_tcase(s, tc);
        return s;
}

int main(int argc, char **argv) {
        return unit_run("intermediate", regular_suite(), NULL, argc, argv);
}
