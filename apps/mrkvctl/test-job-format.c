/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of job-format.c: parsing the coordinator's Job object and the ways
 * mrkvctl prints it. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "job-format.h"
#include "json-util.h"
#include "macro.h"

/* 2024-05-01 12:00:00 UTC */
#define T0 UINT64_C(1714564800000000)

static const char *const job_done_json =
        "{\"id\":\"3\",\"app\":\"wc\",\"state\":\"done\",\"files\":[\"/in/a.txt\",\"/in/b.txt\"],"
        "\"nreduce\":2,\"workdir\":\"/w/jobs/3\",\"map_done\":2,\"map_total\":2,\"reduce_done\":2,"
        "\"reduce_total\":2,\"progress\":1.0,\"submit_time\":1714564800000000,"
        "\"start_time\":1714564801000000,\"finish_time\":1714564805250000,"
        "\"outputs\":[\"/w/jobs/3/mr-out-0\",\"/w/jobs/3/mr-out-1\"]}";

static const char *const job_mapping_json =
        "{\"id\":\"12\",\"app\":null,\"state\":\"mapping\",\"files\":[\"/in/a.txt\"],"
        "\"nreduce\":10,\"workdir\":\"/w\",\"map_done\":3,\"map_total\":8,\"reduce_done\":0,"
        "\"reduce_total\":10,\"progress\":0.1666,\"submit_time\":1714564800000000,"
        "\"start_time\":1714564800500000,\"outputs\":[],\"from_the_future\":{\"x\":1}}";

static json_object *parse_or_die(const char *s) {
        json_object *o = json_tokener_parse(s);
        ck_assert_ptr_nonnull(o);
        return o;
}

/* Parses job_done_json with field replaced by value (raw JSON, or NULL to drop it). */
static int parse_with(const char *field, const char *value) {
        _cleanup_json_ json_object *o = parse_or_die(job_done_json);
        JobInfo j;

        if (value)
                json_object_object_add(o, field, json_tokener_parse(value));
        else
                json_object_object_del(o, field);
        return job_info_parse(o, &j);
}

typedef void (*PrintFunction)(FILE *f, const JobInfo *j, size_t n, uint64_t now);

static char *capture(PrintFunction print, const JobInfo *j, size_t n, uint64_t now) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        ck_assert_ptr_nonnull(f);
        print(f, j, n, now);
        ck_assert_int_eq(fclose(f), 0);
        return buf;
}

static void print_status(FILE *f, const JobInfo *j, size_t n, uint64_t now) {
        job_print_status(f, j, now);
}
static void print_summary(FILE *f, const JobInfo *j, size_t n, uint64_t now) {
        job_print_summary(f, j);
}
static void print_table(FILE *f, const JobInfo *j, size_t n, uint64_t now) {
        job_print_table(f, j, n);
}

START_TEST(test_parse) {
        _cleanup_json_ json_object *done = parse_or_die(job_done_json);
        _cleanup_json_ json_object *mapping = parse_or_die(job_mapping_json);
        JobInfo j;

        ck_assert_int_eq(job_info_parse(done, &j), 0);
        ck_assert_str_eq(j.id, "3");
        ck_assert_str_eq(j.app, "wc");
        ck_assert_str_eq(j.state, "done");
        ck_assert_str_eq(j.workdir, "/w/jobs/3");
        ck_assert_ptr_null(j.error);
        ck_assert_uint_eq(json_object_array_length(j.files), 2);
        ck_assert_uint_eq(json_object_array_length(j.outputs), 2);
        ck_assert_uint_eq(j.map_total, 2);
        ck_assert_uint_eq(j.finish_time, T0 + 5250000);

        /* null app, no finish_time, and a field this mrkvctl does not know. */
        ck_assert_int_eq(job_info_parse(mapping, &j), 0);
        ck_assert_ptr_null(j.app);
        ck_assert_uint_eq(j.finish_time, 0);
        ck_assert_uint_eq(j.map_done, 3);
}
END_TEST

