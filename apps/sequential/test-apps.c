/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the MapReduce apps (called through a recording host), the plugin
 * loader's refusals, and mrkv-sequential's engine and program. */
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app-loader.h"
#include "config.h"
#include "grouped.h"
#include "sequential.h"

/* A host that records what an app emits, and hands reduce a fixed list of values. */

typedef struct Pair {
        char *key, *value;
        size_t key_len, value_len;
} Pair;

struct mrkv_emitter {
        Pair *pairs;
        size_t n;
};

struct mrkv_values {
        const char *const *values;
        size_t i;
};

static int record_emit(mrkv_emitter *out, const char *key, size_t key_len, const char *value, size_t value_len) {
        Pair *p = realloc(out->pairs, (out->n + 1) * sizeof(Pair));

        ck_assert_ptr_nonnull(p);
        out->pairs = p;
        p[out->n] = (Pair) {
                .key = strndup(key, key_len),
                .value = strndup(value, value_len),
                .key_len = key_len,
                .value_len = value_len,
        };
        ck_assert_ptr_nonnull(p[out->n].key);
        ck_assert_ptr_nonnull(p[out->n].value);
        out->n++;
        return 0;
}

static int list_next_value(mrkv_values *values, const char **value, size_t *value_len) {
        const char *v = values->values[values->i];

        if (!v)
                return 0;
        values->i++;
        *value = v;
        *value_len = strlen(v);
        return 1;
}

static const mrkv_host test_host = {
        .abi_version = MRKV_APP_ABI_VERSION,
        .struct_size = sizeof(mrkv_host),
        .emit = record_emit,
        .next_value = list_next_value,
};

/* Equal consecutive values of the list as one run, as the hosts keep them. */
static int list_next_run(mrkv_values *values, const char **value, size_t *value_len, uint64_t *repeat) {
        int r = list_next_value(values, value, value_len);

        if (r <= 0)
                return r;
        for (*repeat = 1; values->values[values->i] && streq(values->values[values->i], *value); values->i++)
                (*repeat)++;
        return 1;
}

static int refuse_next_run(mrkv_values *values, const char **value, size_t *value_len, uint64_t *repeat) {
        ck_abort_msg("next_run called beyond the host's struct_size");
        return -EIO;
}

/* A host of ABI 1.1 with next_run, and one of 1.0 whose table ends before it. */
static const mrkv_host run_host = {
        .abi_version = MRKV_APP_ABI_VERSION,
        .struct_size = sizeof(mrkv_host),
        .emit = record_emit,
        .next_value = list_next_value,
        .next_run = list_next_run,
};

static const mrkv_host host_1_0 = {
        .abi_version = MRKV_APP_ABI_VERSION,
        .struct_size = offsetof(mrkv_host, next_run),
        .emit = record_emit,
        .next_value = list_next_value,
        .next_run = refuse_next_run,
};

static void emitter_done(mrkv_emitter *out) {
        for (size_t i = 0; i < out->n; i++) {
                free(out->pairs[i].key);
                free(out->pairs[i].value);
        }
        free(out->pairs);
        *out = (mrkv_emitter) {};
}

static App *load(const char *name) {
        char path[4096];
        App *a = NULL;

        snprintf(path, sizeof(path), "%s/%s.so", MR_APP_DIR, name);
        ck_assert_int_eq(app_load(path, &a), 0);
        ck_assert_ptr_nonnull(a);
        ck_assert_str_eq(a->app->name, name);
        return a;
}

static void map_text(const char *app, const char *filename, const char *contents, size_t size, mrkv_emitter *out) {
        App *a = load(app);

        ck_assert_int_eq(a->app->map(&test_host, out, filename, contents, size), 0);
        app_free(a);
}

/* Runs reduce over a NULL-terminated value list; returns the one line it emitted. */
static char *reduce_line(const char *app, const char *key, const char *const *values) {
        mrkv_emitter out = {};
        mrkv_values it = { .values = values };
        App *a = load(app);
        char *line;

        ck_assert_int_eq(a->app->reduce(&test_host, &out, key, strlen(key), &it), 0);
        ck_assert_uint_eq(out.n, 1);
        ck_assert_str_eq(out.pairs[0].key, key);
        /* The length emitted is the line's: no byte beyond it, no NUL in it. */
        ck_assert_uint_eq(out.pairs[0].value_len, strlen(out.pairs[0].value));
        ck_assert_int_ne(asprintf(&line, "%s", out.pairs[0].value), -1);
        emitter_done(&out);
        app_free(a);
        return line;
}

/* Runs combine over a NULL-terminated value list; returns its values, joined by '|'. */
static char *combine_values(const char *app, const char *key, const char *const *values) {
        mrkv_emitter out = {};
        mrkv_values it = { .values = values };
        App *a = load(app);
        char *joined = NULL;
        size_t size = 0;
        FILE *f;

        ck_assert_ptr_nonnull(mrkv_app_combine(a->app));
        ck_assert_int_eq(mrkv_app_combine(a->app)(&test_host, &out, key, strlen(key), &it), 0);
        f = open_memstream(&joined, &size);
        ck_assert_ptr_nonnull(f);
        for (size_t i = 0; i < out.n; i++) {
                ck_assert_str_eq(out.pairs[i].key, key);
                fprintf(f, "%s%s", i > 0 ? "|" : "", out.pairs[i].value);
        }
        fclose(f);
        emitter_done(&out);
        app_free(a);
        return joined;
}

static int pair_compare(const void *a, const void *b) {
        return strcmp(((const Pair *) a)->key, ((const Pair *) b)->key);
}

/* Temporary directories, removed again also when a check fails (each test is a child). */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static char test_dir[64];

