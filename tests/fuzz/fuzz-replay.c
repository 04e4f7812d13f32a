/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs a fuzz target over the seed files of a corpus directory, so that the target's
 * code and invariants are exercised in every regular test run, without clang or
 * libFuzzer. A broken invariant aborts the target, which fails the test. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "macro.h"

static const char *corpus_dir;

static int filter_regular(const struct dirent *d) {
        return d->d_name[0] != '.';
}

/* Reads a whole file into a malloc'd buffer; *ret_size is its size. */
static uint8_t *read_file(const char *path, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        uint8_t *data;
        size_t done = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_msg(fd >= 0, "open %s: %m", path);
        ck_assert_int_eq(fstat(fd, &st), 0);
        data = malloc(MAX((size_t) st.st_size, (size_t) 1));
        ck_assert_ptr_nonnull(data);
        while (done < (size_t) st.st_size) {
                ssize_t n = read(fd, data + done, (size_t) st.st_size - done);
                ck_assert_msg(n > 0, "read %s: %m", path);
                done += (size_t) n;
        }
        *ret_size = done;
        return data;
}

START_TEST(test_replay_corpus) {
        struct dirent **names = NULL;
        const FuzzStats *s = fuzz_stats();
        int n;

        ck_assert_ptr_nonnull(corpus_dir);
        n = scandir(corpus_dir, &names, filter_regular, alphasort);
        ck_assert_msg(n >= 0, "scandir %s: %m", corpus_dir);
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                _cleanup_free_ uint8_t *data = NULL;
                size_t size;

                ck_assert_int_ge(asprintf(&path, "%s/%s", corpus_dir, names[i]->d_name), 0);
                data = read_file(path, &size);
                ck_assert_int_eq(LLVMFuzzerTestOneInput(data, size), 0);
                free(names[i]);
        }
        free(names);

        /* The seeds must reach both sides of every decision, or they test little. */
        ck_assert_uint_eq(s->inputs, (unsigned) n);
        ck_assert_uint_ge(s->inputs, 10);
        ck_assert_uint_gt(s->messages, s->inputs);
        ck_assert_uint_gt(s->oversize, 0);
        ck_assert_uint_gt(s->parsed, 0);
        ck_assert_uint_gt(s->plain, 0);
        ck_assert_uint_lt(s->plain, s->parsed);
        ck_assert_uint_gt(s->rejected, 0);
        ck_assert_uint_gt(s->dispatched, 0);
        ck_assert_uint_gt(s->refused, 0);

        /* And the empty input, which no file holds. */
        ck_assert_int_eq(LLVMFuzzerTestOneInput((const uint8_t *) "", 0), 0);
}
END_TEST

int main(int argc, char **argv) {
        Suite *s = suite_create("fuzz-replay");
        TCase *tc = tcase_create("corpus");
        SRunner *sr;
        int failed;

        if (argc != 2) {
                fprintf(stderr, "Usage: %s CORPUS-DIRECTORY\n", argv[0]);
                return 99; /* a hard error in the meson test protocol */
        }
        corpus_dir = argv[1];

        tcase_add_test(tc, test_replay_corpus);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
