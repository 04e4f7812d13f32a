/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Splits of an input file (daemons/worker/split.c): cut anywhere, the splits read every
 * line of the file exactly once, whole, in order. */
#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "macro.h"
#include "split.h"
#include "unit-test.h"

/* An unlinked file holding text. */
static int file_with(const char *text, size_t size) {
        char path[] = "/tmp/mrkv-test-split-XXXXXX";
        int fd = mkostemp(path, O_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(write(fd, text, size), (ssize_t) size);
        return fd;
}

static char *read_split(int fd, uint64_t offset, uint64_t length, size_t *ret_size) {
        char *buf = NULL;

        ck_assert_int_eq(split_read(fd, offset, length, UINT64_MAX, &buf, ret_size), 0);
        ck_assert_ptr_nonnull(buf);
        ck_assert_int_eq(buf[*ret_size], '\0');
        return buf;
}

/* A split's text is whole lines: it starts where a line starts (at offset 0 or after a
 * newline of the file) and ends with a newline or at the end of the file. */
static void check_whole_lines(const char *file, size_t file_size, size_t at, const char *text, size_t size) {
        if (size == 0)
                return;
        ck_assert_msg(at == 0 || file[at - 1] == '\n', "a split starts inside a line at %zu", at);
        ck_assert_msg(text[size - 1] == '\n' || at + size == file_size, "a split ends inside a line at %zu",
                      at + size);
}

/* Cuts the file at every point of cuts[0..n) (ascending, the first 0) into ranges, the
 * last one to the end (its length as given), and checks the splits' texts add up to the
 * file. */
static void check_cuts(int fd, const char *file, size_t size, const uint64_t *cuts, size_t n, uint64_t last_length) {
        size_t at = 0;

        for (size_t i = 0; i < n; i++) {
                uint64_t length = i + 1 < n ? cuts[i + 1] - cuts[i] : last_length;
                size_t got;
                char *text = read_split(fd, cuts[i], length, &got);

                /* Each split's text is the next part of the file. */
                ck_assert_msg(at + got <= size, "splits read %zu bytes of a %zu-byte file", at + got, size);
                ck_assert_msg(got == 0 || memcmp(file + at, text, got) == 0, "split at %" PRIu64 " reads out of place",
                              cuts[i]);
                check_whole_lines(file, size, at, text, got);
                at += got;
                free(text);
        }
        ck_assert_msg(at == size, "splits read %zu bytes of a %zu-byte file", at, size);
}

static const struct {
        const char *text;
        size_t size;
} files[] = {
        { "", 0 },
        { "a", 1 },
        { "\n", 1 },
        { "\n\n\n", 3 },
        { "one\ntwo\n", 8 },
        { "a\nbb\n\nccc\nd", 11 },                                   /* no trailing newline */
        { "short\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\ny\n\nz", 48 }, /* a line longer than most splits */
        { "nul\0in\nthe\0line\n", 17 },
};

/* Two splits, cut at every offset; and the splits of every size. */
START_TEST(test_split_every_offset) {
        for (size_t f = 0; f < ELEMENTSOF(files); f++) {
                const char *text = files[f].text;
                size_t size = files[f].size;
                _cleanup_close_ int fd = file_with(text, size);

                for (uint64_t c = 0; c <= size; c++)
                        check_cuts(fd, text, size, (const uint64_t[]) { 0, c }, 2, size - c);
                /* Past the end, and an unbounded last split. */
                check_cuts(fd, text, size, (const uint64_t[]) { 0, size + 5 }, 2, 3);
                check_cuts(fd, text, size, (const uint64_t[]) { 0 }, 1, UINT64_MAX);

                for (uint64_t s = 1; s <= size + 1; s++) {
                        uint64_t cuts[64];
                        size_t n = 0;

                        for (uint64_t c = 0; c < MAX(size, (size_t) 1); c += s)
                                cuts[n++] = c;
                        check_cuts(fd, text, size, cuts, n, s);
                }
        }
}
END_TEST

/* Every three-way cut of one file: every line once, whichever split starts it. */
START_TEST(test_split_three_ways) {
        const char *text = files[6].text;
        size_t size = files[6].size;
        _cleanup_close_ int fd = file_with(text, size);

        for (uint64_t a = 0; a <= size; a++)
                for (uint64_t b = a; b <= size; b++)
                        check_cuts(fd, text, size, (const uint64_t[]) { 0, a, b }, 3, size - b);
}
END_TEST

START_TEST(test_split_line_longer_than_split) {
        const char *text = "aa\nbbbbbbbbbbbbbbbbbbbb\ncc\n";
        _cleanup_close_ int fd = file_with(text, strlen(text));
        size_t got;
        char *t;

        /* The split where the long line starts reads it whole... */
        t = read_split(fd, 0, 4, &got);
        ck_assert_str_eq(t, "aa\nbbbbbbbbbbbbbbbbbbbb\n");
        free(t);
        /* ...the ones inside it read nothing of it... */
        t = read_split(fd, 4, 4, &got);
        ck_assert_uint_eq(got, 0);
        free(t);
        /* ...and the one it ends in reads the next line. */
        t = read_split(fd, 22, 4, &got);
        ck_assert_str_eq(t, "cc\n");
        free(t);
}
END_TEST

START_TEST(test_split_bounds) {
        const char *text = "0123456789\nabc\n";
        _cleanup_close_ int fd = file_with(text, strlen(text));
        char *buf = NULL;
        size_t got;

        /* A whole file over the bound is refused before it is read; a split that runs past
         * the bound to finish its line, as it reads. */
        ck_assert_int_eq(split_read(fd, 0, UINT64_MAX, 10, &buf, &got), -EFBIG);
        ck_assert_int_eq(split_read(fd, 0, 2, 10, &buf, &got), -EFBIG);
        ck_assert_ptr_null(buf);
        ck_assert_int_eq(split_read(fd, 0, 2, 11, &buf, &got), 0);
        ck_assert_str_eq(buf, "0123456789\n");
        free(buf);
        ck_assert_int_eq(split_read(fd, 5, 20, 4, &buf, &got), 0);
        ck_assert_str_eq(buf, "abc\n");
        free(buf);
}
END_TEST

/* The line count of the map input counter: a '\n' ends a line, and a last line may have
 * none. Texts of every length up to a few hundred, of random bytes with many newlines,
 * and one of only newlines, past what a byte lane counts before the lanes are added. */
static uint64_t naive_lines(const char *text, size_t size) {
        uint64_t n = 0;

        for (size_t i = 0; i < size; i++)
                n += text[i] == '\n';
        return n + (size > 0 && text[size - 1] != '\n');
}

START_TEST(test_split_count_lines) {
        unsigned seed = 7;
        char *t = malloc(20000);

        ck_assert_ptr_nonnull(t);
        for (size_t size = 0; size <= 600; size++)
                for (unsigned round = 0; round < 4; round++) {
                        for (size_t i = 0; i < size; i++)
                                t[i] = rand_r(&seed) % 4 == 0 ? '\n' : (char) rand_r(&seed);
                        ck_assert_uint_eq(split_count_lines(t, size), naive_lines(t, size));
                }
        memset(t, '\n', 20000);
        ck_assert_uint_eq(split_count_lines(t, 20000), 20000);
        ck_assert_uint_eq(split_count_lines(t + 3, 19997), 19997);
        t[19999] = 'x';
        ck_assert_uint_eq(split_count_lines(t, 20000), 20000);
        ck_assert_uint_eq(split_count_lines("", 0), 0);
        ck_assert_uint_eq(split_count_lines("a", 1), 1);
        free(t);
}
END_TEST

static Suite *split_suite(void) {
        Suite *s = suite_create("split");
        TCase *tc = tcase_create("split");

        tcase_add_test(tc, test_split_every_offset);
        tcase_add_test(tc, test_split_three_ways);
        tcase_add_test(tc, test_split_line_longer_than_split);
        tcase_add_test(tc, test_split_bounds);
        tcase_add_test(tc, test_split_count_lines);
        suite_add_tcase(s, tc);
        return s;
}

int main(int argc, char **argv) {
        return unit_run("split", split_suite(), NULL, argc, argv);
}
