/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who may do what with a job (access.c): its owner and root control it; its tasks go to
 * workers of its owner, and a job of root also to the service's workers. */
#include <check.h>

#include "access.h"
#include "unit-test.h"

#define SERVICE 990U
#define ALICE 1000U
#define BOB 1001U

static Job job_of(uid_t owner) {
        return (Job) { .id = (char *) "1", .owner_uid = owner };
}

START_TEST(test_control) {
        Job a = job_of(ALICE), s = job_of(SERVICE);

        ck_assert(access_may_control(ALICE, &a));
        ck_assert(access_may_control(0, &a));
        ck_assert(!access_may_control(BOB, &a));
        ck_assert(!access_may_control(SERVICE, &a));
        ck_assert(!access_may_control((uid_t) -1, &a));
        ck_assert(access_may_control(SERVICE, &s));
        ck_assert(!access_may_control(ALICE, &s));
}
END_TEST

START_TEST(test_worker_may_run) {
        Job a = job_of(ALICE), s = job_of(SERVICE), root = job_of(0);

        /* A user's job runs on that user's workers only: never the service's, nor root's. */
        ck_assert(access_worker_may_run(ALICE, &a, SERVICE));
        ck_assert(!access_worker_may_run(BOB, &a, SERVICE));
        ck_assert(!access_worker_may_run(SERVICE, &a, SERVICE));
        ck_assert(!access_worker_may_run(0, &a, SERVICE));
        /* The service's jobs on its workers. */
        ck_assert(access_worker_may_run(SERVICE, &s, SERVICE));
        ck_assert(!access_worker_may_run(ALICE, &s, SERVICE));
        /* Root's jobs on root's or the service's workers. */
        ck_assert(access_worker_may_run(0, &root, SERVICE));
        ck_assert(access_worker_may_run(SERVICE, &root, SERVICE));
        ck_assert(!access_worker_may_run(ALICE, &root, SERVICE));
}
END_TEST

START_TEST(test_workdir) {
        ck_assert(access_workdir_allowed(ALICE, ALICE));
        ck_assert(!access_workdir_allowed(ALICE, BOB));
        ck_assert(!access_workdir_allowed(ALICE, SERVICE));
        ck_assert(!access_workdir_allowed(ALICE, 0));
        ck_assert(access_workdir_allowed(0, ALICE));

        ck_assert(access_default_workdir_allowed(SERVICE, SERVICE));
        ck_assert(access_default_workdir_allowed(0, SERVICE));
        ck_assert(!access_default_workdir_allowed(ALICE, SERVICE));
        /* A coordinator of one user (a user unit): that user's jobs. */
        ck_assert(access_default_workdir_allowed(ALICE, ALICE));
}
END_TEST

static Suite *access_suite(void) {
        Suite *s = suite_create("access");
        TCase *tc = tcase_create("access");

        tcase_add_test(tc, test_control);
        tcase_add_test(tc, test_worker_may_run);
        tcase_add_test(tc, test_workdir);
        suite_add_tcase(s, tc);
        return s;
}

int main(int argc, char **argv) {
        return unit_run("access", access_suite(), NULL, argc, argv);
}
