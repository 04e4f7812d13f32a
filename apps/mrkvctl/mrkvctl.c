/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkvctl: the command-line client of mrkv. main() parses the options that come before
 * the verb and hands the rest to the verb; each group of verbs lives in its own file. */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "config.h"
#include "log.h"
#include "macro.h"
#include "mrkvctl.h"
#include "parse-util.h"

static const Verb verbs[] = {
        { "get", "KEY", "Print the value of KEY (--json: value and version)", verb_get },
        { "put", "KEY VALUE [--version N] [--lease ID]",
          "Set KEY to VALUE if its version is N (default 0: create); attached to lease ID", verb_put },
        { "del", "KEY [--version N]", "Delete KEY if its version is N (default: the version it has now)", verb_del },
        { "ls", "[PREFIX] [--values] [--page-size N]", "List the keys under PREFIX (default: all), in order",
          verb_ls },
        { "watch", "KEY|--prefix PREFIX [--version N] [--count N]",
          "Print a line per change of KEY, or of the keys under PREFIX, after version N", verb_watch },
        { "lease", "grant TTL | keepalive ID [--once] | revoke ID",
          "Grant a lease of TTL seconds (print its id), keep one alive, or end one", verb_lease },
        { "lock", "[--wait SEC] [--ttl SEC] NAME [--] COMMAND [ARG...]",
          "Run COMMAND while holding the lock NAME, then release it", verb_lock },
        { "submit", "APP|--mapper CMD --reducer CMD FILE... [--nreduce N] [--workdir DIR]\n"
          "         [--task-timeout SEC] [--split-size BYTES] [--no-backup-tasks] [--no-combine]\n"
          "         [--wait]",
          "Run the MapReduce app APP, or a streaming job's commands, over FILEs; print the\n"
          "      job's id", verb_submit },
        { "jobs", "", "List the coordinator's jobs", verb_jobs },
        { "status", "JOB [--wait]", "Show a job's state, progress, times and files", verb_status },
        { "cancel", "JOB", "Stop a job that has not ended", verb_cancel },
};