START_TEST(test_parse_rejects) {
        ck_assert_int_eq(parse_with("id", NULL), -EBADMSG);
        ck_assert_int_eq(parse_with("state", "3"), -EBADMSG);
        ck_assert_int_eq(parse_with("map_done", "\"2\""), -EBADMSG);
        ck_assert_int_eq(parse_with("map_done", "-1"), -EBADMSG);
        ck_assert_int_eq(parse_with("map_done", "3"), -EBADMSG); /* more done than there are */
        ck_assert_int_eq(parse_with("files", "[\"/a\", 1]"), -EBADMSG);
        ck_assert_int_eq(parse_with("outputs", "{}"), -EBADMSG);
        ck_assert_int_eq(parse_with("progress", "\"half\""), -EBADMSG);
        ck_assert_int_eq(parse_with("workdir", "\"/a\\u0000b\""), -EBADMSG);
        ck_assert_int_eq(parse_with("error", "{}"), -EBADMSG);
        /* A float may come as an integer; optional fields may be null. */
        ck_assert_int_eq(parse_with("progress", "1"), 0);
        ck_assert_int_eq(parse_with("finish_time", "null"), 0);
        /* The lists, which a summary leaves out. */
        ck_assert_int_eq(parse_with("files", "null"), 0);
        ck_assert_int_eq(parse_with("outputs", NULL), 0);
        ck_assert_int_eq(parse_with("error", "\"boom\""), 0);

        JobInfo j;
        _cleanup_json_ json_object *a = json_object_new_array();
        ck_assert_int_eq(job_info_parse(a, &j), -EBADMSG);
}
END_TEST

START_TEST(test_states) {
        ck_assert(job_state_is_final("done"));
        ck_assert(job_state_is_final("failed"));
        ck_assert(job_state_is_final("cancelled"));
        ck_assert(!job_state_is_final("queued"));
        ck_assert(!job_state_is_final("mapping"));
        ck_assert(!job_state_is_final("reducing"));
}
END_TEST

START_TEST(test_durations) {
        char b[32];

        ck_assert_str_eq(format_duration(0, b, sizeof(b)), "0.0s");
        ck_assert_str_eq(format_duration(4250000, b, sizeof(b)), "4.2s");
        ck_assert_str_eq(format_duration(59999999, b, sizeof(b)), "59.9s");
        ck_assert_str_eq(format_duration(65 * USEC_PER_SEC, b, sizeof(b)), "1m05s");
        ck_assert_str_eq(format_duration(3723 * USEC_PER_SEC, b, sizeof(b)), "1h02m");

        ck_assert_str_eq(format_elapsed(7 * USEC_PER_SEC + 900000, b, sizeof(b)), "0:07");
        ck_assert_str_eq(format_elapsed(754 * USEC_PER_SEC, b, sizeof(b)), "12:34");
        ck_assert_str_eq(format_elapsed(3723 * USEC_PER_SEC, b, sizeof(b)), "1:02:03");

        /* The test runs with TZ=UTC. */
        ck_assert_str_eq(format_timestamp(T0, b, sizeof(b)), "2024-05-01 12:00:00");
        ck_assert_str_eq(format_timestamp(0, b, sizeof(b)), "-");
}
END_TEST

START_TEST(test_percent) {
        JobInfo j = { .map_total = 8, .reduce_total = 10 };

        ck_assert_uint_eq(job_percent(&j), 0);
        j.map_done = 3;
        ck_assert_uint_eq(job_percent(&j), 16);
        j.map_done = 8;
        j.reduce_done = 9;
        ck_assert_uint_eq(job_percent(&j), 94); /* 17/18: not yet 100 */
        j.reduce_done = 10;
        ck_assert_uint_eq(job_percent(&j), 100);
}
END_TEST

START_TEST(test_progress_line) {
        _cleanup_json_ json_object *o = parse_or_die(job_mapping_json);
        _cleanup_free_ char *line = NULL;
        JobInfo j;

        ck_assert_int_eq(job_info_parse(o, &j), 0);
        ck_assert_int_eq(job_format_progress_line(&j, 12 * USEC_PER_SEC, &line), 0);
        ck_assert_str_eq(line, "job 12: mapping, map 3/8, reduce 0/10, 16%, 0:12");
        ck_assert_ptr_null(strchr(line, '\r'));
}
END_TEST

START_TEST(test_progress_bar) {
        _cleanup_json_ json_object *o = parse_or_die(job_mapping_json);
        JobInfo j;

        ck_assert_int_eq(job_info_parse(o, &j), 0);
        for (unsigned columns = 2; columns <= 200; columns++) {
                _cleanup_free_ char *bar = NULL;

                ck_assert_int_eq(job_format_progress_bar(&j, 5 * USEC_PER_SEC, columns, &bar), 0);
                /* Never as wide as the terminal: the redraw must not wrap. */
                ck_assert_uint_lt(strlen(bar), columns);
                ck_assert_ptr_null(strchr(bar, '\n'));
                if (columns >= 100) {
                        ck_assert_ptr_nonnull(strstr(bar, "16%  map 3/8  reduce 0/10  0:05"));
                        ck_assert_ptr_nonnull(strchr(bar, '['));
                }
        }

        _cleanup_free_ char *bar = NULL;
        ck_assert_int_eq(job_format_progress_bar(&j, 5 * USEC_PER_SEC, 100, &bar), 0);
        /* 40 columns of bar at 16%: 6 filled. */
        ck_assert_str_eq(bar, "job 12 mapping    [######..................................]   16%  "
                              "map 3/8  reduce 0/10  0:05");
}
END_TEST

