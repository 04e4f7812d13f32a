/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The key/value verbs: get, put. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "mrkvctl.h"
#include "parse-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(mrkv_clerk *, mrkv_clerk_free);

static int print_json(const char *value, uint64_t version) {
        _cleanup_json_ json_object *o = NULL;

        if (json_build_object(&o,
                              "value", json_object_new_string(value),
                              "version", json_object_new_uint64(version),
                              NULL) < 0)
                return log_oom();
        /* JSON_C_TO_STRING_NOSLASHESCAPE: paths print as typed, not as "\/tmp". */
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        return 0;
}

int verb_get(Context *ctx, int argc, char *argv[]) {
        _cleanup_(mrkv_clerk_freep) mrkv_clerk *clerk = NULL;
        _cleanup_free_ char *value = NULL;
        uint64_t version;
        const char *key;
        int i, r;

        i = context_parse_verb_arguments(ctx, argc, argv, "KEY");
        if (i < 0)
                return EXIT_USAGE;
        key = argv[i];

        if (context_open_clerk(ctx, &clerk) < 0)
                return EXIT_FAIL;

        r = mrkv_clerk_get(clerk, key, &value, &version);
        if (r != MRKV_OK)
                return exit_code_of_result(clerk, r, "get", key);

        if (ctx->json)
                r = print_json(value, version);
        else
                r = puts(value) < 0 ? -EIO : 0;
        if (r < 0 || fflush(stdout) != 0) {
                log_error("Failed to write the value to standard output.");
                return EXIT_FAIL;
        }
        return EXIT_OK;
}

int verb_put(Context *ctx, int argc, char *argv[]) {
        enum { ARG_VERSION = ARG_VERB_FIRST, ARG_LEASE };
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "version", required_argument, NULL, ARG_VERSION },
                { "lease", required_argument, NULL, ARG_LEASE },
                {},
        };
        _cleanup_(mrkv_clerk_freep) mrkv_clerk *clerk = NULL;
        uint64_t version = 0, lease = 0;
        const char *key, *value;
        int c, r;

        while ((c = getopt_long(argc, argv, COMMON_SHORT_OPTIONS, options, NULL)) >= 0) {
                if (c == ARG_VERSION) {
                        char *end;

                        errno = 0;
                        /* strtoull() accepts "-1" as UINT64_MAX; a version is never negative. */
                        version = strtoull(optarg, &end, 10);
                        if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-') {
                                log_error("Invalid --version: %s", optarg);
                                return EXIT_USAGE;
                        }
                        continue;
                }
                if (c == ARG_LEASE) {
                        if (parse_uint64(optarg, &lease) < 0 || lease == 0) {
                                log_error("Invalid --lease: %s", optarg);
                                return EXIT_USAGE;
                        }
                        continue;
                }
                if (context_parse_common_option(ctx, c, optarg) <= 0)
                        return EXIT_USAGE;
        }

        if (argc - optind != 2) {
                log_error("put takes two arguments: KEY VALUE. See --help.");
                return EXIT_USAGE;
        }
        key = argv[optind];
        value = argv[optind + 1];

        if (context_open_clerk(ctx, &clerk) < 0)
                return EXIT_FAIL;

        r = lease > 0 ? mrkv_clerk_put_with_lease(clerk, key, value, version, lease)
                      : mrkv_clerk_put(clerk, key, value, version);
        return exit_code_of_result(clerk, r, "put", key);
}
