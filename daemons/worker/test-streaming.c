/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A streaming app's commands (daemons/worker/streaming.c): both pipes served, the exit
 * status read, and at the deadline, or when a command ends, nothing of it left running:
 * not its process group, not what it started in a session of its own. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "macro.h"
#include "streaming.h"
#include "time-util.h"
#include "unit-test.h"

typedef struct Pipe {
        const char *in;      /* what the command reads */
        size_t in_size;
        bool fed;
        char out[4096];      /* the start of what it writes */
        size_t out_size;
        int consume_error;   /* returned for its first output, if not 0 */
} Pipe;

static int produce(void *userdata, const char **ret_data, size_t *ret_size) {
        Pipe *p = userdata;

        if (p->fed || p->in_size == 0)
                return 0;
        p->fed = true;
        *ret_data = p->in;
        *ret_size = p->in_size;
        return 1;
}

static int consume(void *userdata, const char *data, size_t size) {
        Pipe *p = userdata;
        size_t n = MIN(size, sizeof(p->out) - 1 - p->out_size);

        if (p->consume_error)
                return p->consume_error;
        memcpy(p->out + p->out_size, data, n);
        p->out_size += n;
        p->out[p->out_size] = '\0';
        return 0;
}

static int run(const char *command, uint64_t deadline, Pipe *p, char **ret_error) {
        *ret_error = NULL;
        return streaming_run("mapper", command, deadline, produce, consume, p, ret_error);
}

/* Every pid the command printed, one a line, is gone, and this process (the test's, a
 * subreaper like the worker) has no child left. */
static void check_nothing_left(const char *pids, unsigned expected) {
        unsigned n = 0;

        for (const char *s = pids; *s; n++) {
                char *end;
                long pid = strtol(s, &end, 10);

                ck_assert_msg(end != s && *end == '\n', "not a pid line: '%s'", s);
                ck_assert_int_gt(pid, 1);
                ck_assert_msg(kill((pid_t) pid, 0) < 0 && errno == ESRCH, "process %ld is still there", pid);
                s = end + 1;
        }
        ck_assert_uint_eq(n, expected);
        ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
        ck_assert_int_eq(errno, ECHILD);
}

START_TEST(test_pipes_and_status) {
        _cleanup_free_ char *error = NULL;
        Pipe p = { .in = "a b\nc\n", .in_size = 6 };

        ck_assert_int_eq(run("tr ' ' '\\t'", UINT64_MAX, &p, &error), 0);
        ck_assert_ptr_null(error);
        ck_assert_str_eq(p.out, "a\tb\nc\n");

        p = (Pipe) {};
        ck_assert_int_eq(run("exit 3", usec_add(now_usec(), 60 * USEC_PER_SEC), &p, &error), -ECHILD);
        ck_assert_str_eq(error, "mapper 'exit 3' exited with status 3");
        error = mfree(error);

        ck_assert_int_eq(run("kill -USR1 $$", UINT64_MAX, &p, &error), -ECHILD);
        ck_assert_ptr_nonnull(strstr(error, "was killed by signal 10"));
}
END_TEST

/* Hung: it reads none of its input (more than a pipe holds), ignores SIGTERM, and two
 * children hold its stdout, one in its group and one in a session of its own. */
START_TEST(test_deadline) {
        _cleanup_free_ char *error = NULL, *input = malloc(1 << 20);
        Pipe p = { .in = input, .in_size = 1 << 20 };
        int r;

        ck_assert_ptr_nonnull(input);
        memset(input, 'x', 1 << 20);
        r = run("trap '' TERM; echo $$; (setsid sh -c 'echo $$; exec sleep 1000' &); sleep 1000 & echo $!; wait",
                usec_add(now_usec(), 500 * USEC_PER_MSEC), &p, &error);
        ck_assert_int_eq(r, -ETIME);
        ck_assert_str_eq(error, "mapper 'trap '' TERM; echo $$; (setsid sh -c 'echo $$; exec sleep 1000' &); "
                                "sleep 1000 & echo $!; wait' was still running at the task's time-out; it and its "
                                "processes were killed");
        check_nothing_left(p.out, 3);

        /* It has exited, but what it left behind holds its stdout open. */
        p = (Pipe) {};
        error = mfree(error);
        r = run("setsid sh -c 'echo $$; exec sleep 1000' &", usec_add(now_usec(), 500 * USEC_PER_MSEC), &p, &error);
        ck_assert_int_eq(r, -ETIME);
        ck_assert_ptr_nonnull(strstr(error, "was still running at the task's time-out"));
        check_nothing_left(p.out, 1);
}
END_TEST

/* A command that ends, leaving processes behind (its stdout closed): it succeeded, and
 * they are gone. */
START_TEST(test_leftovers) {
        _cleanup_free_ char *error = NULL;
        Pipe p = {};

        ck_assert_int_eq(run("sleep 1000 >/dev/null & echo $!; setsid sh -c 'echo $$; exec sleep 1000 >/dev/null' &"
                             " sleep 0.2",
                             UINT64_MAX, &p, &error),
                         0);
        ck_assert_ptr_null(error);
        check_nothing_left(p.out, 2);
}
END_TEST

/* Output the worker cannot take: the command is killed at once. */
START_TEST(test_consumer_error) {
        _cleanup_free_ char *error = NULL;
        Pipe p = { .consume_error = -EBADMSG };

        ck_assert_int_eq(run("yes", UINT64_MAX, &p, &error), -EBADMSG);
        ck_assert_str_eq(error, "mapper failed: Bad message");
        check_nothing_left("", 0);
}
END_TEST

static Suite *streaming_suite(void) {
        Suite *s = suite_create("streaming");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_pipes_and_status);
        tcase_add_test(tc, test_deadline);
        tcase_add_test(tc, test_leftovers);
        tcase_add_test(tc, test_consumer_error);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);
        return s;
}

int main(int argc, char **argv) {
        return unit_run("streaming", streaming_suite(), NULL, argc, argv);
}