static void test_dir_remove(void) {
        if (test_dir[0])
                nftw(test_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *enter_test_dir(void) {
        snprintf(test_dir, sizeof(test_dir), "/tmp/test-apps-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(test_dir));
        atexit(test_dir_remove);
        ck_assert_int_eq(chdir(test_dir), 0);
        return test_dir;
}

static void write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        ck_assert_int_eq(fclose(f), 0);
}

static char *read_text(const char *path) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = fopen(path, "re"), *m = open_memstream(&buf, &size);
        int c;

        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(m);
        while ((c = getc(f)) != EOF)
                putc(c, m);
        fclose(f);
        fclose(m);
        return buf;
}

/* Runs fn with stderr going to a file; returns what it logged. */
static char *capture_stderr(int (*fn)(const char *arg, int *ret), const char *arg, int *ret) {
        char path[] = "/tmp/test-apps-stderr-XXXXXX", *text;
        int fd = mkstemp(path), saved = dup(STDERR_FILENO);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_ge(saved, 0);
        fflush(stderr);
        ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
        fn(arg, ret);
        fflush(stderr);
        ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
        close(saved);
        close(fd);
        text = read_text(path);
        unlink(path);
        return text;
}

/* wc */

START_TEST(test_wc_words) {
        /* "é" and "ö" are two UTF-8 bytes each: both separate words, as does every
         * other non-letter, digits and NUL included. */
        static const char text[] = "Hello, world! h\xc3\xa9llo w\xc3\xb6rld it's x9y\tZ\nab\0cd--";
        static const char *const expected[] = { "Hello", "world", "h", "llo", "w", "rld", "it",
                                                "s", "x", "y", "Z", "ab", "cd" };
        mrkv_emitter out = {};

        map_text("wc", "in.txt", text, sizeof(text) - 1, &out);

        ck_assert_uint_eq(out.n, ELEMENTSOF(expected));
        for (size_t i = 0; i < out.n; i++) {
                ck_assert_str_eq(out.pairs[i].key, expected[i]);
                ck_assert_uint_eq(out.pairs[i].key_len, strlen(expected[i]));
                ck_assert_str_eq(out.pairs[i].value, "1");
        }
        emitter_done(&out);
}
END_TEST

START_TEST(test_wc_no_words) {
        mrkv_emitter out = {};

        map_text("wc", "empty", "", 0, &out);
        ck_assert_uint_eq(out.n, 0);
        map_text("wc", "digits", "123 456\xff\xfe !?", 12, &out);
        ck_assert_uint_eq(out.n, 0);
}
END_TEST

START_TEST(test_wc_reduce) {
        static const char *const three[] = { "1", "1", "1", NULL }, *const none[] = { NULL };
        char *line;

        line = reduce_line("wc", "word", three);
        ck_assert_str_eq(line, "3");
        free(line);
        line = reduce_line("wc", "word", none);
        ck_assert_str_eq(line, "0");
        free(line);
}
END_TEST

/* reduce sums counts, so combined values count as many as the "1"s they replace. */
START_TEST(test_wc_combine) {
        static const char *const ones[] = { "1", "1", "1", "1", NULL }, *const mixed[] = { "1", "12", "1", "100", NULL },
                                 *const partial[] = { "3", "1", NULL };
        char *v;
        mrkv_emitter out = {};
        App *a;

        v = combine_values("wc", "word", ones);
        ck_assert_str_eq(v, "4");
        free(v);
        v = combine_values("wc", "word", mixed);
        ck_assert_str_eq(v, "114");
        free(v);
        v = reduce_line("wc", "word", partial);
        ck_assert_str_eq(v, "4");
        free(v);

        /* A value that is no count is an error, not a wrong sum. */
        a = load("wc");
        ck_assert_int_eq(a->app->reduce(&test_host, &out, "w", 1, &(mrkv_values) { .values = (const char *const[]) { "1", "x", NULL } }),
                         -EBADMSG);
        ck_assert_int_eq(mrkv_app_combine(a->app)(&test_host, &out, "w", 1,
                                                  &(mrkv_values) { .values = (const char *const[]) { "", NULL } }),
                         -EBADMSG);
        ck_assert_uint_eq(out.n, 0);
        app_free(a);
}
END_TEST

/* wc's reduce takes runs where the host gives them, values one by one where it cannot. */
START_TEST(test_wc_runs) {
        static const char *const values[] = { "1", "1", "1", "12", "1", "1", NULL },
                                 *const big[] = { "4611686018427387904", "4611686018427387904", NULL };
        const mrkv_host *hosts[] = { &run_host, &host_1_0 };
        _cleanup_(app_freep) App *a = load("wc");

        for (size_t i = 0; i < ELEMENTSOF(hosts); i++) {
                mrkv_emitter out = {};

                ck_assert_int_eq(a->app->reduce(hosts[i], &out, "w", 1, &(mrkv_values) { .values = values }), 0);
                ck_assert_uint_eq(out.n, 1);
                ck_assert_str_eq(out.pairs[0].value, "17");
                emitter_done(&out);
                /* 2^62 twice is past INT64_MAX, in one run or in two values. */
                ck_assert_int_eq(a->app->reduce(hosts[i], &out, "w", 1, &(mrkv_values) { .values = big }), -EOVERFLOW);
                ck_assert_uint_eq(out.n, 0);
        }
}
END_TEST

/* indexer */

/* A document cut into splits is named by each: combine keeps one of each, reduce counts
 * each once. */
START_TEST(test_indexer_combine) {
        static const char *const docs[] = { "b.txt", "a.txt", "b.txt", "a.txt", "c.txt", NULL };
        char *v;

        v = combine_values("indexer", "word", docs);
        ck_assert_str_eq(v, "a.txt|b.txt|c.txt");
        free(v);
        v = reduce_line("indexer", "word", docs);
        ck_assert_str_eq(v, "3 a.txt,b.txt,c.txt");
        free(v);
}
END_TEST

START_TEST(test_indexer_distinct) {
        mrkv_emitter out = {};

        map_text("indexer", "pg-x.txt", "the cat, the dog; The cat.", 26, &out);

        /* Once per distinct word, case kept, each with the document name. */
        ck_assert_uint_eq(out.n, 4);
        qsort(out.pairs, out.n, sizeof(Pair), pair_compare);
        ck_assert_str_eq(out.pairs[0].key, "The");
        ck_assert_str_eq(out.pairs[1].key, "cat");
        ck_assert_str_eq(out.pairs[2].key, "dog");
        ck_assert_str_eq(out.pairs[3].key, "the");
        for (size_t i = 0; i < out.n; i++)
                ck_assert_str_eq(out.pairs[i].value, "pg-x.txt");
        emitter_done(&out);
}
END_TEST

START_TEST(test_indexer_many_words) {
        /* Enough distinct words to grow the indexer's word set several times, each twice. */
        char *text = NULL, word[8];
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        mrkv_emitter out = {};

        ck_assert_ptr_nonnull(f);
        for (int round = 0; round < 2; round++)
                for (int i = 0; i < 5000; i++) {
                        snprintf(word, sizeof(word), "%c%c%c", 'a' + i % 26, 'a' + i / 26 % 26, 'a' + i / 676);
                        fprintf(f, "%s ", word);
                }
        fclose(f);

        map_text("indexer", "big", text, size, &out);
        ck_assert_uint_eq(out.n, 5000);
        qsort(out.pairs, out.n, sizeof(Pair), pair_compare);
        for (size_t i = 1; i < out.n; i++)
                ck_assert_str_ne(out.pairs[i - 1].key, out.pairs[i].key);
        emitter_done(&out);
        free(text);
}
END_TEST

START_TEST(test_indexer_reduce_sorted) {
        static const char *const docs[] = { "pg-tom.txt", "pg-being.txt", "pg-grimm.txt", "pg-being", NULL };
        char *line = reduce_line("indexer", "word", docs);

        ck_assert_str_eq(line, "4 pg-being,pg-being.txt,pg-grimm.txt,pg-tom.txt");
        free(line);
}
END_TEST

/* The lab's test apps, where they finish quickly. */

START_TEST(test_nocrash) {
        static const char *const values[] = { "xyzzy", "7", "pg-a.txt", "12", NULL };
        mrkv_emitter out = {};
        char *line;

        map_text("nocrash", "pg-a.txt", "0123456789", 10, &out);
        ck_assert_uint_eq(out.n, 4);
        ck_assert_str_eq(out.pairs[0].key, "a");
        ck_assert_str_eq(out.pairs[0].value, "pg-a.txt");
        ck_assert_str_eq(out.pairs[1].key, "b");
        ck_assert_str_eq(out.pairs[1].value, "8");
        ck_assert_str_eq(out.pairs[2].key, "c");
        ck_assert_str_eq(out.pairs[2].value, "10");
        ck_assert_str_eq(out.pairs[3].key, "d");
        ck_assert_str_eq(out.pairs[3].value, "xyzzy");
        emitter_done(&out);

        line = reduce_line("nocrash", "a", values);
        ck_assert_str_eq(line, "12 7 pg-a.txt xyzzy");
        free(line);
}
END_TEST

START_TEST(test_early_exit) {
        static const char *const values[] = { "1", "1", NULL };
        mrkv_emitter out = {};
        char *line;

        map_text("early_exit", "pg-x.txt", "words words", 11, &out);
        ck_assert_uint_eq(out.n, 1);
        ck_assert_str_eq(out.pairs[0].key, "pg-x.txt");
        ck_assert_str_eq(out.pairs[0].value, "1");
        emitter_done(&out);

        line = reduce_line("early_exit", "pg-x.txt", values);
        ck_assert_str_eq(line, "2");
        free(line);
}
END_TEST

START_TEST(test_rtiming_map) {
        mrkv_emitter out = {};

        map_text("rtiming", "f", "", 0, &out);
        ck_assert_uint_eq(out.n, 10);
        for (size_t i = 0; i < out.n; i++) {
                ck_assert_uint_eq(out.pairs[i].key_len, 1);
                ck_assert_int_eq(out.pairs[i].key[0], (int) ('a' + i));
                ck_assert_str_eq(out.pairs[i].value, "1");
        }
        emitter_done(&out);
}
END_TEST

START_TEST(test_mtiming_map) {
        char times[32], parallel[32];
        mrkv_emitter out = {};
        struct stat st;
        pid_t other;
        double ts;

        enter_test_dir();
        /* Another live worker's marker counts, a dead pid's does not; a child of ours
         * stands in for the other worker, since kill(pid, 0) must succeed on it. */
        other = fork();
        ck_assert_int_ge(other, 0);
        if (other == 0) {
                pause();
                _exit(0);
        }
        snprintf(times, sizeof(times), "mr-worker-map-%d", (int) other);
        write_text(times, "x");
        write_text("mr-worker-map-999999999", "x");
        write_text("mr-worker-map-12x", "x");

        map_text("mtiming", "f", "", 0, &out);
        kill(other, SIGKILL);
        waitpid(other, NULL, 0);

        snprintf(times, sizeof(times), "times-%d", (int) getpid());
        snprintf(parallel, sizeof(parallel), "parallel-%d", (int) getpid());
        ck_assert_uint_eq(out.n, 2);
        ck_assert_str_eq(out.pairs[0].key, times);
        ck_assert_int_eq(sscanf(out.pairs[0].value, "%lf", &ts), 1);
        ck_assert(ts > 1.6e9);
        ck_assert_ptr_nonnull(strchr(out.pairs[0].value, '.'));
        ck_assert_str_eq(out.pairs[1].key, parallel);
        ck_assert_str_eq(out.pairs[1].value, "2"); /* this process and the child */
        emitter_done(&out);

        /* Its own marker is gone again. */
        snprintf(times, sizeof(times), "mr-worker-map-%d", (int) getpid());
        ck_assert_int_lt(stat(times, &st), 0);
}
END_TEST

START_TEST(test_jobcount_reduce) {
        static const char *const values[] = { "x", NULL };
        char *line;

        enter_test_dir();
        write_text("mr-worker-jobcount-10-0", "x");
        write_text("mr-worker-jobcount-10-1", "x");
        write_text("mr-worker-jobcount-11-0", "x");
        write_text("mr-out-0", "a 1\n");

        line = reduce_line("jobcount", "a", values);
        ck_assert_str_eq(line, "3");
        free(line);
}
END_TEST

/* The loader */

static int load_quietly(const char *spec, int *ret) {
        App *a = NULL;

        *ret = app_load(spec, &a);
        if (*ret >= 0)
                ck_assert_ptr_nonnull(a);
        else
                ck_assert_ptr_null(a);
        app_free(a);
        return *ret;
}

/* Loads spec expecting error; checks the one message logged mentions every needle. */
static void check_refused(const char *spec, int error, const char *const *needles) {
        char *log;
        int r;

        log = capture_stderr(load_quietly, spec, &r);
        ck_assert_int_eq(r, error);
        ck_assert_msg(strchr(log, '\n') == strrchr(log, '\n') && strchr(log, '\n'), "not one line: '%s'", log);
        for (const char *const *n = needles; *n; n++)
                ck_assert_msg(strstr(log, *n), "'%s' not in '%s'", *n, log);
        free(log);
}

START_TEST(test_load_bad_abi) {
        check_refused(MR_BROKEN_APP_DIR "/bad-abi.so", -EPROTO,
                      (const char *const[]) { MR_BROKEN_APP_DIR "/bad-abi.so", "built for app ABI 999, this host speaks 1",
                                              NULL });
}
END_TEST

START_TEST(test_load_short_struct) {
        check_refused(MR_BROKEN_APP_DIR "/short-struct.so", -EPROTO,
                      (const char *const[]) { "short-struct.so", "8 bytes", NULL });
}
END_TEST

START_TEST(test_load_no_entry) {
        check_refused(MR_BROKEN_APP_DIR "/no-entry.so", -ENOEXEC,
                      (const char *const[]) { "no-entry.so", "not an mrkv app: no mrkv_app_get", NULL });
}
END_TEST

START_TEST(test_load_no_reduce) {
        check_refused(MR_BROKEN_APP_DIR "/no-reduce.so", -EINVAL,
                      (const char *const[]) { "no-reduce.so", "no reduce", NULL });
}
END_TEST

START_TEST(test_load_not_elf) {
        enter_test_dir();
        write_text("garbage.so", "this is not an ELF file\n");
        check_refused("./garbage.so", -ENOEXEC, (const char *const[]) { "./garbage.so", NULL });
        check_refused("./missing.so", -ENOENT, (const char *const[]) { "./missing.so", "No such file", NULL });
        ck_assert_int_eq(mkdir("dir.so", 0755), 0);
        check_refused("./dir.so", -ENOEXEC, (const char *const[]) { "./dir.so", NULL });
}
END_TEST

START_TEST(test_load_not_found) {
        ck_assert_int_eq(setenv("MRKV_APP_PATH", "/nonexistent-a::/nonexistent-b", 1), 0);
        check_refused("nosuchapp", -ENOENT,
                      (const char *const[]) { "nosuchapp", "/nonexistent-a", "/nonexistent-b", MRKV_APPDIR, NULL });
        check_refused("", -EINVAL, (const char *const[]) { "empty", NULL });
}
END_TEST

/* A plugin built for ABI 1.0, before combine, loads and runs; its combine is not read. */
START_TEST(test_load_abi_1_0) {
        _cleanup_(sequential_freep) Sequential *s = NULL;
        char *text = NULL;
        size_t size = 0;
        App *a = NULL;
        FILE *f;

        ck_assert_int_eq(app_load(MR_BROKEN_APP_DIR "/abi-1-0.so", &a), 0);
        ck_assert_str_eq(a->app->name, "abi-1-0");
        ck_assert_uint_lt(a->app->struct_size, sizeof(mrkv_app));
        ck_assert_ptr_null(mrkv_app_combine(a->app));

        s = sequential_new(a->app);
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(sequential_set_combine(s, true), -EOPNOTSUPP);
        ck_assert_int_eq(sequential_map(s, "x", "", 0), 0);
        ck_assert_int_eq(sequential_map(s, "y", "", 0), 0);
        f = open_memstream(&text, &size);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(sequential_reduce(s, f), 0);
        fclose(f);
        ck_assert_str_eq(text, "files 2\n");
        free(text);
        s = sequential_free(s);
        app_free(a);

        /* Today's apps have it. */
        a = load("wc");
        ck_assert_ptr_nonnull(mrkv_app_combine(a->app));
        app_free(a);
}
END_TEST

START_TEST(test_load_by_name) {
        App *a = NULL;

        ck_assert_int_eq(setenv("MRKV_APP_PATH", "/nonexistent:" MR_APP_DIR, 1), 0);
        ck_assert_int_eq(app_load("wc", &a), 0);
        ck_assert_str_eq(a->app->name, "wc");
        ck_assert_str_eq(a->path, MR_APP_DIR "/wc.so");
        a = app_free(a);

        ck_assert_int_eq(app_load("indexer.so", &a), 0);
        ck_assert_str_eq(a->app->name, "indexer");
        ck_assert_ptr_nonnull(a->app->map);
        ck_assert_ptr_nonnull(a->app->reduce);
        app_free(a);
}
END_TEST

/* mrkv-sequential's engine, with an app defined here: map reads "key value" lines and
 * also emits ("z\0z", filename); reduce joins the values unsorted, exposing their order. */

static int lines_map(const mrkv_host *host, mrkv_emitter *out, const char *filename, const char *contents,
                     size_t size) {
        const char *p = contents, *end = contents + size;
        int r;

        if (streq(filename, "bad"))
                return -EBADMSG;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p)) ?: end;
                const char *sp = memchr(p, ' ', (size_t) (nl - p));

                ck_assert_ptr_nonnull(sp);
                r = host->emit(out, p, (size_t) (sp - p), sp + 1, (size_t) (nl - sp - 1));
                if (r < 0)
                        return r;
                p = nl + 1;
        }
        return host->emit(out, "z\0z", 3, filename, strlen(filename));
}

