/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of history parsing and writing (JSON Lines). */
#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"
#include "macro.h"

/* Parses text into a new history; returns what lin_history_parse() returned. */
static int parse(const char *text, LinHistory **ret, char **ret_error) {
        _cleanup_fclose_ FILE *f = fmemopen((void *) text, strlen(text), "r");
        LinHistory *h = lin_history_new();
        int r;

        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(h);
        r = lin_history_parse(h, f, ret_error);
        *ret = h;
        return r;
}

START_TEST(test_parse_valid) {
        _cleanup_(lin_history_freep) LinHistory *h = NULL;
        _cleanup_free_ char *error = NULL;
        const char *text =
                "{\"client\":1,\"op\":\"put\",\"key\":\"k\",\"value\":\"v\",\"version\":0,\"call\":10,\"return\":20,"
                "\"result\":\"ok\"}\n"
                "\n"
                "   \n"
                "{\"client\":2,\"op\":\"get\",\"key\":\"k\",\"call\":30,\"return\":40,\"result\":\"ok\","
                "\"out_value\":\"v\",\"out_version\":1,\"extra\":[1,2]}\n"
                "{\"client\":3,\"op\":\"get\",\"key\":\"other\",\"call\":-5,\"return\":-5,\"result\":\"nokey\"}\n"
                "{\"client\":4,\"op\":\"put\",\"key\":\"k\",\"value\":\"\",\"version\":9,\"call\":50,\"return\":null}\n"
                "{\"client\":5,\"op\":\"put\",\"key\":\"k\",\"value\":\"w\",\"version\":1,\"call\":60,"
                "\"result\":\"maybe\"}";

        ck_assert_int_eq(parse(text, &h, &error), 0);
        ck_assert_ptr_null(error);
        ck_assert_uint_eq(h->n_ops, 5);

        ck_assert_int_eq(h->ops[0].client, 1);
        ck_assert_int_eq(h->ops[0].kind, LIN_PUT);
        ck_assert_str_eq(h->ops[0].key, "k");
        ck_assert_str_eq(h->ops[0].value, "v");
        ck_assert_uint_eq(h->ops[0].version, 0);
        ck_assert_int_eq(h->ops[0].call, 10);
        ck_assert_int_eq(h->ops[0].ret, 20);
        ck_assert_int_eq(h->ops[0].outcome, LIN_OUT_OK);
        ck_assert_uint_eq(h->ops[0].line, 1);

        ck_assert_int_eq(h->ops[1].kind, LIN_GET);
        ck_assert_str_eq(h->ops[1].out_value, "v");
        ck_assert_uint_eq(h->ops[1].out_version, 1);
        ck_assert_uint_eq(h->ops[1].line, 4);

        ck_assert_int_eq(h->ops[2].outcome, LIN_OUT_NOKEY);
        ck_assert_int_eq(h->ops[2].call, -5);
        ck_assert_ptr_null(h->ops[2].out_value);

        /* No reply: a "maybe" that may land any time after the call. */
        ck_assert_int_eq(h->ops[3].ret, LIN_NEVER);
        ck_assert_int_eq(h->ops[3].outcome, LIN_OUT_MAYBE);
        ck_assert_str_eq(h->ops[3].value, "");
        ck_assert_int_eq(h->ops[4].ret, LIN_NEVER);
        ck_assert_uint_eq(h->ops[4].line, 7);
}
END_TEST

