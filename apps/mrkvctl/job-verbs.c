/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The MapReduce job verbs: submit, jobs, status, cancel. They speak org.mrkv.MapReduce
 * to the coordinator over one blocking Varlink connection. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "job-format.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "time-util.h"
#include "mrkvctl.h"
#include "org.mrkv.MapReduce.varlink.h"
#include "parse-util.h"
#include "strv.h"
#include "varlink-client.h"

/* How often a progress bar on a terminal is redrawn when nothing else happens, to
 * keep its elapsed time current. */
#define BAR_REDRAW_USEC (1 * USEC_PER_SEC)

static int print_json(json_object *o) {
        /* JSON_C_TO_STRING_NOSLASHESCAPE: paths print as typed, not as "\/tmp". */
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE);

        return puts(s) < 0 ? -EIO : 0;
}

/* Every verb ends here: whatever went to stdout must have arrived. */
static int finish_output(int code) {
        if (fflush(stdout) != 0 || ferror(stdout)) {
                log_error("Failed to write to standard output.");
                return code == EXIT_OK ? EXIT_FAIL : code;
        }
        return code;
}

/* Transport failures: the exit code, with a message naming what was going on. */
static int exit_code_of_transport(int r, const char *what) {
        switch (r) {
        case -ETIMEDOUT:
                log_error("%s: no reply from the coordinator before the timeout.", what);
                break;
        case -ECONNRESET:
                log_error("%s: the coordinator closed the connection.", what);
                break;
        case -EBADMSG:
                log_error("%s: the reply is not a valid " MAPREDUCE_INTERFACE " message.", what);
                break;
        default:
                log_error_errno(r, "%s: %m", what);
        }
        return EXIT_FAIL;
}

/* A string in an error's parameters, or fallback: the server's word, but never trusted. */
static const char *error_string(json_object *parameters, const char *key, const char *fallback) {
        json_object *v;

        if (!json_object_object_get_ex(parameters, key, &v) || !json_object_is_type(v, json_type_string))
                return fallback;
        return json_object_get_string(v);
}

/* Varlink errors the coordinator answers with: the exit code, with a message. */
static int exit_code_of_error(const char *error, json_object *parameters, const char *what,
                              const char *job) {
        if (streq(error, MAPREDUCE_ERROR_NO_SUCH_JOB)) {
                log_error("%s: no such job: %s", what, job ?: "?");
                return EXIT_NO_JOB;
        }
        if (streq(error, MAPREDUCE_ERROR_INVALID_JOB)) {
                log_error("%s: the coordinator refused the job: %s", what,
                          error_string(parameters, "reason", "no reason given"));
                return EXIT_FAIL;
        }
        if (streq(error, MAPREDUCE_ERROR_PERMISSION_DENIED)) {
                log_error("%s: permission denied: %s", what, error_string(parameters, "reason", "no reason given"));
                return EXIT_FAIL;
        }
        if (streq(error, MAPREDUCE_ERROR_JOB_ENDED)) {
                log_error("%s: job %s has already ended (%s).", what, job ?: "?",
                          error_string(parameters, "state", "?"));
                return EXIT_FAIL;
        }
        if (streq(error, VARLINK_ERROR_METHOD_NOT_FOUND) ||
            streq(error, VARLINK_ERROR_INTERFACE_NOT_FOUND)) {
                log_error("%s: the server does not run MapReduce jobs (not a coordinator, or one too old "
                          "for job submission).",
                          what);
                return EXIT_FAIL;
        }
        if (streq(error, VARLINK_ERROR_INVALID_PARAMETER)) {
                log_error("%s: the coordinator rejected the parameter '%s'.", what,
                          error_string(parameters, "parameter", "?"));
                return EXIT_FAIL;
        }
        log_error("%s: %s", what, error);
        return EXIT_FAIL;
}