START_TEST(test_summary) {
        _cleanup_json_ json_object *o = parse_or_die(job_done_json);
        _cleanup_free_ char *done = NULL, *failed = NULL, *cancelled = NULL;
        JobInfo j;

        ck_assert_int_eq(job_info_parse(o, &j), 0);
        done = capture(print_summary, &j, 1, 0);
        ck_assert_str_eq(done, "Job 3 done in 4.2s (2 maps, 2 reduces). Output files:\n"
                               "  /w/jobs/3/mr-out-0\n"
                               "  /w/jobs/3/mr-out-1\n");

        j.state = "failed";
        j.error = "map task 1 failed 3 times";
        failed = capture(print_summary, &j, 1, 0);
        ck_assert_str_eq(failed, "Job 3 failed after 4.2s: map task 1 failed 3 times\n");

        /* Cancelled before any worker started it: timed from the submission. */
        j.state = "cancelled";
        j.start_time = 0;
        j.finish_time = T0 + 2 * USEC_PER_SEC;
        cancelled = capture(print_summary, &j, 1, 0);
        ck_assert_str_eq(cancelled, "Job 3 cancelled after 2.0s.\n");
}
END_TEST

START_TEST(test_status) {
        _cleanup_json_ json_object *o = parse_or_die(job_done_json);
        _cleanup_free_ char *s = NULL;
        JobInfo j;

        ck_assert_int_eq(job_info_parse(o, &j), 0);
        s = capture(print_status, &j, 1, T0 + 65 * USEC_PER_SEC);
        ck_assert_str_eq(s, "      Job: 3\n"
                            "      App: wc\n"
                            "    State: done\n"
                            " Progress: 100% (map 2/2, reduce 2/2)\n"
                            "Submitted: 2024-05-01 12:00:00 (1m05s ago)\n"
                            "  Started: 2024-05-01 12:00:01\n"
                            " Finished: 2024-05-01 12:00:05 (after 4.2s)\n"
                            "  Workdir: /w/jobs/3\n"
                            "    Input: /in/a.txt\n"
                            "           /in/b.txt\n"
                            "  Reduces: 2\n"
                            "   Output: /w/jobs/3/mr-out-0\n"
                            "           /w/jobs/3/mr-out-1\n");

        /* An ended job whose file list the coordinator no longer keeps. */
        json_object_object_add(o, "files", NULL);
        ck_assert_int_eq(job_info_parse(o, &j), 0);
        s = mfree(s);
        s = capture(print_status, &j, 1, T0 + 65 * USEC_PER_SEC);
        ck_assert_ptr_nonnull(strstr(s, "  Workdir: /w/jobs/3\n    Input: (not kept)\n  Reduces: 2\n"));
}
END_TEST

