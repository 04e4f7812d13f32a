/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <poll.h>

#include "io-util.h"
#include "macro.h"
#include "tests.h"
#include "time-util.h"

START_TEST(test_fd_wait_until) {
        int p[2];

        ck_assert_int_eq(pipe(p), 0);

        /* Nothing to read: a deadline that has passed, and one that passes while waiting. */
        ck_assert_int_eq(fd_wait_until(p[0], POLLIN, 0), 0);
        ck_assert_int_eq(fd_wait_until(p[0], POLLIN, now_usec() + 2 * USEC_PER_MSEC), 0);
        /* A pipe with room is writable, also without a deadline. */
        ck_assert_int_eq(fd_wait_until(p[1], POLLOUT, UINT64_MAX), 1);

        ck_assert_int_eq(write(p[1], "x", 1), 1);
        ck_assert_int_eq(fd_wait_until(p[0], POLLIN, UINT64_MAX), 1);
        ck_assert_int_eq(fd_wait_until(p[0], POLLIN, now_usec() + USEC_PER_SEC), 1);

        /* A hang-up ends the wait too: the caller's read or write then tells what happened. */
        ck_assert_int_eq(close(p[1]), 0);
        ck_assert_int_eq(fd_wait_until(p[0], POLLOUT, UINT64_MAX), 1);
        ck_assert_int_eq(close(p[0]), 0);
}
END_TEST

START_TEST(test_poll_timeout) {
        uint64_t now = now_usec();

        ck_assert_int_eq(poll_timeout(UINT64_MAX), -1);
        ck_assert_int_eq(poll_timeout(0), 0);
        ck_assert_int_eq(poll_timeout(now), 0);
        /* Under a millisecond left is one, not zero: a poll that returns at once spins. */
        ck_assert_int_le(poll_timeout(now + 10 * USEC_PER_SEC), 10000);
        ck_assert_int_gt(poll_timeout(now + 10 * USEC_PER_SEC), 0);
        ck_assert_int_ge(poll_timeout(now_usec() + 1), 1);
        ck_assert_int_eq(poll_timeout(UINT64_MAX - 1), INT32_MAX);
}
END_TEST

START_TEST(test_pread_retry) {
        char path[] = "/tmp/test-io-util.XXXXXX", buf[8];
        int fd = mkstemp(path);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(write(fd, "0123456789", 10), 10);

        /* At an offset, whatever the file position; short at the end; 0 past it. */
        ck_assert_int_eq(pread_retry(fd, buf, 4, 3), 4);
        ck_assert(memcmp(buf, "3456", 4) == 0);
        ck_assert_int_eq(pread_retry(fd, buf, sizeof(buf), 8), 2);
        ck_assert(memcmp(buf, "89", 2) == 0);
        ck_assert_int_eq(pread_retry(fd, buf, sizeof(buf), 10), 0);
        ck_assert_int_eq(close(fd), 0);
        ck_assert_int_eq(pread_retry(fd, buf, sizeof(buf), 0), -EBADF);
}
END_TEST

int main(void) {
        Suite *s = suite_create("io-util");
        TCase *tc = tcase_create("io-util");

        tcase_add_test(tc, test_fd_wait_until);
        tcase_add_test(tc, test_poll_timeout);
        tcase_add_test(tc, test_pread_retry);
        suite_add_tcase(s, tc);
        return tests_run(s, CK_FORK_GETENV);
}