/* One call and its reply. Returns an exit code; EXIT_OK with *ret the parameters. */
static int call(VarlinkClient *c, const Context *ctx, const char *method, json_object *parameters,
                const char *what, const char *job, json_object **ret) {
        _cleanup_json_ json_object *reply = NULL;
        const char *error;
        int r;

        r = varlink_client_call(c, method, parameters, ctx->timeout_usec, &reply, &error);
        if (r < 0)
                return exit_code_of_transport(r, what);
        if (error)
                return exit_code_of_error(error, reply, what, job);
        *ret = TAKE_PTR(reply);
        return EXIT_OK;
}

static json_object *job_parameters(const char *job) {
        json_object *p;

        if (json_build_object(&p, "job", json_object_new_string(job), NULL) < 0)
                return NULL;
        return p;
}

/* The "job" member of a GetJob reply, parsed. */
static int reply_job(json_object *reply, json_object **ret_object, JobInfo *ret_info) {
        json_object *o;

        if (!json_object_object_get_ex(reply, "job", &o) || job_info_parse(o, ret_info) < 0)
                return -EBADMSG;
        *ret_object = o;
        return 0;
}

static int get_job(VarlinkClient *c, const Context *ctx, const char *job, const char *what,
                   json_object **ret_reply) {
        _cleanup_json_ json_object *p = job_parameters(job);

        if (!p)
                return log_oom(), EXIT_FAIL;
        return call(c, ctx, MAPREDUCE_METHOD_GET_JOB, p, what, job, ret_reply);
}

static int wait_for_job(VarlinkClient **c, const Context *ctx, const char *job, const char *what);

/* Prints one job: its JSON, or the human-readable status page. */
static int show_job(const Context *ctx, json_object *reply, const char *what) {
        json_object *o;
        JobInfo j;

        if (reply_job(reply, &o, &j) < 0)
                return exit_code_of_transport(-EBADMSG, what);
        if (ctx->json)
                return print_json(o) < 0 ? EXIT_FAIL : EXIT_OK;
        job_print_status(stdout, &j, clock_usec(CLOCK_REALTIME));
        return EXIT_OK;
}

/* The JOB of status and cancel, and a connection to the coordinator: EXIT_OK, or the exit
 * code after a message. */
static int job_verb_start(Context *ctx, int argc, char *argv[], const char **ret_job, VarlinkClient **ret) {
        int i;

        i = context_parse_verb_arguments(ctx, argc, argv, "JOB");
        if (i < 0)
                return EXIT_USAGE;
        if (context_connect_coordinator(ctx, ret) < 0)
                return EXIT_FAIL;
        *ret_job = argv[i];
        return EXIT_OK;
}

/* status's options: the common ones and --wait. */
static int status_parse_arguments(Context *ctx, int argc, char *argv[], bool *ret_wait) {
        enum { ARG_WAIT = ARG_VERB_FIRST };
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "wait", no_argument, NULL, ARG_WAIT },
                {},
        };
        int ch;

        while ((ch = getopt_long(argc, argv, COMMON_SHORT_OPTIONS, options, NULL)) >= 0)
                if (ch == ARG_WAIT)
                        *ret_wait = true;
                else if (context_parse_common_option(ctx, ch, optarg) <= 0)
                        return -1;
        if (argc - optind != 1) {
                log_error("%s takes one argument: JOB. See --help.", argv[0]);
                return -1;
        }
        return optind;
}

int verb_status(Context *ctx, int argc, char *argv[]) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_json_ json_object *reply = NULL;
        bool wait = false;
        const char *job;
        int i, r;

        i = status_parse_arguments(ctx, argc, argv, &wait);
        if (i < 0)
                return EXIT_USAGE;
        if (context_connect_coordinator(ctx, &c) < 0)
                return EXIT_FAIL;
        job = argv[i];
        if (wait)
                return finish_output(wait_for_job(&c, ctx, job, "status --wait"));
        r = get_job(c, ctx, job, "status", &reply);
        if (r != EXIT_OK)
                return r;
        return finish_output(show_job(ctx, reply, "status"));
}

