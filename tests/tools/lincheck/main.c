/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "lincheck.h"
#include "log.h"
#include "macro.h"

/* Exit codes, for scripts and test suites. */
enum {
        EXIT_LINEARIZABLE = 0,
        EXIT_ILLEGAL = 1,
        EXIT_USAGE = 2,
        EXIT_UNKNOWN = 3,
};

/* A guard against a test suite hanging on a pathological history; --timeout 0 lifts it. */
#define DEFAULT_TIMEOUT_SEC 60.0
#define DEFAULT_MAX_MEMORY_MIB 1024

static void help(void) {
        printf("Usage: mrkv-lincheck [OPTIONS] HISTORY.jsonl\n"
               "\n"
               "Checks that a history of mrkv key/value operations (JSON Lines, \"-\" for stdin)\n"
               "is linearizable.\n"
               "\n"
               "  -t, --timeout SEC        give up after SEC seconds (default %.0f, 0: never)\n"
               "  -m, --max-memory MIB     give up past MIB MiB of search memo per key (default %d, 0: no limit)\n"
               "  -h, --help               show this help\n"
               "\n"
               "Exit status: 0 linearizable, 1 not linearizable, 2 usage or parse error,\n"
               "3 unknown (a limit was reached).\n",
                DEFAULT_TIMEOUT_SEC, DEFAULT_MAX_MEMORY_MIB);
}

static int parse_seconds(const char *s, uint64_t *ret) {
        char *end;
        double d;

        errno = 0;
        d = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !isfinite(d) || d < 0 || d > 1e9)
                return -EINVAL;
        *ret = (uint64_t) (d * 1e6);
        /* A tiny positive value still means a limit, not "none". */
        if (d > 0 && *ret == 0)
                *ret = 1;
        return 0;
}

static int parse_mib(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > (UINT64_MAX >> 20))
                return -EINVAL;
        *ret = (uint64_t) v << 20;
        return 0;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "timeout", required_argument, NULL, 't' },
                { "max-memory", required_argument, NULL, 'm' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        LinOptions o = {
                .timeout_usec = (uint64_t) (DEFAULT_TIMEOUT_SEC * 1e6),
                .max_memory = (uint64_t) DEFAULT_MAX_MEMORY_MIB << 20,
        };
        _cleanup_(lin_history_freep) LinHistory *h = NULL;
        _cleanup_free_ char *error = NULL;
        LinReport rep;
        int c, r;

        log_set_ident("mrkv-lincheck");

        while ((c = getopt_long(argc, argv, "t:m:h", options, NULL)) >= 0)
                switch (c) {
                case 't':
                        if (parse_seconds(optarg, &o.timeout_usec) < 0) {
                                log_error("Invalid --timeout: %s", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'm':
                        if (parse_mib(optarg, &o.max_memory) < 0) {
                                log_error("Invalid --max-memory: %s", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case 'h':
                        help();
                        return EXIT_LINEARIZABLE;
                default:
                        return EXIT_USAGE;
                }

        if (optind != argc - 1) {
                log_error("Expected one history file; see --help.");
                return EXIT_USAGE;
        }

        r = lin_history_load(argv[optind], &h, &error);
        if (r < 0) {
                if (r == -ENOMEM)
                        log_oom();
                else
                        log_error("%s: %s", argv[optind], error ?: "cannot read the history");
                return EXIT_USAGE;
        }

        r = lin_check(h, &o, &rep);
        if (r < 0) {
                log_error_errno(r, "Failed to check %s: %m", argv[optind]);
                return EXIT_USAGE;
        }

        printf("%s: %zu operations, %zu keys, %.3f s%s%s\n", lin_verdict_to_string(rep.verdict), rep.n_ops,
                rep.n_partitions, (double) rep.usec / 1e6, rep.description ? "; " : "",
                rep.description ?: "");
        fflush(stdout);

        switch (rep.verdict) {
        case LIN_LINEARIZABLE:
                r = EXIT_LINEARIZABLE;
                break;
        case LIN_ILLEGAL:
                r = EXIT_ILLEGAL;
                break;
        default:
                r = EXIT_UNKNOWN;
        }
        lin_report_done(&rep);
        return r;
}
