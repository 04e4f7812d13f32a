/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkv-worker: runs MapReduce tasks for a coordinator. Parses options, loads the app,
 * and asks for tasks until the job is done (or, with --serve, until SIGTERM). */
#include <getopt.h>
#include <signal.h>
#include <stdint.h>

#include "address.h"
#include "app-loader.h"
#include "config.h"
#include "daemon-setup.h"
#include "log.h"
#include "macro.h"
#include "main-func.h"
#include "nofile.h"
#include "parse-util.h"
#include "worker.h"

static Address arg_address = {};
static const char *arg_app = NULL;
static bool arg_serve = false;
static uint64_t arg_max_input = WORKER_MAX_INPUT_DEFAULT;
static uint64_t arg_map_memory = WORKER_MAP_MEMORY_DEFAULT;

STATIC_DESTRUCTOR_REGISTER(arg_address, address_done);

static void help(void) {
        printf("Usage: mrkv-worker [OPTIONS] [APP]\n"
               "\n"
               "Asks a MapReduce coordinator for map and reduce tasks and runs them with APP until the\n"
               "job is done, then exits 0. APP is a plugin path (./wc.so) or a name (wc) looked up in\n"
               "$MRKV_APP_PATH and then %s. Without APP, each task runs\n"
               "with the app its job names (loaded the same way).\n"
               "A worker that cannot reach the coordinator exits 1 without running any task.\n"
               "\n"
               "Options:\n"
               "  -s, --serve              run as a service: wait for the coordinator, take tasks of\n"
               "                           job after job, reconnect when it restarts; never exit on\n"
               "                           its own (stop it with SIGTERM)\n"
               "  -c, --connect=ADDRESS    the coordinator: unix:/path or tcp:host:port (default: $%s,\n"
               "                           else unix:$RUNTIME_DIRECTORY/%s, $XDG_RUNTIME_DIR/mrkv/%s\n"
               "                           or /run/mrkv/%s)\n"
               "      --max-input-size=BYTES\n"
               "                           fail a map task whose input file is larger (K, M, G\n"
               "                           suffixes; default 256M): the input is read whole\n"
               "      --map-memory=BYTES   the memory a map task's pairs may take before they are\n"
               "                           spilled to disk as sorted runs (default 64M, at\n"
               "                           least 64K)\n"
               "      --log-level=LEVEL    debug, info, notice, warning, err (default info)\n"
               "  -h, --help               show this help\n"
               "      --version            show the version\n"
               "\n"
               "Exit status: 0 job done, 1 error, 2 usage error.\n",
               MRKV_APPDIR, MRKV_COORDINATOR_ADDRESS_ENV, MRKV_COORDINATOR_SOCKET, MRKV_COORDINATOR_SOCKET,
               MRKV_COORDINATOR_SOCKET);
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_LOG_LEVEL, ARG_MAX_INPUT_SIZE, ARG_MAP_MEMORY };
        static const struct option options[] = {
                { "connect", required_argument, NULL, 'c' },
                { "serve", no_argument, NULL, 's' },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "max-input-size", required_argument, NULL, ARG_MAX_INPUT_SIZE },
                { "map-memory", required_argument, NULL, ARG_MAP_MEMORY },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        const char *address = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "c:sh", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        address = optarg;
                        break;
                case 's':
                        arg_serve = true;
                        break;
                case ARG_MAX_INPUT_SIZE:
                        r = parse_size(optarg, SIZE_MAX - 1, &arg_max_input);
                        if (r < 0 || arg_max_input == 0)
                                return log_error_errno(EINVAL, "Invalid --max-input-size '%s': expected bytes > 0.",
                                                       optarg);
                        break;
                case ARG_MAP_MEMORY:
                        r = parse_size(optarg, SIZE_MAX, &arg_map_memory);
                        if (r < 0 || arg_map_memory < WORKER_MAP_MEMORY_MIN)
                                return log_error_errno(EINVAL, "Invalid --map-memory '%s': expected at least %u bytes (64K).",
                                                       optarg, WORKER_MAP_MEMORY_MIN);
                        break;
                case ARG_LOG_LEVEL:
                        r = log_set_max_level_from_option(optarg);
                        if (r < 0)
                                return r;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("mrkv-worker %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        return -EINVAL;
                }

        if (argc - optind > 1)
                return log_error_errno(EINVAL, "Expected at most one APP argument; see --help.");
        if (optind < argc)
                arg_app = argv[optind];

        r = daemon_parse_address(address, MRKV_COORDINATOR_ADDRESS_ENV, MRKV_COORDINATOR_SOCKET,
                                 &arg_address);
        if (r < 0)
                return r;
        return 1;
}

static int run(int argc, char *argv[]) {
        _cleanup_(app_freep) App *app = NULL;
        int r;

        log_set_ident("mrkv-worker");

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;

        if (arg_app) {
                r = app_load(arg_app, &app);
                if (r < 0)
                        return r; /* app_load() said why */
        }

        /* A reduce task opens one file per map task at once. */
        (void) nofile_raise();
        /* A coordinator that goes away mid-write must not kill us with SIGPIPE. */
        (void) signal(SIGPIPE, SIG_IGN);

        r = worker_run(arg_address.string, app, arg_serve, arg_max_input, arg_map_memory);
        return r < 0 ? r : EXIT_SUCCESS;
}

DEFINE_MAIN_FUNCTION(run);