int verb_cancel(Context *ctx, int argc, char *argv[]) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_json_ json_object *p = NULL, *reply = NULL;
        const char *job;
        int r;

        r = job_verb_start(ctx, argc, argv, &job, &c);
        if (r != EXIT_OK)
                return r;
        p = job_parameters(job);
        if (!p)
                return log_oom(), EXIT_FAIL;
        r = call(c, ctx, MAPREDUCE_METHOD_CANCEL_JOB, p, "cancel", job, &reply);
        if (r != EXIT_OK || !ctx->json)
                return r;

        /* --json: the job as it is now, cancelled. */
        json_object_put(TAKE_PTR(reply));
        r = get_job(c, ctx, job, "cancel", &reply);
        if (r != EXIT_OK)
                return r;
        return finish_output(show_job(ctx, reply, "cancel"));
}

int verb_jobs(Context *ctx, int argc, char *argv[]) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_json_ json_object *reply = NULL;
        _cleanup_free_ JobInfo *infos = NULL;
        json_object *jobs;
        size_t n;
        int r;

        if (context_parse_verb_arguments(ctx, argc, argv, NULL) < 0)
                return EXIT_USAGE;

        if (context_connect_coordinator(ctx, &c) < 0)
                return EXIT_FAIL;
        r = call(c, ctx, MAPREDUCE_METHOD_LIST_JOBS, NULL, "jobs", NULL, &reply);
        if (r != EXIT_OK)
                return r;
        if (!json_object_object_get_ex(reply, "jobs", &jobs) || !json_object_is_type(jobs, json_type_array))
                return exit_code_of_transport(-EBADMSG, "jobs");

        n = json_object_array_length(jobs);
        infos = calloc(MAX(n, 1U), sizeof(JobInfo));
        if (!infos)
                return log_oom(), EXIT_FAIL;
        for (size_t i = 0; i < n; i++)
                if (job_info_parse(json_object_array_get_idx(jobs, i), &infos[i]) < 0)
                        return exit_code_of_transport(-EBADMSG, "jobs");

        if (ctx->json)
                r = print_json(jobs) < 0 ? EXIT_FAIL : EXIT_OK;
        else if (n == 0)
                r = puts("No jobs.") < 0 ? EXIT_FAIL : EXIT_OK;
        else {
                job_print_table(stdout, infos, n);
                r = EXIT_OK;
        }
        return finish_output(r);
}

/* What "submit --wait" shows while it waits. */
typedef struct Progress {
        bool bar;         /* a terminal: one line, redrawn in place */
        bool quiet;       /* --json: only the final object */
        bool drawn;       /* the bar is on screen, the cursor at its end */
        uint64_t start;   /* CLOCK_MONOTONIC, when mrkvctl began to wait */
        char *last;       /* the last plain line's state and counts, to print changes only */
} Progress;

/* Set before the bar is first drawn: what an interrupt writes so that the shell's prompt
 * starts on a line of its own, and the user learns the job goes on. */
static char interrupt_message[128];
static volatile sig_atomic_t bar_on_screen = 0;

static void on_interrupt(int sig) {
        if (bar_on_screen)
                (void) !write(STDOUT_FILENO, "\n", 1);
        (void) !write(STDERR_FILENO, interrupt_message, strlen(interrupt_message));
        signal(sig, SIG_DFL);
        raise(sig);
}

static unsigned terminal_columns(void) {
        struct winsize ws;

        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0)
                return 80;
        return ws.ws_col;
}

