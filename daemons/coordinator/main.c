/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkv-coordinator: hands MapReduce tasks to workers. Parses options, builds the
 * coordinator, runs the event loop until the job is done (with FILEs) or until SIGTERM
 * or SIGINT (a job server). */
#include <getopt.h>
#include <sys/stat.h>

#include <systemd/sd-daemon.h>

#include "address.h"
#include "bus.h"
#include "config.h"
#include "coordinator.h"
#include "daemon-setup.h"
#include "fs-util.h"
#include "log.h"
#include "macro.h"
#include "main-func.h"
#include "nofile.h"
#include "parse-util.h"

static unsigned arg_nreduce = 10;
static unsigned arg_max_job_files = JOB_SUBMITTER_MAX_FILES_DEFAULT;
static unsigned arg_max_map_tasks = JOB_SUBMITTER_MAX_MAP_TASKS_DEFAULT;
static bool arg_backup_tasks = true;
static uint64_t arg_task_timeout = 10 * USEC_PER_SEC;
static Address arg_address = {};
static const char *arg_state_directory = NULL;
static const char *arg_bus_address = NULL;
static VarlinkServerLimits arg_limits = VARLINK_SERVER_LIMITS_DEFAULT;
static char **arg_files = NULL; /* the job to run, within argv */
static unsigned arg_n_files = 0;
static unsigned arg_keep_jobs = SCHEDULER_MAX_ENDED_JOBS;
static bool arg_journal = true;
static enum {
        ACTION_RUN,
        ACTION_CHECK_JOURNAL,
        ACTION_REPAIR_JOURNAL,
} arg_action = ACTION_RUN;

STATIC_DESTRUCTOR_REGISTER(arg_address, address_done);