static int lines_reduce(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                        mrkv_values *values) {
        char *buf = NULL;
        size_t size = 0, l;
        const char *v;
        int r, n = 0;
        FILE *f;

        if (key_len == 1 && key[0] == '!')
                return -ENOTSUP;
        f = open_memstream(&buf, &size);
        ck_assert_ptr_nonnull(f);
        while ((r = host->next_value(values, &v, &l)) > 0)
                fprintf(f, "%s%.*s", n++ > 0 ? "," : "", (int) l, v);
        ck_assert_int_eq(r, 0);
        fclose(f);
        r = host->emit(out, key, key_len, buf, size);
        free(buf);
        return r;
}

static const mrkv_app lines_app = {
        .abi_version = MRKV_APP_ABI_VERSION,
        .struct_size = sizeof(mrkv_app),
        .name = "lines",
        .map = lines_map,
        .reduce = lines_reduce,
};

static void map_string(Sequential *s, const char *filename, const char *contents) {
        ck_assert_int_eq(sequential_map(s, filename, contents, strlen(contents)), 0);
}

/* What reduce writes, from an engine's reduce function and its state. */
static char *reduce_text(int (*reduce)(void *engine, FILE *f), void *engine, size_t *ret_size) {
        char *text = NULL;
        FILE *f = open_memstream(&text, ret_size);

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(reduce(engine, f), 0);
        fclose(f);
        return text;
}