static const struct {
        const char *line;
        const char *message; /* a part of the expected error */
} bad_lines[] = {
        { "{\"client\":1,", "incomplete JSON" },
        { "{\"client\":1}}", "more than one" },
        { "nonsense", "invalid JSON" },
        { "[1,2]", "not a JSON object" },
        { "{\"op\":\"get\",\"key\":\"k\",\"call\":1,\"return\":2,\"result\":\"nokey\"}", "missing \"client\"" },
        { "{\"client\":\"1\",\"op\":\"get\",\"key\":\"k\",\"call\":1,\"return\":2,\"result\":\"nokey\"}",
                "\"client\" must be an integer" },
        { "{\"client\":1,\"op\":\"del\",\"key\":\"k\",\"call\":1,\"return\":2,\"result\":\"nokey\"}",
                "\"op\" must be" },
        { "{\"client\":1,\"op\":\"get\",\"call\":1,\"return\":2,\"result\":\"nokey\"}", "missing \"key\"" },
        { "{\"client\":1,\"op\":\"get\",\"key\":5,\"call\":1,\"return\":2,\"result\":\"nokey\"}",
                "\"key\" must be a string" },
        { "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"return\":2,\"result\":\"nokey\"}", "missing \"call\"" },
        { "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"call\":1.5,\"return\":2,\"result\":\"nokey\"}",
                "\"call\" must be an integer" },
        { "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"call\":3,\"return\":2,\"result\":\"nokey\"}",
                "before \"call\"" },
        { "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"call\":1,\"return\":2}", "missing \"result\"" },
        { "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"call\":1,\"return\":2,\"result\":\"fine\"}",
                "\"result\" must be" },
        { "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"call\":1,\"return\":2,\"result\":\"version\"}",
                "\"ok\" or \"nokey\"" },
        { "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"call\":1,\"return\":2,\"result\":\"ok\",\"out_version\":1}",
                "needs \"out_value\"" },
        { "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"call\":1,\"return\":2,\"result\":\"ok\",\"out_value\":\"v\"}",
                "needs \"out_version\"" },
        { "{\"client\":1,\"op\":\"put\",\"key\":\"k\",\"version\":0,\"call\":1,\"return\":2,\"result\":\"ok\"}",
                "needs \"value\"" },
        { "{\"client\":1,\"op\":\"put\",\"key\":\"k\",\"value\":\"v\",\"call\":1,\"return\":2,\"result\":\"ok\"}",
                "needs \"version\"" },
        { "{\"client\":1,\"op\":\"put\",\"key\":\"k\",\"value\":\"v\",\"version\":-1,\"call\":1,\"return\":2,"
          "\"result\":\"ok\"}",
                "\"version\" is out of range" },
        { "{\"client\":1,\"op\":\"put\",\"key\":\"k\",\"value\":\"v\",\"version\":0,\"call\":1,\"result\":\"ok\"}",
                "without a return must have result \"maybe\"" },
};

START_TEST(test_parse_bad_line) {
        _cleanup_(lin_history_freep) LinHistory *h = NULL;
        _cleanup_free_ char *text = NULL, *error = NULL;
        const char *good = "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"call\":1,\"return\":2,\"result\":\"nokey\"}";

        /* Two good lines, a blank one, then the bad one: line 4. */
        ck_assert_int_ge(asprintf(&text, "%s\n%s\n\n%s\n%s\n", good, good, bad_lines[_i].line, good), 0);
        ck_assert_int_eq(parse(text, &h, &error), -EBADMSG);
        ck_assert_ptr_nonnull(error);
        ck_assert_msg(strncmp(error, "line 4: ", 8) == 0, "%s", error);
        ck_assert_msg(strstr(error, bad_lines[_i].message), "\"%s\" lacks \"%s\"", error, bad_lines[_i].message);
}
END_TEST

START_TEST(test_parse_nul_byte) {
        static const char text[] = "{\"client\":1,\"op\":\"get\",\"key\":\"k\0\",\"call\":1,\"return\":2,"
                                   "\"result\":\"nokey\"}\n";
        _cleanup_fclose_ FILE *f = fmemopen((void *) text, sizeof(text) - 1, "r");
        _cleanup_(lin_history_freep) LinHistory *h = lin_history_new();
        _cleanup_free_ char *error = NULL;

        ck_assert_int_eq(lin_history_parse(h, f, &error), -EBADMSG);
        ck_assert_str_eq(error, "line 1: contains a NUL byte");
}
END_TEST

