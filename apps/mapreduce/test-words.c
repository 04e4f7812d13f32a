/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The apps' tokenizer (words.h), which reads eight bytes at a time: the same words as a
 * byte at a time, for texts of every length and every byte value, words at every place
 * relative to the eight-byte reads, and never a read past the text (each text is a
 * buffer of its exact size, for ASan and valgrind to see). */
#include <check.h>
#include <stdlib.h>

#include "unit-test.h"
#include "words.h"

static bool is_letter(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* The words of text, a byte at a time, against word_next(). */
static void check_text(const char *text, size_t size) {
        size_t pos = 0, i = 0, n;
        const char *w;

        for (;;) {
                size_t start;

                while (i < size && !is_letter((unsigned char) text[i]))
                        i++;
                start = i;
                while (i < size && is_letter((unsigned char) text[i]))
                        i++;

                n = word_next(text, size, &pos, &w);
                ck_assert_uint_eq(n, i - start);
                if (n == 0)
                        break;
                ck_assert_ptr_eq(w, text + start);
                ck_assert_uint_eq(pos, i);
        }
        ck_assert_uint_eq(i, size);
        /* At the end it stays at the end. */
        ck_assert_uint_eq(word_next(text, size, &pos, &w), 0);
}

static void check_copy(const char *text, size_t size) {
        char *copy = malloc(size > 0 ? size : 1);

        ck_assert_ptr_nonnull(copy);
        memcpy(copy, text, size);
        check_text(copy, size);
        free(copy);
}

START_TEST(test_words_every_byte) {
        /* Each byte value alone, between letters and at either end. */
        for (unsigned c = 0; c < 256; c++) {
                char t[20];

                memset(t, 'x', sizeof(t));
                for (size_t at = 0; at < sizeof(t); at++) {
                        t[at] = (char) c;
                        check_copy(t, sizeof(t));
                        t[at] = 'x';
                }
                ck_assert_int_eq(word_letter[c], is_letter((unsigned char) c));
        }
}
END_TEST

START_TEST(test_words_lengths) {
        /* Words of 0 to 40 letters at every offset from the start of texts of up to 48 bytes. */
        for (size_t size = 0; size <= 48; size++)
                for (size_t at = 0; at <= size; at++)
                        for (size_t len = 0; at + len <= size; len++) {
                                char t[48];

                                memset(t, ' ', size);
                                memset(t + at, 'W', len);
                                check_copy(t, size);
                                /* The same with letters everywhere else. */
                                memset(t, 'a', size);
                                if (at + len < size)
                                        t[at + len] = '.';
                                check_copy(t, size);
                        }
}
END_TEST

START_TEST(test_words_random) {
        /* Random texts: mostly letters and spaces, some of every other byte value. */
        unsigned seed = 13;

        for (unsigned round = 0; round < 2000; round++) {
                size_t size = (size_t) rand_r(&seed) % 200;
                char *t = malloc(size > 0 ? size : 1);

                ck_assert_ptr_nonnull(t);
                for (size_t i = 0; i < size; i++) {
                        unsigned r = (unsigned) rand_r(&seed) % 16;
                        t[i] = r < 9 ? (char) ('a' + r) : r < 12 ? ' ' : r < 13 ? 'Q' : (char) rand_r(&seed);
                }
                check_text(t, size);
                free(t);
        }
}
END_TEST

static Suite *words_suite(void) {
        Suite *s = suite_create("words");
        TCase *tc = tcase_create("words");

        tcase_add_test(tc, test_words_every_byte);
        tcase_add_test(tc, test_words_lengths);
        tcase_add_test(tc, test_words_random);
        suite_add_tcase(s, tc);
        return s;
}

int main(int argc, char **argv) {
        return unit_run("words", words_suite(), NULL, argc, argv);
}