static int plain_reduce(void *engine, FILE *f) {
        return sequential_reduce(engine, f);
}

static int grouped_reduce_to(void *engine, FILE *f) {
        return grouped_reduce(engine, f);
}

START_TEST(test_sequential_order) {
        static const char expected[] = "A 6\na 1,3,7\nab 2\nb 1,4\nz\0z f1,f2\n\xff 5\n";
        static const char f1[] = "b 1\na 1\nab 2\na 3", f2[] = "b 4\n\xff 5\nA 6\na 7\n";
        _cleanup_(sequential_freep) Sequential *s = sequential_new(&lines_app);
        _cleanup_(grouped_freep) Grouped *g = grouped_new(&lines_app);
        char *text;
        size_t size;

        ck_assert_ptr_nonnull(s);
        ck_assert_ptr_nonnull(g);
        map_string(s, "f1", f1);
        map_string(s, "f2", f2);
        ck_assert_int_eq(grouped_map(g, "f1", f1, strlen(f1)), 0);
        ck_assert_int_eq(grouped_map(g, "f2", f2, strlen(f2)), 0);

        /* Keys in bytewise order (a prefix first, 0xff last); values in emission order;
         * the grouped engine as the plain one. */
        text = reduce_text(plain_reduce, s, &size);
        ck_assert_uint_eq(size, sizeof(expected) - 1);
        ck_assert_mem_eq(text, expected, size);
        free(text);
        text = reduce_text(grouped_reduce_to, g, &size);
        ck_assert_uint_eq(size, sizeof(expected) - 1);
        ck_assert_mem_eq(text, expected, size);
        free(text);
}
END_TEST