START_TEST(test_write_roundtrip) {
        _cleanup_(lin_history_freep) LinHistory *h = lin_history_new(), *back = NULL;
        _cleanup_free_ char *buf = NULL, *error = NULL;
        size_t size = 0;
        FILE *f;

        ck_assert_int_eq(lin_history_add_put(h, 1, "k\"ey", "va\nl\\ue/", 0, 10, 20, LIN_OUT_OK), 0);
        ck_assert_int_eq(lin_history_add_get(h, 2, "k\"ey", 15, 25, LIN_OUT_OK, "va\nl\\ue/", 1), 0);
        ck_assert_int_eq(lin_history_add_get(h, 3, "x", 30, 31, LIN_OUT_NOKEY, NULL, 0), 0);
        ck_assert_int_eq(lin_history_add_put(h, 4, "x", "", UINT64_C(1) << 40, 40, LIN_NEVER, LIN_OUT_MAYBE), 0);
        ck_assert_int_eq(lin_history_add_put(h, -7, "x", "y", 3, 41, 42, LIN_OUT_VERSION), 0);

        f = open_memstream(&buf, &size);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(lin_history_write(h, f), 0);
        ck_assert_int_eq(fclose(f), 0);

        /* One line per operation. */
        size_t lines = 0;
        for (const char *p = buf; *p; p++)
                lines += *p == '\n';
        ck_assert_uint_eq(lines, 5);

        ck_assert_int_eq(parse(buf, &back, &error), 0);
        ck_assert_uint_eq(back->n_ops, h->n_ops);
        for (size_t i = 0; i < h->n_ops; i++) {
                const LinOp *a = &h->ops[i], *b = &back->ops[i];

                ck_assert_int_eq(a->client, b->client);
                ck_assert_int_eq(a->kind, b->kind);
                ck_assert_str_eq(a->key, b->key);
                ck_assert_pstr_eq(a->value, b->value);
                ck_assert_uint_eq(a->version, b->version);
                ck_assert_int_eq(a->outcome, b->outcome);
                ck_assert_pstr_eq(a->out_value, b->out_value);
                ck_assert_uint_eq(a->out_version, b->out_version);
                ck_assert_int_eq(a->call, b->call);
                ck_assert_int_eq(a->ret, b->ret);
                ck_assert_uint_eq(b->line, i + 1);
        }
}
END_TEST

#define APPEND_THREADS 4
#define APPENDS_PER_THREAD 2000

static void *append_thread(void *arg) {
        LinHistory *h = arg;
        int64_t client = (int64_t) pthread_self() & 0xffff;

        for (int i = 0; i < APPENDS_PER_THREAD; i++) {
                char value[32];

                snprintf(value, sizeof(value), "%" PRIi64 "-%d", client, i);
                if (lin_history_add_put(h, client, "k", value, (uint64_t) i, i, i + 1, LIN_OUT_MAYBE) < 0)
                        return (void *) 1;
        }
        return NULL;
}

START_TEST(test_add_from_threads) {
        _cleanup_(lin_history_freep) LinHistory *h = lin_history_new();
        pthread_t threads[APPEND_THREADS];
        uint64_t sum = 0;

        for (int i = 0; i < APPEND_THREADS; i++)
                ck_assert_int_eq(pthread_create(&threads[i], NULL, append_thread, h), 0);
        for (int i = 0; i < APPEND_THREADS; i++) {
                void *r;

                ck_assert_int_eq(pthread_join(threads[i], &r), 0);
                ck_assert_ptr_null(r);
        }

        /* Nothing lost or torn: every thread's versions 0..n-1 are all there. */
        ck_assert_uint_eq(h->n_ops, APPEND_THREADS * APPENDS_PER_THREAD);
        for (size_t i = 0; i < h->n_ops; i++) {
                ck_assert_ptr_nonnull(h->ops[i].value);
                sum += h->ops[i].version;
        }
        ck_assert_uint_eq(sum, (uint64_t) APPEND_THREADS * APPENDS_PER_THREAD * (APPENDS_PER_THREAD - 1) / 2);
}
END_TEST

START_TEST(test_load_missing_file) {
        _cleanup_(lin_history_freep) LinHistory *h = NULL;
        _cleanup_free_ char *error = NULL;

        ck_assert_int_eq(lin_history_load("/nonexistent/history.jsonl", &h, &error), -ENOENT);
        ck_assert_ptr_null(h);
        ck_assert_ptr_nonnull(strstr(error, "/nonexistent/history.jsonl"));
}
END_TEST

START_TEST(test_outcome_names) {
        for (int o = 0; o < _LIN_OUT_MAX; o++)
                ck_assert_int_eq(lin_outcome_from_string(lin_outcome_to_string(o)), o);
        ck_assert_int_eq(lin_outcome_from_string("OK"), -EINVAL);
        ck_assert_ptr_null(lin_outcome_to_string(_LIN_OUT_MAX));
}
END_TEST

static Suite *history_suite(void) {
        Suite *s = suite_create("lincheck-history");
        TCase *tc = tcase_create("jsonl");

        tcase_add_test(tc, test_parse_valid);
        tcase_add_loop_test(tc, test_parse_bad_line, 0, ELEMENTSOF(bad_lines));
        tcase_add_test(tc, test_parse_nul_byte);
        tcase_add_test(tc, test_write_roundtrip);
        tcase_add_test(tc, test_add_from_threads);
        tcase_add_test(tc, test_load_missing_file);
        tcase_add_test(tc, test_outcome_names);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(history_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