static void help(void) {
        printf("Usage: mrkv-coordinator [OPTIONS] FILE...\n"
               "\n"
               "Runs one MapReduce job over FILEs: one map task per file, --nreduce reduce tasks,\n"
               "handed to mrkv-worker processes that connect to the coordinator's socket. The job's\n"
               "files (mr-<map>, a map's output for every reduce task, and mr-out-<reduce>) go to the\n"
               "current directory, and the coordinator exits once every mr-out-* file is final: 0 on\n"
               "success, 1 if the job failed.\n"
               "Without FILE, it runs as a job server: jobs submitted with 'mrkvctl submit' run in\n"
               "submission order, each in its own working directory, until the coordinator is stopped.\n"
               "\n"
               "Options:\n"
               "  -n, --nreduce=N          number of reduce tasks (default 10; for a job server, the\n"
               "                           default of submitted jobs that name none)\n"
               "  -t, --task-timeout=SEC   hand a task to another worker if it is not finished\n"
               "                           within SEC seconds (default 10; fractions allowed; for a\n"
               "                           job server, the default of submitted jobs)\n"
               "  -l, --listen=ADDRESS     unix:/path, a Unix socket only (default: $%s, else\n"
               "                           unix:$RUNTIME_DIRECTORY/%s, $XDG_RUNTIME_DIR/mrkv/%s\n"
               "                           or /run/mrkv/%s)\n"
               "      --state-directory=DIR\n"
               "                           a job server's journal (DIR/journal) and the working\n"
               "                           directories of jobs that name none (DIR/jobs/<id>)\n"
               "                           (default: $STATE_DIRECTORY, else $XDG_STATE_HOME/mrkv/coordinator,\n"
               "                           ~/.local/state/mrkv/coordinator; /var/lib/mrkv/coordinator for root)\n"
               "      --keep-jobs=N        ended jobs a job server keeps listing, also across restarts\n"
               "                           (default %u)\n"
               "      --no-journal         a job server that forgets its jobs when it stops\n"
               "      --check-journal      report damage in the job journal and exit: 0 if the\n"
               "                           coordinator can start from it, 1 if not\n"
               "      --repair-journal     cut the journal's log at its first damage, keeping the\n"
               "                           cut bytes beside it, and exit\n"
               "      --max-job-files=N    refuse submitted jobs of more than N input files\n"
               "                           (default %u, at most %u)\n"
               "      --max-map-tasks=N    refuse submitted jobs whose inputs make more than N\n"
               "                           splits (map tasks) (default %u, at most %u)\n"
               "      --no-backup-tasks    a job server gives idle workers no backup attempts of\n"
               "                           long-running tasks (lab mode never does)\n"
               "      --bus-address=ADDRESS\n"
               "                           serve " MAPREDUCE_BUS_NAME " on this D-Bus (default: $MRKV_BUS,\n"
               "                           \"system\", \"user\", \"none\" or an address; under systemd the\n"
               "                           system or user bus of its manager; else none)\n"
               "      --max-connections=N  serve at most N connections at once (default %u, or as\n"
               "                           many as RLIMIT_NOFILE, raised to its hard limit,\n"
               "                           leaves room for beside %u descriptors)\n"
               "      --max-input=BYTES    most bytes of incomplete messages held for all\n"
               "                           connections together (default %zuM)\n"
               "      --idle-timeout=SEC   close a connection with no call in flight after SEC\n"
               "                           seconds (default %llu; \"infinity\": never; a worker's\n"
               "                           connection is never idle)\n"
               "      --message-timeout=SEC\n"
               "                           close a connection that takes longer than SEC seconds\n"
               "                           to send a message (default %llu)\n"
               "      --log-level=LEVEL    debug, info, notice, warning, err (default info)\n"
               "  -h, --help               show this help\n"
               "      --version            show the version\n"
               "\n"
               "Exit status: 0 job done, 1 job failed or runtime error, 2 usage error.\n",
               MRKV_COORDINATOR_ADDRESS_ENV, MRKV_COORDINATOR_SOCKET, MRKV_COORDINATOR_SOCKET,
               MRKV_COORDINATOR_SOCKET, SCHEDULER_MAX_ENDED_JOBS, JOB_SUBMITTER_MAX_FILES_DEFAULT, JOB_SUBMITTER_MAX_FILES_MAX,
               JOB_SUBMITTER_MAX_MAP_TASKS_DEFAULT, JOB_SUBMITTER_MAX_MAP_TASKS_MAX,
               VARLINK_DEFAULT_MAX_CONNECTIONS, NOFILE_RESERVE, VARLINK_DEFAULT_MAX_INPUT >> 20,
               (unsigned long long) (VARLINK_DEFAULT_IDLE_TIMEOUT / USEC_PER_SEC),
               (unsigned long long) (VARLINK_DEFAULT_MESSAGE_TIMEOUT / USEC_PER_SEC));
}