static int progress_show(Progress *p, const JobInfo *j) {
        _cleanup_free_ char *line = NULL, *key = NULL;
        uint64_t elapsed = clock_usec(CLOCK_MONOTONIC) - p->start;
        int r;

        if (p->quiet)
                return 0;
        if (p->bar) {
                r = job_format_progress_bar(j, elapsed, terminal_columns(), &line);
                if (r < 0)
                        return r;
                /* \r and erase-to-end-of-line: the new line over the old one. */
                printf("\r%s\033[K", line);
                p->drawn = true;
                bar_on_screen = 1;
                return fflush(stdout) == 0 ? 0 : -EIO;
        }

        /* On a pipe or a file, a line only when the state or a count changed. */
        if (asprintf(&key, "%s %" PRIu64 " %" PRIu64, j->state, j->map_done, j->reduce_done) < 0)
                return -ENOMEM;
        if (p->last && streq(p->last, key))
                return 0;
        free(p->last);
        p->last = TAKE_PTR(key);
        r = job_format_progress_line(j, elapsed, &line);
        if (r < 0)
                return r;
        if (puts(line) < 0 || fflush(stdout) != 0)
                return -EIO;
        return 0;
}

static void progress_end(Progress *p) {
        if (p->drawn)
                printf("\r\033[K");
        p->drawn = false;
        bar_on_screen = 0;
        p->last = mfree(p->last);
}

/* The first pause between attempts to reach a coordinator that went away, and the longest. */
#define RECONNECT_PAUSE_USEC (50 * USEC_PER_MSEC)
#define RECONNECT_PAUSE_MAX_USEC (2 * USEC_PER_SEC)

static int follow_send(VarlinkClient *c, const Context *ctx, const char *job) {
        _cleanup_json_ json_object *p = job_parameters(job);

        if (!p)
                return -ENOMEM;
        return varlink_client_send(c, MAPREDUCE_METHOD_GET_JOB, p, VARLINK_CLIENT_MORE, ctx->timeout_usec);
}

/* The coordinator went away (a restart, an upgrade): connects again, with growing pauses,
 * and asks for the same job, for up to the --timeout. */
static int follow_reconnect(VarlinkClient **c, const Context *ctx, const char *job) {
        uint64_t pause = RECONNECT_PAUSE_USEC, deadline = usec_add(clock_usec(CLOCK_MONOTONIC), ctx->timeout_usec);
        int r;

        log_debug("Lost the coordinator; reconnecting to follow job %s.", job);
        for (;;) {
                *c = varlink_client_free(*c);
                r = context_connect_coordinator_quiet(ctx, c);
                if (r >= 0)
                        r = follow_send(*c, ctx, job);
                if (r >= 0 || r == -ENOMEM || clock_usec(CLOCK_MONOTONIC) >= deadline)
                        return r;
                (void) usleep((useconds_t) pause);
                pause = MIN(pause * 2, RECONNECT_PAUSE_MAX_USEC);
        }
}

static bool transport_lost(int r) {
        return r == -ECONNRESET || r == -ECONNREFUSED || r == -ENOENT || r == -EPIPE;
}

/* The last reply: the job's end, printed; returns the exit code. */
static int follow_end(const Context *ctx, json_object *o, const JobInfo *j, const char *what, const char *job) {
        int r = 0;

        if (!job_state_is_final(j->state)) {
                log_error("%s: the coordinator stopped reporting job %s while it was %s.", what, job, j->state);
                return EXIT_FAIL;
        }
        if (ctx->json)
                r = print_json(o);
        else
                job_print_summary(stdout, j);
        if (r < 0)
                return EXIT_FAIL;
        return streq(j->state, "done") ? EXIT_OK : EXIT_FAIL;
}

static void progress_signals(const Progress *p, const char *job) {
        if (!p->bar)
                return;
        snprintf(interrupt_message, sizeof(interrupt_message),
                 "Stopped waiting; job %s goes on (mrkvctl cancel %s stops it).\n", job, job);
        signal(SIGINT, on_interrupt);
        signal(SIGTERM, on_interrupt);
}

/* One reply of the stream: 1 with the job in *j (*last keeps the reply), 0 on a time-out
 * that only asks for a redraw, a negative errno when the transport failed, or -EREMOTE
 * with the exit code in *ret_exit after a message (an error reply, a bad reply). */