void help(void) {
        printf("%s [OPTIONS...] VERB [ARGS...]\n\n"
               "Talks to mrkv-kvserver (get, put, del, ls, watch, lease, lock: keys, leases and\n"
               "locks) and to mrkv-coordinator\n"
               "(submit, jobs, status, cancel: MapReduce jobs).\n\n"
               "Verbs:\n",
               program_invocation_short_name);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %s%s%s\n      %s\n", verbs[i].name, verbs[i].synopsis[0] ? " " : "", verbs[i].synopsis,
                       verbs[i].summary);
        printf("\nOptions (before or after the verb):\n"
               "  -h --help             Show this help\n"
               "     --version          Show the version (only before the verb; after \"put\"\n"
               "                        --version N is the version to put at)\n"
               "  -c --connect=ADDRESS  The server the verb talks to: unix:/path or\n"
               "                        tcp:host:port. Default for key and lock verbs: $%s,\n"
               "                        else %s; for job verbs: $%s,\n"
               "                        else %s; each in $RUNTIME_DIRECTORY,\n"
               "                        $XDG_RUNTIME_DIR/mrkv or /run/mrkv\n"
               "  -t --timeout=SEC      Give up on a request after SEC seconds (default 30).\n"
               "                        Key requests whose reply is lost are resent until then;\n"
               "                        \"infinity\" retries forever, as the library does by\n"
               "                        default. A put that timed out may have been applied.\n"
               "                        submit --wait and status --wait wait for the job however\n"
               "                        long it runs, and for a coordinator that restarts up to\n"
               "                        SEC seconds.\n"
               "     --json             get: print {\"value\":...,\"version\":...}; ls, watch: a JSON\n"
               "                        object per key or change; lease grant: {\"lease\",\"ttl\"};\n"
               "                        status, cancel, submit: the Job object; jobs: an array\n"
               "\nKey options:\n"
               "     --version=N        put, del: the version the key must have; watch: print\n"
               "                        the changes after version N (default 0)\n"
               "     --lease=ID         put: attach the key to lease ID; it goes when the lease ends\n"
               "     --values           ls: print KEY<tab>VALUE lines\n"
               "     --page-size=N      ls: keys per request (1 to 10000; default the server's)\n"
               "     --prefix=PREFIX    watch: every key under PREFIX instead of one KEY\n"
               "     --count=N          watch: exit after N changes (default: run until interrupted)\n"
               "     --once             lease keepalive: renew once and print the ttl\n"
               "\nLock options:\n"
               "  -w --wait=SEC         Give up waiting for the lock after SEC seconds (default:\n"
               "                        wait forever, like flock(1))\n"
               "     --ttl=SEC          The lease of the lock (default 10): if mrkvctl dies, is\n"
               "                        stopped or cut off, another waiter gets the lock within SEC\n"
               "\nSubmit options:\n"
               "  -n --nreduce=N        Number of reduce tasks (default 10)\n"
               "     --workdir=DIR      Where the job's files go, an existing directory the\n"
               "                        workers can write (default: a new directory under the\n"
               "                        coordinator's state directory)\n"
               "     --task-timeout=SEC Give a task to another worker if it is not done within\n"
               "                        SEC seconds (default 10)\n"
               "     --split-size=BYTES Cut each FILE into map tasks of about BYTES (K, M, G\n"
               "                        suffixes; default 64M; 0: one map task per file), at\n"
               "                        line boundaries, by its size now\n"
               "     --mapper=CMD, --reducer=CMD\n"
               "                        A streaming job instead of an APP: shell commands run\n"
               "                        by the workers in the job's directory. The mapper reads\n"
               "                        its split's lines on stdin and writes key<TAB>value\n"
               "                        lines; the reducer reads them sorted by key and writes\n"
               "                        the output lines\n"
               "     --no-backup-tasks  No second attempts of slow tasks on idle workers\n"
               "     --no-combine       Map tasks skip the app's combiner: the same output,\n"
               "                        uncombined intermediate data (compare the counters)\n"
               "     --wait             Follow the job until it ends: a progress bar on a\n"
               "                        terminal, else a line whenever the progress changes;\n"
               "                        then the final state and the output files. When the\n"
               "                        coordinator restarts, reconnect and follow the same job\n"
               "\nStatus options:\n"
               "     --wait             Follow the job until it ends, as submit --wait does\n"
               "FILEs are resolved against the current directory before the job is sent; the\n"
               "workers must be able to read them under the same absolute paths. Interrupting\n"
               "submit --wait leaves the job running.\n"
               "\nThe lock's key is on a lease mrkvctl renews while COMMAND runs. COMMAND finds\n"
               "the fencing token, higher for every later holder, in $MRKV_LOCK_TOKEN; if the\n"
               "lock is lost meanwhile, mrkvctl stops COMMAND (SIGTERM, then SIGKILL after 5 s)\n"
               "and exits with 8. While COMMAND runs, mrkvctl ignores SIGINT and SIGQUIT (the\n"
               "terminal sends them to COMMAND) and passes SIGTERM and SIGHUP on to COMMAND.\n"
               "\nExit status:\n"
               "  0  success (submit --wait: the job is done)\n"
               "  1  failure (server unreachable until the timeout, lock not released, input\n"
               "     file missing, job refused, job failed or cancelled under --wait, ...)\n"
               "  2  usage error\n"
               "  3  no such key (get; put with a version > 0 on a missing key), no such job\n"
               "  4  version mismatch (put)\n"
               "  5  maybe: a resent put or del was answered with a version mismatch (del: or\n"
               "     no such key), so it may or may not have been applied; read the key\n"
               "  6  storage error: the server could not make it durable; not applied\n"
               "  7  quota exceeded: over the keys or bytes the server allows you; not applied\n"
               "  8  lock: the lock was lost while COMMAND ran, and COMMAND was stopped\n"
               "  9  no such lease (lease, put --lease): expired, revoked, or not yours\n"
               "  lock: the exit status of COMMAND (128+N if it died of signal N; 127 if it\n"
               "     was not found, 126 if it could not be run)\n"
               "\nExamples:\n"
               "  mrkvctl put greeting hello            # create (version 0 -> 1)\n"
               "  mrkvctl get greeting --json           # {\"value\":\"hello\",\"version\":1}\n"
               "  mrkvctl put greeting hi --version 1   # update (version 1 -> 2)\n"
               "  mrkvctl lock backup -- rsync -a /src /dst\n"
               "  mrkvctl watch greeting --json         # a line per change, until interrupted\n"
               "  mrkvctl ls worker/ --values\n"
               "  mrkvctl put worker/1 up --lease \"$(mrkvctl lease grant 30)\"\n"
               "  mrkvctl submit wc pg-*.txt --wait     # word count; prints the output files\n"
               "  mrkvctl submit wc big.log --split-size 16M\n"
               "  mrkvctl submit --mapper ./map.py --reducer ./reduce.py pg-*.txt\n"
               "  mrkvctl jobs\n"
               "  mrkvctl status 3 --json\n",
               MRKV_KV_ADDRESS_ENV, MRKV_KV_SOCKET, MRKV_COORDINATOR_ADDRESS_ENV, MRKV_COORDINATOR_SOCKET);
}

