/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkv-sequential APP FILE...: MapReduce in one process. Writes mr-out-0 in the current
 * directory. --plain runs the tests' reference engine (the lab's mrsequential). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "app-loader.h"
#include "config.h"
#include "grouped.h"
#include "log.h"
#include "sequential.h"

#define EXIT_USAGE 2

static void help(void) {
        printf("Usage: %s [OPTION]... APP FILE...\n"
               "Run the MapReduce app APP over FILEs in this one process and write the\n"
               "result to mr-out-0 in the current directory, as \"key value\" lines.\n\n"
               "APP is a plugin path (./wc.so) or a name (wc) looked up in $MRKV_APP_PATH\n"
               "and then %s.\n\n"
               "  -p --plain    keep and sort every pair, as the lab's mrsequential: the\n"
               "                reference the tests compare with (slow, memory grows with\n"
               "                the pairs); by default keys are grouped as they come\n"
               "  -c --combine  with --plain, run the app's combine function over each\n"
               "                input's pairs before they are reduced, as a worker does;\n"
               "                the default engine always combines when the app can\n"
               "     --no-combine  never run the app's combine function (the default\n"
               "                engine's output is the same, as a job's with\n"
               "                mrkvctl submit --no-combine)\n"
               "  -h --help     show this help\n"
               "     --version  show the version\n",
               program_invocation_short_name, MRKV_APPDIR);
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_NO_COMBINE };
        static const struct option options[] = {
                { "combine", no_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                { "no-combine", no_argument, NULL, ARG_NO_COMBINE },
                { "plain", no_argument, NULL, 'p' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        /* In this order, so that s goes before the app whose code it ran. */
        _cleanup_(app_freep) App *app = NULL;
        _cleanup_(sequential_freep) Sequential *s = NULL;
        _cleanup_(grouped_freep) Grouped *g = NULL;
        bool combine = false, no_combine = false, plain = false;
        int c, r;

        log_set_ident("mrkv-sequential");

        while ((c = getopt_long(argc, argv, "chp", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        combine = true;
                        break;
                case 'p':
                        plain = true;
                        break;
                case ARG_NO_COMBINE:
                        no_combine = true;
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("mrkv-sequential %s\n", PACKAGE_VERSION);
                        return EXIT_SUCCESS;
                default:
                        return EXIT_USAGE; /* getopt_long() has said what is wrong */
                }

        if (combine && no_combine) {
                log_error("--combine and --no-combine exclude each other.");
                return EXIT_USAGE;
        }
        if (argc - optind < 2) {
                log_error("Need an app and at least one input file; see --help.");
                return EXIT_USAGE;
        }

        r = app_load(argv[optind], &app);
        if (r < 0)
                return EXIT_FAILURE;

        if (!plain) {
                if (combine && !mrkv_app_combine(app->app)) {
                        log_error("App %s has no combine function.", app->app->name ?: argv[optind]);
                        return EXIT_FAILURE;
                }
                g = grouped_new(app->app);
                if (!g) {
                        log_oom();
                        return EXIT_FAILURE;
                }
                grouped_set_combine(g, !no_combine);
                for (int i = optind + 1; i < argc; i++)
                        if (grouped_map_file(g, argv[i]) < 0)
                                return EXIT_FAILURE;
                return grouped_write_output(g, "mr-out-0") < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }

        s = sequential_new(app->app);
        if (!s) {
                log_oom();
                return EXIT_FAILURE;
        }
        if (sequential_set_combine(s, combine) < 0)
                return EXIT_FAILURE;

        for (int i = optind + 1; i < argc; i++) {
                r = sequential_map_file(s, argv[i]);
                if (r < 0)
                        return EXIT_FAILURE;
        }

        r = sequential_write_output(s, "mr-out-0");
        if (r < 0)
                return EXIT_FAILURE;

        return EXIT_SUCCESS;
}