static int follow_read(VarlinkClient *c, Progress *progress, json_object **last, json_object **o, JobInfo *j,
                       bool *continues, const char *what, const char *job, int *ret_exit) {
        _cleanup_json_ json_object *reply = NULL;
        const char *error;
        int r;

        /* A job may run for hours with nothing to report: no time-out, except that a
         * terminal's elapsed time is redrawn every second. */
        r = varlink_client_read(c, progress->bar ? BAR_REDRAW_USEC : UINT64_MAX, &reply, &error, continues);
        if (r == -ETIMEDOUT && progress->bar) {
                *continues = true;
                return 0;
        }
        if (r < 0)
                return r;
        if (error) {
                *ret_exit = exit_code_of_error(error, reply, what, job);
                return -EREMOTE;
        }
        if (reply_job(reply, o, j) < 0) {
                *ret_exit = exit_code_of_transport(-EBADMSG, what);
                return -EREMOTE;
        }
        json_object_put(*last);
        *last = TAKE_PTR(reply);
        return 1;
}

/* Follows GetJob with "more" until the job ends, across restarts of the coordinator;
 * returns the exit code. */
static int wait_for_job(VarlinkClient **c, const Context *ctx, const char *job, const char *what) {
        _cleanup_json_ json_object *last = NULL;
        Progress progress = {
                .bar = !ctx->json && isatty(STDOUT_FILENO),
                .quiet = ctx->json,
                .start = clock_usec(CLOCK_MONOTONIC),
        };
        json_object *o = NULL;
        JobInfo j = {};
        bool continues = true;
        int r, code = EXIT_FAIL;

        r = follow_send(*c, ctx, job);
        if (transport_lost(r))
                r = follow_reconnect(c, ctx, job);
        if (r < 0)
                return exit_code_of_transport(r, what);
        progress_signals(&progress, job);

        while (continues) {
                r = follow_read(*c, &progress, &last, &o, &j, &continues, what, job, &code);
                if (transport_lost(r)) {
                        continues = true;
                        r = follow_reconnect(c, ctx, job);
                        if (r >= 0)
                                continue;
                        progress_end(&progress);
                        log_error("%s: lost the connection to the coordinator and could not reach it again; job "
                                  "%s may still be running.",
                                  what, job);
                        return EXIT_FAIL;
                }
                if (r < 0) {
                        progress_end(&progress);
                        return r == -EREMOTE ? code : exit_code_of_transport(r, what);
                }
                if (r == 0 && !last)
                        continue;
                r = progress_show(&progress, &j);
                if (r < 0) {
                        progress_end(&progress);
                        return log_error_errno(r, "Failed to write the progress to standard output: %m"), EXIT_FAIL;
                }
        }
        progress_end(&progress);
        if (progress.bar) {
                signal(SIGINT, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
        }
        return follow_end(ctx, o, &j, what, job);
}

/* Resolves FILE against the current directory, as the workers will not share it; its
 * size, which the coordinator cuts the file's splits by. */
static int resolve_input(const char *file, char **ret, uint64_t *ret_size) {
        _cleanup_free_ char *path = NULL;
        struct stat st;

        path = realpath(file, NULL);
        if (!path)
                return log_error_errno(errno, "Cannot use input file %s: %m", file);
        if (stat(path, &st) < 0)
                return log_error_errno(errno, "Cannot use input file %s: %m", file);
        if (!S_ISREG(st.st_mode))
                return log_error_errno(EINVAL, "Input file %s is not a regular file.", file);
        *ret = TAKE_PTR(path);
        *ret_size = (uint64_t) st.st_size;
        return 0;
}

/* What submit sends beyond the app and the files; unset options are left out. */
typedef struct SubmitOptions {
        unsigned nreduce;
        const char *workdir;
        uint64_t task_timeout;
        bool has_split_size;
        uint64_t split_size;
        const char *mapper, *reducer;
        bool no_backup_tasks;
        bool no_combine;
} SubmitOptions;

static json_object *submit_parameters(const char *app, char **files, const uint64_t *sizes, size_t n_files,
                                      const SubmitOptions *o) {
        _cleanup_json_ json_object *p = NULL, *a = json_object_new_array(), *s = json_object_new_array();
        const char *workdir = o->workdir;
        uint64_t task_timeout = o->task_timeout;
        unsigned nreduce = o->nreduce;

        if (!a || !s)
                return NULL;
        for (size_t i = 0; i < n_files; i++)
                if (json_array_append(a, json_object_new_string(files[i])) < 0 ||
                    json_array_append(s, json_object_new_int64((int64_t) MIN(sizes[i], (uint64_t) INT64_MAX))) < 0)
                        return NULL;
        if (json_build_object(&p, "app", json_object_new_string(app), "files", TAKE_PTR(a), "sizes", TAKE_PTR(s),
                              NULL) < 0)
                return NULL;
        if (o->has_split_size &&
            json_object_add(p, "split_size", json_object_new_int64((int64_t) MIN(o->split_size, (uint64_t) INT64_MAX))) < 0)
                return NULL;
        if (o->mapper && (json_object_add(p, "mapper", json_object_new_string(o->mapper)) < 0 ||
                          json_object_add(p, "reducer", json_object_new_string(o->reducer)) < 0))
                return NULL;
        if (o->no_backup_tasks && json_object_add(p, "backup_tasks", json_object_new_boolean(false)) < 0)
                return NULL;
        if (o->no_combine && json_object_add(p, "combine", json_object_new_boolean(false)) < 0)
                return NULL;
        /* Unset options are left out: the coordinator's defaults apply. */
        if (nreduce > 0 && json_object_add(p, "nreduce", json_object_new_int64(nreduce)) < 0)
                return NULL;
        if (workdir && json_object_add(p, "workdir", json_object_new_string(workdir)) < 0)
                return NULL;
        if (task_timeout > 0 &&
            json_object_add(p, "task_timeout_usec", json_object_new_int64((int64_t) task_timeout)) < 0)
                return NULL;
        return TAKE_PTR(p);
}

int verb_submit(Context *ctx, int argc, char *argv[]) {
        enum {
                ARG_WORKDIR = ARG_VERB_FIRST,
                ARG_TASK_TIMEOUT,
                ARG_WAIT,
                ARG_SPLIT_SIZE,
                ARG_MAPPER,
                ARG_REDUCER,
                ARG_NO_BACKUP_TASKS,
                ARG_NO_COMBINE,
        };
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "nreduce", required_argument, NULL, 'n' },
                { "workdir", required_argument, NULL, ARG_WORKDIR },
                { "task-timeout", required_argument, NULL, ARG_TASK_TIMEOUT },
                { "wait", no_argument, NULL, ARG_WAIT },
                { "split-size", required_argument, NULL, ARG_SPLIT_SIZE },
                { "mapper", required_argument, NULL, ARG_MAPPER },
                { "reducer", required_argument, NULL, ARG_REDUCER },
                { "no-backup-tasks", no_argument, NULL, ARG_NO_BACKUP_TASKS },
                { "no-combine", no_argument, NULL, ARG_NO_COMBINE },
                {},
        };
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_json_ json_object *p = NULL, *reply = NULL;
        _cleanup_strv_free_ char **files = NULL;
        _cleanup_free_ char *workdir = NULL, *job = NULL;
        _cleanup_free_ uint64_t *sizes = NULL;
        const char *app, *arg_workdir = NULL;
        SubmitOptions o = {};
        bool wait = false;
        size_t n_files;
        json_object *v;
        int ch, r;

        while ((ch = getopt_long(argc, argv, COMMON_SHORT_OPTIONS "n:", options, NULL)) >= 0)
                switch (ch) {
                case 'n':
                        if (parse_unsigned(optarg, 1, 100000, &o.nreduce) < 0) {
                                log_error("Invalid --nreduce: %s (1...100000)", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case ARG_WORKDIR:
                        arg_workdir = optarg;
                        break;
                case ARG_TASK_TIMEOUT:
                        if (parse_seconds(optarg, &o.task_timeout) < 0 || o.task_timeout == 0) {
                                log_error("Invalid --task-timeout: %s (a positive number of seconds)",
                                          optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case ARG_WAIT:
                        wait = true;
                        break;
                case ARG_SPLIT_SIZE:
                        if (parse_size(optarg, INT64_MAX, &o.split_size) < 0) {
                                log_error("Invalid --split-size: %s (bytes, with an optional K, M or G; 0 for "
                                          "one map task per file)", optarg);
                                return EXIT_USAGE;
                        }
                        o.has_split_size = true;
                        break;
                case ARG_MAPPER:
                        o.mapper = optarg;
                        break;
                case ARG_REDUCER:
                        o.reducer = optarg;
                        break;
                case ARG_NO_BACKUP_TASKS:
                        o.no_backup_tasks = true;
                        break;
                case ARG_NO_COMBINE:
                        o.no_combine = true;
                        break;
                default:
                        if (context_parse_common_option(ctx, ch, optarg) <= 0)
                                return EXIT_USAGE;
                }
        if (!o.mapper != !o.reducer) {
                log_error("--mapper and --reducer go together. See --help.");
                return EXIT_USAGE;
        }
        /* A streaming job's commands take the place of the APP. */
        if (argc - optind < (o.mapper ? 1 : 2)) {
                log_error(o.mapper ? "submit --mapper/--reducer needs at least one FILE. See --help."
                                   : "submit needs an APP and at least one FILE. See --help.");
                return EXIT_USAGE;
        }
        app = o.mapper ? "streaming" : argv[optind++];
        n_files = (size_t) (argc - optind);

        /* Every file is checked before anything is sent: a typo fails here, with its name,
         * rather than as a failed task on some worker later. */
        files = calloc(n_files + 1, sizeof(char *));
        sizes = calloc(n_files, sizeof(uint64_t));
        if (!files || !sizes)
                return log_oom(), EXIT_FAIL;
        for (size_t i = 0; i < n_files; i++)
                if (resolve_input(argv[optind + i], &files[i], &sizes[i]) < 0)
                        return EXIT_FAIL;
        if (arg_workdir) {
                struct stat st;

                workdir = realpath(arg_workdir, NULL);
                if (!workdir) {
                        log_error_errno(errno, "Cannot use --workdir %s: %m", arg_workdir);
                        return EXIT_FAIL;
                }
                if (stat(workdir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                        log_error("Cannot use --workdir %s: not a directory.", arg_workdir);
                        return EXIT_FAIL;
                }
        }

        o.workdir = workdir;
        p = submit_parameters(app, files, sizes, n_files, &o);
        if (!p)
                return log_oom(), EXIT_FAIL;

        if (context_connect_coordinator(ctx, &c) < 0)
                return EXIT_FAIL;
        r = call(c, ctx, MAPREDUCE_METHOD_SUBMIT_JOB, p, "submit", NULL, &reply);
        if (r != EXIT_OK)
                return r;
        if (!json_object_object_get_ex(reply, "job", &v) || !json_object_is_type(v, json_type_string))
                return exit_code_of_transport(-EBADMSG, "submit");
        job = strdup(json_object_get_string(v));
        if (!job)
                return log_oom(), EXIT_FAIL;
        json_object_put(TAKE_PTR(reply));

        if (!ctx->json) {
                /* The id first, on a line of its own, for scripts and for "cancel". */
                if (puts(job) < 0 || fflush(stdout) != 0)
                        return finish_output(EXIT_FAIL);
        }
        if (wait)
                return finish_output(wait_for_job(&c, ctx, job, "submit --wait"));
        if (!ctx->json)
                return finish_output(EXIT_OK);

        r = get_job(c, ctx, job, "submit", &reply);
        if (r != EXIT_OK)
                return r;
        return finish_output(show_job(ctx, reply, "submit"));
}
