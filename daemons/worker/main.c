/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>

#include "address.h"
#include "app-loader.h"
#include "config.h"
#include "log.h"
#include "macro.h"
#include "worker.h"

static const char *arg_connect = NULL;
static bool arg_serve = false;

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
               "      --log-level=LEVEL    debug, info, notice, warning, err (default info)\n"
               "  -h, --help               show this help\n"
               "      --version            show the version\n"
               "\n"
               "Exit status: 0 job done, 1 error, 2 usage error.\n",
               MRKV_APPDIR, MRKV_COORDINATOR_ADDRESS_ENV, MRKV_COORDINATOR_SOCKET, MRKV_COORDINATOR_SOCKET,
               MRKV_COORDINATOR_SOCKET);
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_LOG_LEVEL };
        static const struct option options[] = {
                { "connect", required_argument, NULL, 'c' },
                { "serve", no_argument, NULL, 's' },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "c:sh", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        arg_connect = optarg;
                        break;
                case 's':
                        arg_serve = true;
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
        return 1;
}

int main(int argc, char *argv[]) {
        _cleanup_free_ char *address = NULL;
        App *app = NULL;
        Address parsed;
        int r;

        log_set_ident("mrkv-worker");
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        if (arg_connect)
                address = strdup(arg_connect);
        else if (address_default(MRKV_COORDINATOR_ADDRESS_ENV, MRKV_COORDINATOR_SOCKET, &address) < 0)
                address = NULL;
        if (!address)
                return log_oom(), 1;
        r = address_parse(address, &parsed);
        if (r < 0) {
                log_error_errno(r, "Invalid address '%s': %m (expected unix:/path or tcp:host:port)", address);
                return 2;
        }
        address_done(&parsed);

        if (optind < argc) {
                r = app_load(argv[optind], &app);
                if (r < 0)
                        return 1; /* app_load() said why */
        }

        /* A reduce task opens one file per map task at once. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }

        /* A coordinator that goes away mid-write must not kill us with SIGPIPE. */
        signal(SIGPIPE, SIG_IGN);
        r = worker_run(address, app, arg_serve);
        app_free(app);
        return r < 0 ? 1 : 0;
}