/* Keys that share their first eight bytes, or are prefixes of each other, with NULs and
 * bytes above 0x7f: the grouped engine's sort (by an 8-byte prefix, then the whole key)
 * orders them as the plain engine's. */
START_TEST(test_grouped_key_order) {
        static const char in[] = "abcdefghZ 1\nabcdefgh 2\nabcdefghA 3\nabcdefgh\0 4\nabcdefg\xff 5\n"
                                 "abcdefgh\xff\x01 6\nabcdefgh\0\0 7\nabc 8\nab\0cdefghij 9\nabcdefghZ 10\n";
        _cleanup_(sequential_freep) Sequential *s = sequential_new(&lines_app);
        _cleanup_(grouped_freep) Grouped *g = grouped_new(&lines_app);
        char *plain, *grouped;
        size_t plain_size, grouped_size;

        ck_assert_ptr_nonnull(s);
        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(sequential_map(s, "f", in, sizeof(in) - 1), 0);
        ck_assert_int_eq(grouped_map(g, "f", in, sizeof(in) - 1), 0);
        plain = reduce_text(plain_reduce, s, &plain_size);
        grouped = reduce_text(grouped_reduce_to, g, &grouped_size);
        ck_assert_uint_eq(grouped_size, plain_size);
        ck_assert_mem_eq(grouped, plain, plain_size);
        /* "abc" before "abcdefg\xff", "abcdefgh" before "abcdefgh\0" before "abcdefgh\0\0". */
        ck_assert_ptr_nonnull(memmem(plain, plain_size, "abcdefgh 2\nabcdefgh\0 4\nabcdefgh\0\0 7\n", 36));
        free(plain);
        free(grouped);
}
END_TEST

