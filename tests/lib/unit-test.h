/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* The runner of the Check unit tests beside their modules. */

#define UNIT_KNOWN_BUGS_SUITE "known-bugs"

static inline uint64_t unit_now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000U + (uint64_t) ts.tv_nsec / 1000U;
}

/* Runs the regular suite (named regular_name). With an argument, runs instead only that test case of the
 * "known-bugs" suite (which may be NULL): cases that fail until a reported bug in the
 * code under test is fixed. meson registers each of them with should_fail, so a fix
 * shows up as an unexpected pass, and the case then moves into the regular suite. */
static inline int unit_run(const char *regular_name, Suite *regular, Suite *known_bugs, int argc, char **argv) {
        SRunner *sr;
        int failed;

        sr = srunner_create(regular);
        if (known_bugs)
                srunner_add_suite(sr, known_bugs);

        if (argc > 1)
                srunner_run(sr, UNIT_KNOWN_BUGS_SUITE, argv[1], CK_NORMAL);
        else
                srunner_run(sr, regular_name, NULL, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        /* A case name that matches nothing must not pass as an expected failure: 99 is
         * the hard error of the meson test protocol. */
        if (srunner_ntests_run(sr) == 0)
                failed = -1;
        srunner_free(sr);
        return failed < 0 ? 99 : failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
