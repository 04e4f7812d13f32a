/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <signal.h>
#include <sys/stat.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "address.h"
#include "bus-util.h"
#include "bus.h"
#include "config.h"
#include "coordinator.h"
#include "listen.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"

static unsigned arg_nreduce = 10;
static uint64_t arg_task_timeout = 10 * USEC_PER_SEC;
static char *arg_listen = NULL;
static const char *arg_state_directory = NULL;
static const char *arg_bus_address = NULL;

static void help(void) {
        printf("Usage: mrkv-coordinator [OPTIONS] FILE...\n"
               "\n"
               "Runs one MapReduce job over FILEs: one map task per file, --nreduce reduce tasks,\n"
               "handed to mrkv-worker processes that connect to the coordinator's socket. The job's\n"
               "files (mr-<map>-<reduce>, mr-out-<reduce>) go to the current directory, and the\n"
               "coordinator exits once every mr-out-* file is final: 0 on success, 1 if the job failed.\n"
               "Without FILE, it runs as a job server: jobs submitted with 'mrkvctl submit' run in\n"
               "submission order, each in its own working directory, until the coordinator is stopped.\n"
               "\n"
               "Options:\n"
               "  -n, --nreduce=N          number of reduce tasks (default 10; for a job server, the\n"
               "                           default of submitted jobs that name none)\n"
               "  -t, --task-timeout=SEC   hand a task to another worker if it is not finished\n"
               "                           within SEC seconds (default 10; fractions allowed; for a\n"
               "                           job server, the default of submitted jobs)\n"
               "  -l, --listen=ADDRESS     unix:/path or tcp:host:port (default: $%s, else\n"
               "                           unix:$RUNTIME_DIRECTORY/%s, $XDG_RUNTIME_DIR/mrkv/%s\n"
               "                           or /run/mrkv/%s)\n"
               "      --state-directory=DIR\n"
               "                           where submitted jobs get their working directories,\n"
               "                           DIR/jobs/<id> (default: $STATE_DIRECTORY, else\n"
               "                           $XDG_STATE_HOME/mrkv or ~/.local/state/mrkv)\n"
               "      --bus-address=ADDRESS\n"
               "                           serve org.mrkv.MapReduce1 on this D-Bus (default: $MRKV_BUS,\n"
               "                           \"system\", \"user\", \"none\" or an address; under systemd the\n"
               "                           system or user bus of its manager; else none)\n"
               "      --log-level=LEVEL    debug, info, notice, warning, err (default info)\n"
               "  -h, --help               show this help\n"
               "      --version            show the version\n"
               "\n"
               "Exit status: 0 job done, 1 job failed or runtime error, 2 usage error.\n",
               MRKV_COORDINATOR_ADDRESS_ENV, MRKV_COORDINATOR_SOCKET, MRKV_COORDINATOR_SOCKET,
               MRKV_COORDINATOR_SOCKET);
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_LOG_LEVEL, ARG_STATE_DIRECTORY, ARG_BUS_ADDRESS };
        static const struct option options[] = {
                { "nreduce", required_argument, NULL, 'n' },
                { "task-timeout", required_argument, NULL, 't' },
                { "listen", required_argument, NULL, 'l' },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "state-directory", required_argument, NULL, ARG_STATE_DIRECTORY },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "n:t:l:h", options, NULL)) >= 0)
                switch (c) {
                case 'n':
                        r = parse_unsigned(optarg, 1, 100000, &arg_nreduce);
                        if (r < 0)
                                return log_error_errno(r, "Invalid --nreduce '%s': expected 1…100000.", optarg);
                        break;
                case 't':
                        r = parse_seconds(optarg, &arg_task_timeout);
                        if (r < 0 || arg_task_timeout == 0)
                                return log_error_errno(EINVAL, "Invalid --task-timeout '%s': expected seconds > 0.",
                                                       optarg);
                        break;
                case 'l':
                        arg_listen = optarg;
                        break;
                case ARG_BUS_ADDRESS:
                        arg_bus_address = optarg;
                        break;
                case ARG_STATE_DIRECTORY:
                        if (optarg[0] != '/')
                                return log_error_errno(EINVAL, "--state-directory needs an absolute path.");
                        arg_state_directory = optarg;
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
                        printf("mrkv-coordinator %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        return -EINVAL;
                }
        return 1;
}

