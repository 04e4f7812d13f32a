/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A map task's output (daemons/worker/mapoutput.c): pairs beyond the budget spilled as
 * runs and merged into one file whose partitions read as those written from memory, with and
 * without a combiner, through more runs than one merge takes; nothing left behind. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "intermediate.h"
#include "macro.h"
#include "tests.h"
#include "mapoutput.h"
#include "unit-test.h"

#define NREDUCE 3

#define TMPDIR_TEMPLATE "/tmp/mrkv-test-mapoutput-XXXXXX"
static char tmpdir[] = TMPDIR_TEMPLATE;

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void remove_tmpdir(void) {
        (void) nftw(tmpdir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

static int open_tmpdir(void) {
        int fd;

        memcpy(tmpdir, TMPDIR_TEMPLATE, sizeof(tmpdir));
        if (!mkdtemp(tmpdir))
                ck_abort_msg("mkdtemp: %m");
        atexit(remove_tmpdir);
        fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        return fd;
}

static unsigned count_entries(int dir_fd) {
        DIR *d = fdopendir(dup(dir_fd));
        struct dirent *de;
        unsigned n = 0;

        ck_assert_ptr_nonnull(d);
        rewinddir(d);
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

/* A partition of a map's file decoded: "key=v1,v2,...\n" per group, in file order. Each
 * key is of that partition. */
static char *dump(int dir_fd, const char *name, unsigned partition) {
        const char *reason = NULL;
        GroupReader r;
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        int k;

        ck_assert_ptr_nonnull(f);
        ck_assert_msg(group_reader_open_partition(&r, dir_fd, name, NREDUCE, partition, 4096, &reason) == 0, "%s",
                      reason ?: "");
        while ((k = group_reader_next_key(&r)) > 0) {
                ck_assert_uint_eq((fnv1a32(r.key, r.key_len) & 0x7fffffff) % NREDUCE, partition);
                const char *v;
                size_t l;
                int n = 0;

                fprintf(f, "%.*s=", (int) r.key_len, r.key);
                while ((k = group_reader_next_value(&r, &v, &l)) > 0)
                        fprintf(f, "%s%.*s", n++ > 0 ? "," : "", (int) l, v);
                ck_assert_int_eq(k, 0);
                fputc('\n', f);
        }
        ck_assert_int_eq(k, 0);
        group_reader_close(&r);
        fclose(f);
        return text;
}

/* The pairs of the tests: many distinct keys, some keys recurring across the whole input
 * (so across runs) with values in an order that must be kept, runs of equal values. */
static int add_pairs(MapOutput *m, unsigned n) {
        char key[32], value[32];

        for (unsigned i = 0; i < n; i++) {
                int r;

                snprintf(key, sizeof(key), "key%07u", (i * 7919u) % n);
                snprintf(value, sizeof(value), "%u", i % 5);
                r = map_output_add(m, key, strlen(key), value, strlen(value));
                if (r < 0)
                        return r;
                snprintf(key, sizeof(key), "hot%u", i % 7);
                snprintf(value, sizeof(value), "%u", i / 100);
                r = map_output_add(m, key, strlen(key), value, strlen(value));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Sums decimal values, as wc's combine does. */
static int sum_combine(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                       mrkv_values *values) {
        unsigned long long sum = 0;
        const char *v;
        size_t l;
        char buf[32];
        int r;

        while ((r = host->next_value(values, &v, &l)) > 0)
                sum += strtoull(strndupa(v, l), NULL, 10);
        if (r < 0)
                return r;
        snprintf(buf, sizeof(buf), "%llu", sum);
        return host->emit(out, key, key_len, buf, strlen(buf));
}

static int bad_key_combine(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                           mrkv_values *values) {
        return host->emit(out, "other", 5, "1", 1);
}

/* Writes n pairs with budget (0: none) and combine into the file prefix; returns its
 * partitions' dumps joined, and the runs spilled. */
static char *write_output(int dir_fd, size_t budget, mrkv_combine_func combine, unsigned n, const char *prefix,
                          TaskCounters *c, size_t *ret_runs) {
        Groups g = {};
        char *all = NULL;
        MapOutput m = {
                .groups = &g,
                .combine = combine,
                .dir_fd = dir_fd,
                .nreduce = NREDUCE,
                .run_name = ".run",
                .counters = c,
        };
        size_t size = 0;
        FILE *f = open_memstream(&all, &size);

        ck_assert_ptr_nonnull(f);
        map_output_init(&m, budget);
        ck_assert_int_eq(add_pairs(&m, n), 0);
        if (budget > 0)
                ck_assert_uint_le(g.memory, budget);
        *ret_runs = m.n_runs;
        ck_assert_msg(map_output_write(&m, prefix) == 0, "%s", m.error ?: "");
        for (unsigned i = 0; i < NREDUCE; i++) {
                char *d = dump(dir_fd, prefix, i);
                fprintf(f, "-- %u\n%s", i, d);
                free(d);
        }
        fclose(f);
        map_output_done(&m);
        groups_done(&g);
        return all;
}

START_TEST(test_spill_same_output) {
        _cleanup_close_ int dir_fd = open_tmpdir();
        TaskCounters a = {}, b = {};
        unsigned fds = tests_count_fds();
        size_t runs;
        char *memory, *spilled;

        memory = write_output(dir_fd, 0, NULL, 200000, "memory", &a, &runs);
        ck_assert_uint_eq(runs, 0);
        ck_assert_uint_eq(a.spilled_records, 0);

        /* 128 KiB: more runs than one merge takes, so runs are merged during the task
         * and merged runs merged again; at most MAP_MERGE_FAN_IN are kept. */
        spilled = write_output(dir_fd, 128 * 1024, NULL, 200000, "spilled", &b, &runs);
        ck_assert_uint_le(runs, MAP_MERGE_FAN_IN);
        ck_assert_uint_gt(b.spilled_records, 2 * 400000);
        ck_assert_str_eq(memory, spilled);
        ck_assert_uint_eq(b.map_output_records, 400000);

        /* Only the two maps' files are left (one each, every partition in it), and no
         * descriptor. */
        ck_assert_uint_eq(count_entries(dir_fd), 2);
        ck_assert_uint_eq(tests_count_fds(), fds);
        free(memory);
        free(spilled);
}
END_TEST

START_TEST(test_spill_combine) {
        _cleanup_close_ int dir_fd = open_tmpdir();
        TaskCounters a = {}, b = {};
        size_t runs;
        char *memory, *spilled, *p;

        memory = write_output(dir_fd, 0, sum_combine, 100000, "memory", &a, &runs);
        spilled = write_output(dir_fd, 128 * 1024, sum_combine, 100000, "spilled", &b, &runs);
        ck_assert_uint_gt(runs, 1);
        ck_assert_str_eq(memory, spilled);
        /* One value per key: hot0's are 0+0+...+ (i/100 for i = 0, 7, 14, ...). */
        ck_assert_ptr_nonnull(strstr(memory, "\nhot3="));
        for (p = memory; (p = strchr(p, '=')); p++)
                ck_assert_ptr_null(memchr(p, ',', strcspn(p, "\n")));
        /* Only the hot keys have values a combiner can shrink; one value repeated is left. */
        ck_assert_uint_eq(a.combine_input_records, 100000);
        ck_assert_uint_eq(a.combine_output_records, 7);
        /* Spilled: combined in each run, and again when merged. */
        ck_assert_uint_gt(b.combine_input_records, 100000);
        free(memory);
        free(spilled);
}
END_TEST

/* A failure half-way leaves no run and no descriptor behind; a combiner emitting another
 * key fails the task. */
START_TEST(test_spill_failure_cleanup) {
        _cleanup_close_ int dir_fd = open_tmpdir();
        unsigned fds = tests_count_fds();
        TaskCounters c = {};
        Groups g = {};
        MapOutput m = { .groups = &g, .dir_fd = dir_fd, .nreduce = NREDUCE, .run_name = ".run", .counters = &c };

        map_output_init(&m, 64 * 1024);
        ck_assert_int_eq(add_pairs(&m, 50000), 0);
        ck_assert_uint_gt(m.n_runs, 1);
        ck_assert_int_eq(map_output_write(&m, "missing/a"), -ENOENT);
        ck_assert_ptr_nonnull(strstr(m.error, "missing/a"));
        map_output_done(&m);
        groups_done(&g);
        ck_assert_uint_eq(count_entries(dir_fd), 0);
        ck_assert_uint_eq(tests_count_fds(), fds);

        /* Before any write, too. */
        m = (MapOutput) { .groups = &g, .dir_fd = dir_fd, .nreduce = NREDUCE, .run_name = ".run", .counters = &c };
        map_output_init(&m, 64 * 1024);
        ck_assert_int_eq(add_pairs(&m, 50000), 0);
        map_output_done(&m);
        groups_done(&g);
        ck_assert_uint_eq(count_entries(dir_fd), 0);
        ck_assert_uint_eq(tests_count_fds(), fds);

        m = (MapOutput) { .groups = &g, .combine = bad_key_combine, .dir_fd = dir_fd, .nreduce = NREDUCE,
                          .run_name = ".run", .counters = &c };
        map_output_init(&m, 0);
        ck_assert_int_eq(add_pairs(&m, 1000), 0);
        ck_assert_int_eq(map_output_write(&m, "a"), -EINVAL);
        ck_assert_ptr_nonnull(strstr(m.error, "combine"));
        map_output_done(&m);
        groups_done(&g);
}
END_TEST

/* The budget holds: memory stays under it after every add, and a value larger than the
 * budget still goes through (alone). */
START_TEST(test_groups_budget) {
        _cleanup_close_ int dir_fd = open_tmpdir();
        Groups g = {};
        TaskCounters c = {};
        MapOutput m = { .groups = &g, .dir_fd = dir_fd, .nreduce = 1, .run_name = ".run", .counters = &c };
        char *big = malloc(300 * 1024);

        ck_assert_ptr_nonnull(big);
        memset(big, 'x', 300 * 1024);
        map_output_init(&m, 128 * 1024);
        for (unsigned i = 0; i < 20000; i++) {
                char key[16];
                snprintf(key, sizeof(key), "k%u", i);
                ck_assert_int_eq(map_output_add(&m, key, strlen(key), "v", 1), 0);
                ck_assert_uint_le(g.memory, 128 * 1024);
        }
        ck_assert_int_eq(map_output_add(&m, "big", 3, big, 300 * 1024), 0);
        ck_assert_int_eq(map_output_add(&m, "k1", 2, "w", 1), 0);
        ck_assert_int_eq(map_output_write(&m, "out"), 0);
        map_output_done(&m);
        groups_done(&g);
        free(big);
}
END_TEST

static Suite *mapoutput_suite(void) {
        Suite *s = suite_create("mapoutput");
        TCase *tc = tcase_create("spill");

        tcase_add_test(tc, test_spill_same_output);
        tcase_add_test(tc, test_spill_combine);
        tcase_add_test(tc, test_spill_failure_cleanup);
        tcase_add_test(tc, test_groups_budget);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);
        return s;
}

int main(int argc, char **argv) {
        return unit_run("mapoutput", mapoutput_suite(), NULL, argc, argv);
}