/* Repeated values (runs) and values combined in place reach the app as the plain
 * engine's: indexer's documents, many keys, a small bound. */
START_TEST(test_grouped_indexer) {
        _cleanup_(app_freep) App *indexer = load("indexer");
        char *plain = NULL, *grouped = NULL, *in = NULL;
        size_t plain_size = 0, grouped_size = 0, in_size = 0;
        _cleanup_(sequential_freep) Sequential *s = sequential_new(indexer->app);
        _cleanup_(grouped_freep) Grouped *g = grouped_new(indexer->app);
        FILE *f = open_memstream(&in, &in_size);

        ck_assert_ptr_nonnull(s);
        ck_assert_ptr_nonnull(g);
        ck_assert_ptr_nonnull(f);
        for (int i = 0; i < 5000; i++)
                fprintf(f, "w%c%c x ", 'a' + i % 26, 'a' + i % 7);
        fclose(f);
        grouped_set_combine_bound(g, 4096);
        for (int doc = 0; doc < 20; doc++) {
                char name[16];

                snprintf(name, sizeof(name), "doc-%d", doc % 7);
                ck_assert_int_eq(sequential_map(s, name, in + doc, in_size - (size_t) doc), 0);
                ck_assert_int_eq(grouped_map(g, name, in + doc, in_size - (size_t) doc), 0);
        }
        plain = reduce_text(plain_reduce, s, &plain_size);
        grouped = reduce_text(grouped_reduce_to, g, &grouped_size);
        ck_assert_uint_gt(plain_size, 0);
        ck_assert_uint_eq(grouped_size, plain_size);
        ck_assert_mem_eq(grouped, plain, plain_size);
        free(in);
        free(plain);
        free(grouped);
}
END_TEST

START_TEST(test_sequential_many_values) {
        /* Enough keys and values to grow the arrays of pairs and bytes many times. */
        _cleanup_(sequential_freep) Sequential *s = sequential_new(&lines_app);
        char *in = NULL, *text = NULL;
        size_t in_size = 0, size = 0, lines = 0;
        FILE *f = open_memstream(&in, &in_size);

        ck_assert_ptr_nonnull(s);
        ck_assert_ptr_nonnull(f);
        for (int i = 0; i < 30000; i++)
                fprintf(f, "%s%05d %d\n", i % 3 == 0 ? "k" : "q", i % 10007, i);
        fclose(f);
        ck_assert_int_eq(sequential_map(s, "in", in, in_size - 1), 0);

        f = open_memstream(&text, &size);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(sequential_reduce(s, f), 0);
        fclose(f);

        /* Every key once, in order, each value list ascending (insertion order). */
        for (char *p = text, *prev = NULL, *nl; p < text + size; prev = p, p = nl + 1) {
                char *sp;
                long last = -1;

                nl = memchr(p, '\n', (size_t) (text + size - p));
                ck_assert_ptr_nonnull(nl);
                sp = memchr(p, ' ', (size_t) (nl - p));
                ck_assert_ptr_nonnull(sp);
                lines++;
                if (*p == 'z') /* "z\0z", the file name key */
                        continue;
                ck_assert_int_eq(sp - p, 6);
                if (prev)
                        ck_assert_int_lt(memcmp(prev, p, 6), 0);
                for (char *v = sp + 1; v < nl;) {
                        long x = strtol(v, &v, 10);
                        ck_assert_int_gt(x, last);
                        last = x;
                        if (*v == ',')
                                v++;
                }
        }
        /* Every residue of i mod 10007 gets a q key, about a third of them a k key too,
         * plus "z\0z". */
        ck_assert_uint_gt(lines, 10007 + 3000);
        free(in);
        free(text);
}
END_TEST

static int list_dir(char ***ret);

START_TEST(test_sequential_errors) {
        _cleanup_(sequential_freep) Sequential *s = sequential_new(&lines_app);
        struct stat st;
        char **names;
        int n;

        ck_assert_ptr_nonnull(s);
        enter_test_dir();

        ck_assert_int_eq(sequential_map(s, "bad", "", 0), -EBADMSG);
        ck_assert_int_eq(sequential_map_file(s, "does-not-exist"), -ENOENT);
        ck_assert_int_eq(mkdir("subdir", 0755), 0);
        ck_assert_int_eq(sequential_map_file(s, "subdir"), -EISDIR);

        /* A failing reduce leaves neither the output nor a temporary file. */
        map_string(s, "f", "! 1\na 2\n");
        ck_assert_int_eq(sequential_write_output(s, "mr-out-0"), -ENOTSUP);
        ck_assert_int_lt(stat("mr-out-0", &st), 0);
        n = list_dir(&names);
        ck_assert_int_eq(n, 1);
        ck_assert_str_eq(names[0], "subdir");
        free(names[0]);
        free(names);
}
END_TEST

static int list_dir(char ***ret) {
        DIR *d = opendir(".");
        struct dirent *de;
        char **names = NULL;
        int n = 0;

        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                names = realloc(names, (size_t) (n + 1) * sizeof(char *));
                ck_assert_ptr_nonnull(names);
                names[n] = strdup(de->d_name);
                ck_assert_ptr_nonnull(names[n++]);
        }
        closedir(d);
        *ret = names;
        return n;
}