int context_parse_common_option(Context *ctx, int c, const char *arg) {
        switch (c) {
        case 'h':
                help();
                exit(EXIT_OK);
        case 'c':
                ctx->address = arg;
                return 1;
        case 't':
                if (parse_timeout(arg, &ctx->timeout_usec) < 0) {
                        log_error("Invalid --timeout: %s (a positive number of seconds, or \"infinity\")", arg);
                        return -1;
                }
                return 1;
        case ARG_JSON:
                ctx->json = true;
                return 1;
        case '?':
                return -1; /* getopt_long() has printed the message */
        default:
                return 0;
        }
}

int context_parse_verb_arguments(Context *ctx, int argc, char *argv[], const char *argument) {
        static const struct option options[] = {
                COMMON_OPTIONS,
                {},
        };
        int c, n = argument ? 1 : 0;

        while ((c = getopt_long(argc, argv, COMMON_SHORT_OPTIONS, options, NULL)) >= 0)
                if (context_parse_common_option(ctx, c, optarg) <= 0)
                        return -1;
        if (argc - optind != n) {
                if (argument)
                        log_error("%s takes one argument: %s. See --help.", argv[0], argument);
                else
                        log_error("%s takes no arguments. See --help.", argv[0]);
                return -1;
        }
        return optind;
}

#define CLI_ATTEMPT_TIMEOUT_USEC (5 * USEC_PER_SEC)

int context_open_clerk(const Context *ctx, mrkv_clerk **ret) {
        mrkv_clerk *c;
        int r;

        r = mrkv_clerk_new(ctx->address, &c);
        if (r < 0)
                return log_error_errno(r, "Failed to set up a client for %s: %m", ctx->address ?: "the default address");
        if (ctx->timeout_usec != UINT64_MAX) {
                r = mrkv_clerk_set_deadline(c, ctx->timeout_usec);
                if (r < 0) {
                        mrkv_clerk_free(c);
                        return log_error_errno(r, "Failed to set the timeout: %m");
                }
        }
        /* One command, one request: wait longer for its reply than the library does
         * before resending. The first request may start the server (socket activation)
         * on a slow machine, and a resend of a Put that was applied is answered "maybe". */
        r = mrkv_clerk_set_attempt_timeout(c, MIN(CLI_ATTEMPT_TIMEOUT_USEC, ctx->timeout_usec));
        if (r < 0) {
                mrkv_clerk_free(c);
                return log_error_errno(r, "Failed to set the attempt timeout: %m");
        }
        *ret = c;
        return 0;
}

