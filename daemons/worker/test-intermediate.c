/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The intermediate file format of the worker (daemons/worker/intermediate.c): varints,
 * the partition hash, and the group reader over files written here (groups of a key and
 * its values, equal consecutive values as runs; see intermediate.h). */
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

/* Reads a file to its end, all values included: 0 for a clean end, or the error. */
static int read_all(const char *name, size_t buffer_size) {
        GroupReader r;
        int k;

        ck_assert_int_eq(group_reader_open(&r, dir_fd, name, buffer_size), 0);
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
        ck_assert_int_eq(group_reader_open(&r, dir_fd, "empty", 65536), 0);
        ck_assert_int_eq(group_reader_next_key(&r), 0);
        ck_assert_int_eq(group_reader_next_key(&r), 0); /* and stays at the end */
        expect_no_value(&r);
        group_reader_close(&r);
        ck_assert_int_eq(r.fd, -EBADF);
        ck_assert_ptr_null(r.buf);
}
END_TEST

START_TEST(test_reader_missing_file) {
        GroupReader r;

        ck_assert_int_eq(group_reader_open(&r, dir_fd, "does-not-exist", 65536), -ENOENT);
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

                ck_assert_int_eq(group_reader_open(&r, dir_fd, "odd", buffer_sizes[i]), 0);
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

        ck_assert_int_eq(group_reader_open(&r, dir_fd, "skip", 21), 0);
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

        ck_assert_int_eq(group_reader_open(&r, dir_fd, "large", 64 * 1024), 0);
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
        ck_assert_int_eq(group_reader_open(&r, dir_fd, "large", 64 * 1024), 0);
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
        ck_assert_int_eq(group_reader_open(&r, dir_fd, "runs", 21), 0);
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
        suite_add_tcase(s, tc);
        return s;
}

int main(int argc, char **argv) {
        return unit_run("intermediate", regular_suite(), NULL, argc, argv);
}