static int check_inputs(char **files, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
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

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_LOG_LEVEL,
                ARG_STATE_DIRECTORY,
                ARG_BUS_ADDRESS,
                ARG_KEEP_JOBS,
                ARG_NO_JOURNAL,
                ARG_CHECK_JOURNAL,
                ARG_REPAIR_JOURNAL,
                ARG_MAX_JOB_FILES,
                ARG_MAX_MAP_TASKS,
                ARG_NO_BACKUP_TASKS,
        };
        static const struct option options[] = {
                { "nreduce", required_argument, NULL, 'n' },
                { "task-timeout", required_argument, NULL, 't' },
                { "listen", required_argument, NULL, 'l' },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "state-directory", required_argument, NULL, ARG_STATE_DIRECTORY },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "max-job-files", required_argument, NULL, ARG_MAX_JOB_FILES },
                { "max-map-tasks", required_argument, NULL, ARG_MAX_MAP_TASKS },
                { "no-backup-tasks", no_argument, NULL, ARG_NO_BACKUP_TASKS },
                DAEMON_LIMIT_OPTIONS,
                { "keep-jobs", required_argument, NULL, ARG_KEEP_JOBS },
                { "no-journal", no_argument, NULL, ARG_NO_JOURNAL },
                { "check-journal", no_argument, NULL, ARG_CHECK_JOURNAL },
                { "repair-journal", no_argument, NULL, ARG_REPAIR_JOURNAL },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        const char *address = NULL;
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
                        address = optarg;
                        break;
                case ARG_MAX_JOB_FILES:
                        r = parse_unsigned(optarg, 1, JOB_SUBMITTER_MAX_FILES_MAX, &arg_max_job_files);
                        if (r < 0)
                                return log_error_errno(r, "Invalid --max-job-files '%s': expected 1…%u.", optarg,
                                                       JOB_SUBMITTER_MAX_FILES_MAX);
                        break;
                case ARG_MAX_MAP_TASKS:
                        r = parse_unsigned(optarg, 1, JOB_SUBMITTER_MAX_MAP_TASKS_MAX, &arg_max_map_tasks);
                        if (r < 0)
                                return log_error_errno(r, "Invalid --max-map-tasks '%s': expected 1…%u.", optarg,
                                                       JOB_SUBMITTER_MAX_MAP_TASKS_MAX);
                        break;
                case ARG_NO_BACKUP_TASKS:
                        arg_backup_tasks = false;
                        break;
                case ARG_BUS_ADDRESS:
                        arg_bus_address = optarg;
                        break;
                case ARG_STATE_DIRECTORY:
                        if (optarg[0] != '/')
                                return log_error_errno(EINVAL, "--state-directory needs an absolute path.");
                        arg_state_directory = optarg;
                        break;
                case ARG_KEEP_JOBS:
                        r = parse_unsigned(optarg, 0, 1000000, &arg_keep_jobs);
                        if (r < 0)
                                return log_error_errno(r, "Invalid --keep-jobs '%s': expected 0…1000000.", optarg);
                        break;
                case ARG_NO_JOURNAL:
                        arg_journal = false;
                        break;
                case ARG_CHECK_JOURNAL:
                        arg_action = ACTION_CHECK_JOURNAL;
                        break;
                case ARG_REPAIR_JOURNAL:
                        arg_action = ACTION_REPAIR_JOURNAL;
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
                        if (daemon_parse_limit_option(c, optarg, &arg_limits) <= 0)
                                return -EINVAL;
                }

        arg_files = argv + optind;
        arg_n_files = (unsigned) (argc - optind);
        r = check_inputs(arg_files, arg_n_files);
        if (r < 0)
                return r;
        r = daemon_parse_address(address, MRKV_COORDINATOR_ADDRESS_ENV, MRKV_COORDINATOR_SOCKET,
                                 &arg_address);
        if (r < 0)
                return r;
        return 1;
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
                return asprintf(&s, "%s/mrkv/coordinator", e) < 0 ? NULL : s;
        if (geteuid() == 0)
                return strdup("/var/lib/mrkv/coordinator");
        e = getenv("HOME");
        if (e && e[0] == '/')
                return asprintf(&s, "%s/.local/state/mrkv/coordinator", e) < 0 ? NULL : s;
        return strdup("/var/lib/mrkv/coordinator");
}

static int apply_options(Coordinator *c) {
        c->submitter.default_nreduce = arg_nreduce;
        c->submitter.max_files = arg_max_job_files;
        c->submitter.max_map_tasks = arg_max_map_tasks;
        c->submitter.backup_tasks = arg_backup_tasks;
        c->submitter.default_task_timeout = arg_task_timeout;
        c->submitter.state_dir = default_state_directory();
        if (!c->submitter.state_dir)
                return log_oom();
        return 0;
}

/* The job of the FILEs given on the command line, as the lab's mrcoordinator runs it:
 * in the current directory, and the coordinator exits when it is done. */