static int string_compare(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Word count of generated text, checked against a count done here independently (with
 * isalpha() in the C locale, which is exactly [A-Za-z]). */
START_TEST(test_sequential_wc_generated) {
        static const char *const vocabulary[] = { "the", "The", "a", "cat", "Cat", "caf\xc3\xa9", "naïve",
                                                  "x", "zebra", "sherlock", "tom", "don't" };
        static const char *const separators[] = { " ", "\n", ", ", "--", "\t", "42", "\xe2\x80\x94", ". " };
        _cleanup_(sequential_freep) Sequential *s = NULL;
        char **words = NULL, *expected = NULL, *text;
        size_t n_words = 0, expected_size = 0;
        uint32_t seed = 12345;
        _cleanup_(app_freep) App *wc = load("wc");
        FILE *e;

        enter_test_dir();
        for (int file = 0; file < 3; file++) {
                char name[16], *buf = NULL;
                size_t size = 0;
                FILE *f = open_memstream(&buf, &size);

                ck_assert_ptr_nonnull(f);
                for (int i = 0; i < 2000; i++) {
                        seed = seed * 1103515245 + 12345;
                        fputs(vocabulary[(seed >> 16) % ELEMENTSOF(vocabulary)], f);
                        fputs(separators[(seed >> 8) % ELEMENTSOF(separators)], f);
                }
                fclose(f);
                snprintf(name, sizeof(name), "in-%d.txt", file);
                write_text(name, buf);

                for (char *p = buf; *p;) {
                        char *start;

                        while (*p && !isalpha((unsigned char) *p))
                                p++;
                        for (start = p; isalpha((unsigned char) *p); p++)
                                ;
                        if (p > start) {
                                words = realloc(words, (n_words + 1) * sizeof(char *));
                                ck_assert_ptr_nonnull(words);
                                words[n_words++] = strndup(start, (size_t) (p - start));
                        }
                }
                free(buf);
        }
        qsort(words, n_words, sizeof(char *), string_compare);
        e = open_memstream(&expected, &expected_size);
        ck_assert_ptr_nonnull(e);
        for (size_t i = 0, j; i < n_words; i = j) {
                for (j = i; j < n_words && streq(words[i], words[j]); j++)
                        ;
                fprintf(e, "%s %zu\n", words[i], j - i);
        }
        fclose(e);

        s = sequential_new(wc->app);
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(sequential_map_file(s, "in-0.txt"), 0);
        ck_assert_int_eq(sequential_map_file(s, "in-1.txt"), 0);
        ck_assert_int_eq(sequential_map_file(s, "in-2.txt"), 0);
        ck_assert_int_eq(sequential_write_output(s, "mr-out-0"), 0);

        text = read_text("mr-out-0");
        ck_assert_str_eq(text, expected);
        free(text);

        /* With combine: each input's counts summed before reduce, the same output. */
        s = sequential_free(s);
        s = sequential_new(wc->app);
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(sequential_set_combine(s, true), 0);
        ck_assert_int_eq(sequential_map_file(s, "in-0.txt"), 0);
        ck_assert_int_eq(sequential_map_file(s, "in-1.txt"), 0);
        ck_assert_int_eq(sequential_map_file(s, "in-2.txt"), 0);
        ck_assert_int_eq(sequential_write_output(s, "mr-out-0"), 0);
        text = read_text("mr-out-0");
        ck_assert_str_eq(text, expected);
        free(text);

        /* The grouped engine: the same output, also with every key's values combined in
         * place after each input (a bound of one byte), so that reduce sums partial sums
         * and runs of "1"s alike. */
        for (size_t bound = 0; bound <= 1; bound++) {
                _cleanup_(grouped_freep) Grouped *g = grouped_new(wc->app);

                ck_assert_ptr_nonnull(g);
                grouped_set_combine_bound(g, bound);
                ck_assert_int_eq(grouped_map_file(g, "in-0.txt"), 0);
                ck_assert_int_eq(grouped_map_file(g, "in-1.txt"), 0);
                ck_assert_int_eq(grouped_map_file(g, "in-2.txt"), 0);
                ck_assert_int_eq(grouped_write_output(g, "mr-out-0"), 0);
                text = read_text("mr-out-0");
                ck_assert_str_eq(text, expected);
                free(text);
        }
        free(expected);
        for (size_t i = 0; i < n_words; i++)
                free(words[i]);
        free(words);
}
END_TEST

/* The program itself: exit codes and output. */

static int run_sequential(const char *const *args) {
        const char *argv[16] = { "mrkv-sequential" };
        int status;
        pid_t pid;

        for (size_t i = 0; args[i]; i++) {
                ck_assert_uint_lt(i + 2, ELEMENTSOF(argv));
                argv[i + 1] = args[i];
        }

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY);

                if (null < 0 || dup2(null, STDOUT_FILENO) < 0 || dup2(null, STDERR_FILENO) < 0 ||
                    setenv("MRKV_APP_PATH", MR_APP_DIR, 1) < 0)
                        _exit(127);
                execv(MRKV_SEQUENTIAL_PATH, (char **) argv);
                _exit(127);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        return WEXITSTATUS(status);
}