/* A streaming job in splits, with backups and counters. */
START_TEST(test_status_splits_counters) {
        _cleanup_json_ json_object *o = parse_or_die(job_done_json);
        _cleanup_free_ char *s = NULL;
        JobInfo j;

        json_object_object_add(o, "app", json_object_new_string("streaming"));
        json_object_object_add(o, "mapper", json_object_new_string("./map.py"));
        json_object_object_add(o, "reducer", json_object_new_string("./reduce.py"));
        json_object_object_add(o, "split_size", json_object_new_int64(64 << 20));
        json_object_object_add(o, "backup_tasks", json_object_new_boolean(true));
        json_object_object_add(o, "combine", json_object_new_boolean(false));
        json_object_object_add(o, "counters",
                               parse_or_die("{\"map_input_records\":12,\"backup_attempts_won\":1}"));
        ck_assert_int_eq(job_info_parse(o, &j), 0);
        s = capture(print_status, &j, 1, T0 + 65 * USEC_PER_SEC);
        ck_assert_ptr_nonnull(strstr(s, "    Input: /in/a.txt\n"
                                        "           /in/b.txt\n"
                                        "   Mapper: ./map.py\n"
                                        "  Reducer: ./reduce.py\n"
                                        "   Splits: 64 MiB\n"
                                        "  Backups: yes\n"
                                        " Combiner: no\n"
                                        "  Reduces: 2\n"));
        ck_assert_ptr_nonnull(strstr(s, "/w/jobs/3/mr-out-1\n"
                                        " Counters: map_input_records   12\n"
                                        "           backup_attempts_won 1\n"));

        /* One map task per file; sizes that are not a power of 1024 stay bytes. */
        json_object_object_add(o, "split_size", json_object_new_int64(0));
        ck_assert_int_eq(job_info_parse(o, &j), 0);
        s = mfree(s);
        s = capture(print_status, &j, 1, T0);
        ck_assert_ptr_nonnull(strstr(s, "   Splits: one map task per file\n"));
        char b[32];
        ck_assert_str_eq(format_bytes(1000, b, sizeof(b)), "1000 B");
        ck_assert_str_eq(format_bytes(3 << 10, b, sizeof(b)), "3 KiB");

        /* Counters that are not non-negative integers, a wrong type: refused. */
        ck_assert_int_eq(parse_with("counters", "{\"x\":-1}"), -EBADMSG);
        ck_assert_int_eq(parse_with("counters", "{\"x\":\"1\"}"), -EBADMSG);
        ck_assert_int_eq(parse_with("counters", "[1]"), -EBADMSG);
        ck_assert_int_eq(parse_with("backup_tasks", "1"), -EBADMSG);
        ck_assert_int_eq(parse_with("combine", "\"no\""), -EBADMSG);
        ck_assert_int_eq(parse_with("split_size", "-1"), -EBADMSG);
        ck_assert_int_eq(parse_with("counters", "{}"), 0);
}
END_TEST

/* A queued job of another user: its owner, whom it waits for, no files. */
START_TEST(test_status_waiting) {
        _cleanup_json_ json_object *o = parse_or_die(
                "{\"id\":\"4\",\"owner_uid\":1000,\"waiting\":\"a worker of uid 1000\",\"app\":\"wc\","
                "\"state\":\"queued\",\"files\":[],\"nreduce\":1,\"workdir\":\"\",\"map_done\":0,"
                "\"map_total\":1,\"reduce_done\":0,\"reduce_total\":1,\"progress\":0.0,"
                "\"submit_time\":1714564800000000,\"outputs\":[]}");
        _cleanup_free_ char *s = NULL;
        JobInfo j;

        ck_assert_int_eq(job_info_parse(o, &j), 0);
        s = capture(print_status, &j, 1, T0 + 5 * USEC_PER_SEC);
        ck_assert_str_eq(s, "      Job: 4\n"
                            "      App: wc\n"
                            "    Owner: uid 1000\n"
                            "    State: queued\n"
                            "  Waiting: for a worker of uid 1000\n"
                            " Progress: 0% (map 0/1, reduce 0/1)\n"
                            "Submitted: 2024-05-01 12:00:00 (5.0s ago)\n"
                            "  Workdir: -\n"
                            "    Input: -\n"
                            "  Reduces: 1\n"
                            "   Output: -\n");
}
END_TEST

START_TEST(test_table) {
        _cleanup_json_ json_object *a = parse_or_die(job_done_json), *b = parse_or_die(job_mapping_json);
        _cleanup_free_ char *s = NULL;
        JobInfo j[2];

        ck_assert_int_eq(job_info_parse(a, &j[0]), 0);
        ck_assert_int_eq(job_info_parse(b, &j[1]), 0);
        s = capture(print_table, j, 2, 0);
        ck_assert_str_eq(s, "ID  STATE    APP  PROGRESS  MAPS  REDUCES  SUBMITTED\n"
                            "3   done     wc   100%      2/2   2/2      2024-05-01 12:00:00\n"
                            "12  mapping  -    16%       3/8   0/10     2024-05-01 12:00:00\n");
}
END_TEST

static Suite *job_format_suite(void) {
        Suite *s = suite_create("job-format");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_parse);
        tcase_add_test(tc, test_parse_rejects);
        tcase_add_test(tc, test_states);
        tcase_add_test(tc, test_durations);
        tcase_add_test(tc, test_percent);
        tcase_add_test(tc, test_progress_line);
        tcase_add_test(tc, test_progress_bar);
        tcase_add_test(tc, test_summary);
        tcase_add_test(tc, test_status);
        tcase_add_test(tc, test_status_waiting);
        tcase_add_test(tc, test_status_splits_counters);
        tcase_add_test(tc, test_table);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(job_format_suite());
        int failed;

        /* Timestamps are printed in local time; the expected strings are UTC. */
        setenv("TZ", "UTC", 1);
        tzset();
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
