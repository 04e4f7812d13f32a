/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <check.h>
#include <stdlib.h>

/* Shared by the Check programs of lib/. */

/* Runs suite s; fork: CK_FORK_GETENV ($CK_FORK decides), or CK_FORK for tests that
 * must not share a process. Returns the exit status. */
static inline int tests_run(Suite *s, enum fork_status fork) {
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_set_fork_status(sr, fork);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