static int check_inputs(char **files, int n) {
        for (int i = 0; i < n; i++) {
                struct stat st;
                if (stat(files[i], &st) < 0)
                        return log_error_errno(errno, "Cannot use input file %s: %m", files[i]);
                if (!S_ISREG(st.st_mode))
                        return log_error_errno(EINVAL, "Input %s is not a regular file.", files[i]);
                if (access(files[i], R_OK) < 0)
                        return log_error_errno(errno, "Cannot read input file %s: %m", files[i]);
        }
        return 0;
}

static char *default_state_directory(void) {
        const char *e;
        char *s = NULL;

        if (arg_state_directory)
                return strdup(arg_state_directory);
        e = getenv("STATE_DIRECTORY");
        if (e && e[0] == '/')
                return strndup(e, strcspn(e, ":"));
        e = getenv("XDG_STATE_HOME");
        if (e && e[0] == '/')
                return asprintf(&s, "%s/mrkv", e) < 0 ? NULL : s;
        e = getenv("HOME");
        if (e && e[0] == '/')
                return asprintf(&s, "%s/.local/state/mrkv", e) < 0 ? NULL : s;
        return strdup("/var/lib/mrkv");
}

static int run(int argc, char *argv[]) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(coordinator_freep) Coordinator *c = NULL;
        _cleanup_free_ char *address_string = NULL, *cwd = NULL;
        _cleanup_free_ int *fds = NULL;
        Address address = {};
        unsigned n_fds = 0;
        bool bound = false;
        int r;

        log_set_ident("mrkv-coordinator");
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        if (optind < argc && check_inputs(argv + optind, argc - optind) < 0)
                return 2;

        if (arg_listen)
                address_string = strdup(arg_listen);
        else
                r = address_default(MRKV_COORDINATOR_ADDRESS_ENV, MRKV_COORDINATOR_SOCKET, &address_string);
        if (!address_string)
                return log_oom(), 1;
        r = address_parse(address_string, &address);
        if (r < 0) {
                log_error_errno(r, "Invalid address '%s': %m (expected unix:/path or tcp:host:port)", address_string);
                return 2;
        }

        r = sd_event_default(&event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate event loop: %m"), 1;
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        (void) sd_event_set_watchdog(event, true);

        r = coordinator_new(event, &c);
        if (r < 0)
                return log_error_errno(r, "Failed to set up coordinator: %m"), 1;
        c->default_nreduce = arg_nreduce;
        c->default_task_timeout = arg_task_timeout;
        c->state_dir = default_state_directory();
        if (!c->state_dir)
                return log_oom(), 1;

        bool bus_explicit;
        r = bus_open_for_daemon(arg_bus_address, &bus, &bus_explicit);
        if (r >= 0 && bus) {
                r = coordinator_bus_setup(c, bus);
                if (r >= 0)
                        r = bus_start_daemon(bus, event, MAPREDUCE_BUS_NAME, "mrkv-coordinator");
        }
        if (r < 0) {
                if (bus_explicit)
                        return log_error_errno(r, "Failed to serve on the bus: %m"), 1;
                log_warning_errno(r, "Not serving on D-Bus: %m");
                bus = sd_bus_flush_close_unref(bus);
                c->job_hook = NULL;
                c->workers_hook = NULL;
        }

        r = listen_sockets(&address, &fds, &n_fds, &bound);
        if (r < 0)
                goto finish;
        for (unsigned i = 0; i < n_fds; i++) {
                r = coordinator_listen_fd(c, fds[i]);
                if (r < 0) {
                        log_error_errno(r, "Failed to serve socket: %m");
                        goto finish;
                }
        }

        if (optind < argc) {
                Job *job;

                cwd = getcwd(NULL, 0);
                if (!cwd) {
                        r = log_error_errno(errno, "Cannot determine the current directory: %m");
                        goto finish;
                }
                r = job_new("1", NULL, cwd, argv + optind, (unsigned) (argc - optind), arg_nreduce,
                            arg_task_timeout, &job);
                if (r < 0) {
                        log_error_errno(r, "Failed to create job: %m");
                        goto finish;
                }
                c->exit_when_done = true;
                (void) coordinator_start_job(c, job);
        }

        log_info("Listening on %s.", bound ? address.string : "sockets passed by the service manager");
        (void) sd_notifyf(false, "READY=1\nSTATUS=%s", optind < argc ? "Running job" : "Waiting for jobs");

        r = sd_event_loop(event);
        (void) sd_notify(false, "STOPPING=1");
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");
        coordinator_shutdown(c);
        r = r < 0 ? r : c->exit_status;

finish:
        if (bound)
                address_unlink(&address);
        address_done(&address);
        return r < 0 ? 1 : r;
}

int main(int argc, char *argv[]) {
        return run(argc, argv);
}