static int start_command_line_job(Coordinator *c) {
        _cleanup_free_ char *cwd = NULL;
        Job *job;
        int r;

        cwd = getcwd(NULL, 0);
        if (!cwd)
                return log_error_errno(errno, "Cannot determine the current directory: %m");
        r = job_new("1", NULL, cwd, arg_files, arg_n_files, arg_nreduce, arg_task_timeout, &job);
        if (r < 0)
                return log_error_errno(r, "Failed to create job: %m");
        /* The job of whoever started the coordinator, run by the workers of that user. */
        job->owner_uid = geteuid();
        job->owner_gid = getegid();
        c->exit_when_done = true;
        (void) coordinator_start_job(c, job);
        return 0;
}

static int open_journal(Coordinator *c) {
        _cleanup_free_ char *directory = NULL;
        int r;

        if (asprintf(&directory, "%s/journal", c->submitter.state_dir) < 0)
                return log_oom();
        r = mkdir_parents(directory);
        if (r < 0)
                return log_error_errno(r, "Failed to create the parents of %s: %m", directory);
        return coordinator_open_journal(c, &(const JobJournalOptions) {
                                                   .directory = directory,
                                                   .keep_jobs = arg_keep_jobs,
                                           });
}

/* --check-journal, --repair-journal */
static int check_journal(void) {
        _cleanup_free_ char *state = default_state_directory(), *directory = NULL;

        if (!state || asprintf(&directory, "%s/journal", state) < 0)
                return log_oom();
        return job_journal_check(directory, arg_action == ACTION_REPAIR_JOURNAL);
}

static int add_bus_objects(sd_bus *bus, void *userdata) {
        return coordinator_bus_setup(userdata, bus);
}

static int listen_fd(int fd, void *userdata) {
        return coordinator_listen_fd(userdata, fd);
}

static int run(int argc, char *argv[]) {
        _cleanup_(daemon_freep) Daemon *d = NULL;
        /* Released after the coordinator, whose observers may still signal on the bus. */
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(coordinator_freep) Coordinator *c = NULL;
        int r;

        log_set_ident("mrkv-coordinator");

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;
        if (arg_action != ACTION_RUN)
                return check_journal() < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        r = daemon_new(&(const DaemonOptions) {
                               .ident = "mrkv-coordinator",
                               .address = &arg_address,
                               .bus_address = arg_bus_address,
                               .limits = &arg_limits,
                               .bus_name = MAPREDUCE_BUS_NAME,
                       },
                       &d);
        if (r < 0)
                return r;

        r = coordinator_new(d->event, &c);
        if (r < 0)
                return log_error_errno(r, "Failed to set up coordinator: %m");
        varlink_server_set_limits(c->server, &d->limits);
        r = apply_options(c);
        if (r < 0)
                return r;

        r = daemon_open_bus(d, add_bus_objects, c, &bus);
        if (r < 0)
                return r;
        if (!bus) {
                /* coordinator_bus_setup() may have subscribed to c before the bus failed. */
                coordinator_bus_stop(c);
        }

        /* A job server's jobs outlive it; the lab's single job does not. */
        if (arg_n_files == 0 && arg_journal) {
                r = open_journal(c);
                if (r < 0)
                        return r;
        }

        r = daemon_listen(d, listen_fd, c);
        if (r < 0)
                return r;

        if (arg_n_files > 0) {
                r = start_command_line_job(c);
                if (r < 0)
                        return r;
        }

        log_info("Listening on %s.",
                 d->bound ? arg_address.string : "sockets passed by the service manager");
        (void) sd_notifyf(false, "READY=1\nSTATUS=%s", arg_n_files > 0 ? "Running job" : "Waiting for jobs");

        r = sd_event_loop(d->event);
        (void) sd_notify(false, "STOPPING=1");
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");
        coordinator_shutdown(c);
        return r < 0 ? r : c->exit_status;
}

DEFINE_MAIN_FUNCTION(run);