int context_connect_coordinator_quiet(const Context *ctx, VarlinkClient **ret) {
        _cleanup_free_ char *def = NULL;

        if (ctx->address)
                return varlink_client_connect(ctx->address, ret);
        if (address_default(MRKV_COORDINATOR_ADDRESS_ENV, MRKV_COORDINATOR_SOCKET, &def) < 0)
                return -ENOMEM;
        return varlink_client_connect(def, ret);
}

int context_connect_coordinator(const Context *ctx, VarlinkClient **ret) {
        _cleanup_free_ char *def = NULL;
        const char *address = ctx->address;
        int r;

        if (!address) {
                r = address_default(MRKV_COORDINATOR_ADDRESS_ENV, MRKV_COORDINATOR_SOCKET, &def);
                if (r < 0)
                        return log_error_errno(r, "Failed to determine the coordinator's address: %m");
                address = def;
        }
        r = varlink_client_connect(address, ret);
        if (r == -ENOENT || r == -ECONNREFUSED)
                return log_error_errno(r, "Failed to connect to the coordinator at %s: %m (is mrkv-coordinator running?)",
                                       address);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the coordinator at %s: %m", address);
        return 0;
}

int exit_code_of_result(const mrkv_clerk *c, int r, const char *what, const char *subject) {
        switch (r) {
        case MRKV_OK:
                return EXIT_OK;
        case MRKV_ERR_NO_KEY:
                log_error("%s %s: no such key", what, subject);
                return EXIT_NO_KEY;
        case MRKV_ERR_VERSION:
                log_error("%s %s: version mismatch", what, subject);
                return EXIT_VERSION;
        case MRKV_ERR_MAYBE:
                log_error("%s %s: maybe applied (a resent put met a version mismatch)", what, subject);
                return EXIT_MAYBE;
        case MRKV_ERR_STORAGE:
                log_error("%s %s: not applied, the server cannot store it (its disk is full or failing)", what,
                          subject);
                return EXIT_STORAGE;
        case MRKV_ERR_QUOTA:
                log_error("%s %s: not applied, over the keys or bytes the server allows your user", what, subject);
                return EXIT_QUOTA;
        case MRKV_ERR_NO_LEASE:
                log_error("%s %s: no such lease (expired, revoked, or not yours)", what, subject);
                return EXIT_NO_LEASE;
        case MRKV_ERR_LEASE_FULL:
                log_error("%s %s: not applied, the lease has as many keys as the server allows", what, subject);
                return EXIT_FAIL;
        case MRKV_ERR_LIMIT:
                log_error("%s %s: the server holds as many leases or watchers as it allows", what, subject);
                return EXIT_FAIL;
        case -ETIMEDOUT:
                log_error("%s %s: no reply from %s before the timeout%s", what, subject, mrkv_clerk_get_address(c),
                          streq(what, "put") || streq(what, "del") ? "; it may have been applied" : "");
                return EXIT_FAIL;
        default:
                log_error_errno(r, "%s %s: %m", what, subject);
                return EXIT_FAIL;
        }
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = ARG_VERB_FIRST };
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        Context ctx = {
                .timeout_usec = DEFAULT_TIMEOUT_USEC,
        };
        int c, r;

        log_set_ident(program_invocation_short_name);

        /* "+": stop at the verb, whose options are its own. */
        while ((c = getopt_long(argc, argv, "+" COMMON_SHORT_OPTIONS, options, NULL)) >= 0) {
                if (c == ARG_VERSION) {
                        printf("mrkvctl %s\n", PACKAGE_VERSION);
                        return EXIT_OK;
                }
                r = context_parse_common_option(&ctx, c, optarg);
                if (r < 0)
                        return EXIT_USAGE;
                assert(r > 0);
        }

        if (optind >= argc) {
                log_error("No verb given. See --help.");
                return EXIT_USAGE;
        }

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[optind], verbs[i].name)) {
                        int verb_argc = argc - optind;
                        char **verb_argv = argv + optind;

                        optind = 0; /* restart getopt for the verb's own options */
                        return verbs[i].run(&ctx, verb_argc, verb_argv);
                }

        log_error("Unknown verb '%s'. See --help.", argv[optind]);
        return EXIT_USAGE;
}