START_TEST(test_sequential_program) {
        struct stat st;
        char *text, **names;
        int n;

        enter_test_dir();
        write_text("a.txt", "a b a\nB c");
        write_text("b.txt", "c c zebra Apple");

        ck_assert_int_eq(run_sequential((const char *const[]) { "wc", "a.txt", "b.txt", NULL }), 0);
        text = read_text("mr-out-0");
        ck_assert_str_eq(text, "Apple 1\nB 1\na 2\nb 1\nc 3\nzebra 1\n");
        free(text);

        ck_assert_int_eq(run_sequential((const char *const[]) { MR_APP_DIR "/indexer.so", "a.txt", "b.txt", NULL }), 0);
        text = read_text("mr-out-0");
        ck_assert_str_eq(text, "Apple 1 b.txt\nB 1 a.txt\na 1 a.txt\nb 1 a.txt\nc 2 a.txt,b.txt\nzebra 1 b.txt\n");
        free(text);

        /* --plain, the reference engine: the same output. */
        ck_assert_int_eq(run_sequential((const char *const[]) { "--plain", "wc", "a.txt", "b.txt", NULL }), 0);
        text = read_text("mr-out-0");
        ck_assert_str_eq(text, "Apple 1\nB 1\na 2\nb 1\nc 3\nzebra 1\n");
        free(text);
        ck_assert_int_eq(run_sequential((const char *const[]) { "-p", "--combine", "indexer", "a.txt", "b.txt", NULL }), 0);
        text = read_text("mr-out-0");
        ck_assert_str_eq(text, "Apple 1 b.txt\nB 1 a.txt\na 1 a.txt\nb 1 a.txt\nc 2 a.txt,b.txt\nzebra 1 b.txt\n");
        free(text);
        ck_assert_int_eq(run_sequential((const char *const[]) { "--plain", "--combine", "nocrash", "a.txt", NULL }), 1);
        ck_assert_int_eq(run_sequential((const char *const[]) { "--plain", "wc", "missing.txt", NULL }), 1);

        /* --combine: the same output, and refused for an app without combine. */
        ck_assert_int_eq(run_sequential((const char *const[]) { "--combine", MR_APP_DIR "/indexer.so", "a.txt", "b.txt", NULL }), 0);
        text = read_text("mr-out-0");
        ck_assert_str_eq(text, "Apple 1 b.txt\nB 1 a.txt\na 1 a.txt\nb 1 a.txt\nc 2 a.txt,b.txt\nzebra 1 b.txt\n");
        free(text);
        ck_assert_int_eq(run_sequential((const char *const[]) { "-c", "wc", "a.txt", "b.txt", NULL }), 0);
        text = read_text("mr-out-0");
        ck_assert_str_eq(text, "Apple 1\nB 1\na 2\nb 1\nc 3\nzebra 1\n");
        free(text);
        ck_assert_int_eq(run_sequential((const char *const[]) { "--combine", "nocrash", "a.txt", NULL }), 1);

        /* Failures write no output at all. */
        ck_assert_int_eq(unlink("mr-out-0"), 0);
        ck_assert_int_eq(run_sequential((const char *const[]) { "wc", "a.txt", "missing.txt", NULL }), 1);
        ck_assert_int_eq(run_sequential((const char *const[]) { "nosuchapp", "a.txt", NULL }), 1);
        ck_assert_int_eq(run_sequential((const char *const[]) { "wc", NULL }), 2);
        ck_assert_int_eq(run_sequential((const char *const[]) { NULL }), 2);
        ck_assert_int_eq(run_sequential((const char *const[]) { "--bogus", "wc", "a.txt", NULL }), 2);
        ck_assert_int_lt(stat("mr-out-0", &st), 0);
        ck_assert_int_eq(run_sequential((const char *const[]) { "--help", NULL }), 0);
        ck_assert_int_eq(run_sequential((const char *const[]) { "--version", NULL }), 0);

        /* Nothing left behind but the inputs. */
        n = list_dir(&names);
        ck_assert_int_eq(n, 2);
        qsort(names, (size_t) n, sizeof(char *), string_compare);
        ck_assert_str_eq(names[0], "a.txt");
        ck_assert_str_eq(names[1], "b.txt");
        free(names[0]);
        free(names[1]);
        free(names);
}
END_TEST

static Suite *apps_suite(void) {
        Suite *s = suite_create("apps");
        TCase *tc;

        tc = tcase_create("wc");
        tcase_add_test(tc, test_wc_words);
        tcase_add_test(tc, test_wc_no_words);
        tcase_add_test(tc, test_wc_reduce);
        tcase_add_test(tc, test_wc_combine);
        tcase_add_test(tc, test_wc_runs);
        suite_add_tcase(s, tc);

        tc = tcase_create("indexer");
        tcase_add_test(tc, test_indexer_distinct);
        tcase_add_test(tc, test_indexer_many_words);
        tcase_add_test(tc, test_indexer_reduce_sorted);
        tcase_add_test(tc, test_indexer_combine);
        suite_add_tcase(s, tc);

        tc = tcase_create("lab-apps");
        tcase_add_test(tc, test_nocrash);
        tcase_add_test(tc, test_early_exit);
        tcase_add_test(tc, test_rtiming_map);
        tcase_add_test(tc, test_mtiming_map);
        tcase_add_test(tc, test_jobcount_reduce);
        suite_add_tcase(s, tc);

        tc = tcase_create("loader");
        tcase_add_test(tc, test_load_bad_abi);
        tcase_add_test(tc, test_load_short_struct);
        tcase_add_test(tc, test_load_no_entry);
        tcase_add_test(tc, test_load_no_reduce);
        tcase_add_test(tc, test_load_not_elf);
        tcase_add_test(tc, test_load_not_found);
        tcase_add_test(tc, test_load_abi_1_0);
        tcase_add_test(tc, test_load_by_name);
        suite_add_tcase(s, tc);

        tc = tcase_create("sequential");
        tcase_add_test(tc, test_sequential_order);
        tcase_add_test(tc, test_sequential_many_values);
        tcase_add_test(tc, test_sequential_errors);
        tcase_add_test(tc, test_sequential_wc_generated);
        tcase_add_test(tc, test_grouped_indexer);
        tcase_add_test(tc, test_grouped_key_order);
        tcase_add_test(tc, test_sequential_program);
        tcase_set_timeout(tc, 30);
        suite_add_tcase(s, tc);

        return s;
}

int main(void) {
        SRunner *sr = srunner_create(apps_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
