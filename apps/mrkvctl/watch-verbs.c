/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The verbs beyond get and put: del, ls, watch, lease. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "io-util.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "mrkvctl.h"
#include "parse-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(mrkv_clerk *, mrkv_clerk_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(mrkv_list *, mrkv_list_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(mrkv_watch *, mrkv_watch_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(mrkv_keepalive *, mrkv_keepalive_free);

/* An entry of ls or a change of watch as one JSON line. */
static int print_entry_json(const mrkv_entry *e, bool watch) {
        _cleanup_json_ json_object *o = NULL;
        int r;

        r = json_build_object(&o,
                              "key", json_object_new_string(e->key),
                              "version", json_object_new_uint64(e->version),
                              NULL);
        if (r >= 0 && e->value)
                r = json_object_add(o, "value", json_object_new_string(e->value));
        if (r >= 0 && watch)
                r = json_object_add(o, "deleted", json_object_new_boolean(e->deleted));
        if (r >= 0 && e->lease > 0)
                r = json_object_add(o, "lease", json_object_new_uint64(e->lease));
        if (r < 0)
                return log_oom();
        return puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) < 0 ?
                       -EIO : 0;
}

static int flush_stdout(void) {
        if (fflush(stdout) != 0) {
                log_error("Failed to write to standard output.");
                return -EIO;
        }
        return 0;
}

static int parse_version_option(const char *arg, uint64_t *ret) {
        /* A version is never negative; parse_uint64() takes no sign. */
        if (parse_uint64(arg, ret) < 0) {
                log_error("Invalid --version: %s", arg);
                return -EINVAL;
        }
        return 0;
}

int verb_del(Context *ctx, int argc, char *argv[]) {
        enum { ARG_VERSION = ARG_VERB_FIRST };
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "version", required_argument, NULL, ARG_VERSION },
                {},
        };
        _cleanup_(mrkv_clerk_freep) mrkv_clerk *clerk = NULL;
        uint64_t version = 0;
        bool have_version = false;
        const char *key;
        int c, r;

        while ((c = getopt_long(argc, argv, COMMON_SHORT_OPTIONS, options, NULL)) >= 0) {
                if (c == ARG_VERSION) {
                        if (parse_version_option(optarg, &version) < 0)
                                return EXIT_USAGE;
                        have_version = true;
                        continue;
                }
                if (context_parse_common_option(ctx, c, optarg) <= 0)
                        return EXIT_USAGE;
        }
        if (argc - optind != 1) {
                log_error("del takes one argument: KEY. See --help.");
                return EXIT_USAGE;
        }
        key = argv[optind];

        if (context_open_clerk(ctx, &clerk) < 0)
                return EXIT_FAIL;

        /* Without --version: the version it has now, so a change in between is not lost
         * silently but reported as a mismatch. */
        if (!have_version) {
                r = mrkv_clerk_get(clerk, key, NULL, &version);
                if (r != MRKV_OK)
                        return exit_code_of_result(clerk, r, "del", key);
        }
        r = mrkv_clerk_delete(clerk, key, version);
        return exit_code_of_result(clerk, r, "del", key);
}

int verb_ls(Context *ctx, int argc, char *argv[]) {
        enum { ARG_VALUES = ARG_VERB_FIRST, ARG_PAGE };
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "values", no_argument, NULL, ARG_VALUES },
                { "page-size", required_argument, NULL, ARG_PAGE },
                {},
        };
        _cleanup_(mrkv_clerk_freep) mrkv_clerk *clerk = NULL;
        _cleanup_(mrkv_list_freep) mrkv_list *list = NULL;
        const char *prefix = NULL;
        unsigned flags = 0, page = 0;
        const mrkv_entry *e;
        int c, r;

        while ((c = getopt_long(argc, argv, COMMON_SHORT_OPTIONS, options, NULL)) >= 0) {
                if (c == ARG_VALUES) {
                        flags |= MRKV_LIST_VALUES;
                        continue;
                }
                if (c == ARG_PAGE) {
                        if (parse_unsigned(optarg, 1, 10000, &page) < 0) {
                                log_error("Invalid --page-size: %s (1 to 10000)", optarg);
                                return EXIT_USAGE;
                        }
                        continue;
                }
                if (context_parse_common_option(ctx, c, optarg) <= 0)
                        return EXIT_USAGE;
        }
        if (argc - optind > 1) {
                log_error("ls takes at most one argument: PREFIX. See --help.");
                return EXIT_USAGE;
        }
        if (optind < argc)
                prefix = argv[optind];

        if (context_open_clerk(ctx, &clerk) < 0)
                return EXIT_FAIL;
        r = mrkv_list_new(clerk, prefix, NULL, flags, &list);
        if (r >= 0)
                r = mrkv_list_set_page_size(list, page);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the listing: %m");
                return EXIT_FAIL;
        }

        while ((r = mrkv_list_next(list, &e)) > 0) {
                if (ctx->json)
                        r = print_entry_json(e, false);
                else if (e->value)
                        r = printf("%s\t%s\n", e->key, e->value) < 0 ? -EIO : 0;
                else
                        r = puts(e->key) < 0 ? -EIO : 0;
                if (r < 0)
                        break;
        }
        if (r < 0 && r != -EIO)
                return exit_code_of_result(clerk, r, "ls", prefix ?: "(all keys)");
        if (r < 0 || flush_stdout() < 0)
                return EXIT_FAIL;
        return EXIT_OK;
}

int verb_watch(Context *ctx, int argc, char *argv[]) {
        enum { ARG_PREFIX = ARG_VERB_FIRST, ARG_VERSION, ARG_COUNT };
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "prefix", required_argument, NULL, ARG_PREFIX },
                { "version", required_argument, NULL, ARG_VERSION },
                { "count", required_argument, NULL, ARG_COUNT },
                {},
        };
        _cleanup_(mrkv_clerk_freep) mrkv_clerk *clerk = NULL;
        _cleanup_(mrkv_watch_freep) mrkv_watch *watch = NULL;
        const char *prefix = NULL, *key = NULL;
        uint64_t version = 0, count = 0, seen = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, COMMON_SHORT_OPTIONS, options, NULL)) >= 0) {
                switch (c) {
                case ARG_PREFIX:
                        prefix = optarg;
                        continue;
                case ARG_VERSION:
                        if (parse_version_option(optarg, &version) < 0)
                                return EXIT_USAGE;
                        continue;
                case ARG_COUNT:
                        if (parse_uint64(optarg, &count) < 0 || count == 0) {
                                log_error("Invalid --count: %s (a positive number)", optarg);
                                return EXIT_USAGE;
                        }
                        continue;
                }
                if (context_parse_common_option(ctx, c, optarg) <= 0)
                        return EXIT_USAGE;
        }
        if (argc - optind != (prefix ? 0 : 1)) {
                log_error("watch takes either KEY or --prefix PREFIX. See --help.");
                return EXIT_USAGE;
        }
        if (!prefix)
                key = argv[optind];

        if (context_open_clerk(ctx, &clerk) < 0)
                return EXIT_FAIL;
        r = key ? mrkv_watch_new(clerk, key, version, &watch) : mrkv_watch_new_prefix(clerk, prefix, version, &watch);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the watch: %m");
                return EXIT_FAIL;
        }

        /* Until interrupted, or --count changes: the watch reconnects by itself. */
        while (count == 0 || seen < count) {
                const mrkv_entry *e;

                r = mrkv_watch_next(watch, UINT64_MAX, &e);
                if (r < 0)
                        return exit_code_of_result(clerk, r, "watch", key ?: prefix);
                if (r == 0)
                        continue;
                seen++;
                if (ctx->json)
                        r = print_entry_json(e, true);
                else if (e->deleted)
                        r = printf("DELETE %s %" PRIu64 "\n", e->key, e->version) < 0 ? -EIO : 0;
                else
                        r = printf("PUT %s %" PRIu64 " %s\n", e->key, e->version, e->value) < 0 ? -EIO : 0;
                /* A line per change as it happens, also into a pipe. */
                if (r < 0 || flush_stdout() < 0)
                        return EXIT_FAIL;
        }
        return EXIT_OK;
}

static int lease_result(const mrkv_clerk *clerk, int r, const char *what, const char *id) {
        if (r == MRKV_ERR_NO_LEASE) {
                log_error("lease %s %s: no such lease (expired, revoked, or not yours)", what, id);
                return EXIT_NO_LEASE;
        }
        if (r == MRKV_ERR_LIMIT) {
                log_error("lease %s: the server holds as many leases as it allows", what);
                return EXIT_FAIL;
        }
        return exit_code_of_result(clerk, r, "lease", what);
}

static volatile sig_atomic_t stop_requested = 0;

static void request_stop(int sig) {
        stop_requested = 1;
}

static int lease_keepalive_loop(mrkv_clerk *clerk, uint64_t lease, uint64_t ttl, const char *id) {
        _cleanup_(mrkv_keepalive_freep) mrkv_keepalive *k = NULL;
        struct sigaction sa = { .sa_handler = request_stop };
        int r;

        r = mrkv_keepalive_new(clerk, lease, ttl, &k);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the keepalive: %m");
                return EXIT_FAIL;
        }
        /* Not SA_RESTART: the wait below returns, and we end cleanly. */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        while (!stop_requested) {
                r = mrkv_keepalive_process(k);
                if (r == MRKV_ERR_NO_LEASE) {
                        log_error("lease %s: lost (it expired, was revoked, or could not be renewed in time)", id);
                        return EXIT_NO_LEASE;
                }
                if (r != 0)
                        return lease_result(clerk, r, "keepalive", id);
                (void) fd_wait_until(mrkv_keepalive_get_fd(k), POLLIN, UINT64_MAX);
        }
        return EXIT_OK;
}

int verb_lease(Context *ctx, int argc, char *argv[]) {
        enum { ARG_ONCE = ARG_VERB_FIRST };
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "once", no_argument, NULL, ARG_ONCE },
                {},
        };
        _cleanup_(mrkv_clerk_freep) mrkv_clerk *clerk = NULL;
        uint64_t lease = 0, ttl = 0;
        bool once = false;
        const char *what, *arg;
        int c, r;

        while ((c = getopt_long(argc, argv, COMMON_SHORT_OPTIONS, options, NULL)) >= 0) {
                if (c == ARG_ONCE) {
                        once = true;
                        continue;
                }
                if (context_parse_common_option(ctx, c, optarg) <= 0)
                        return EXIT_USAGE;
        }
        if (argc - optind != 2) {
                log_error("lease takes two arguments: grant TTL, keepalive ID or revoke ID. See --help.");
                return EXIT_USAGE;
        }
        what = argv[optind];
        arg = argv[optind + 1];

        if (streq(what, "grant")) {
                if (parse_seconds(arg, &ttl) < 0 || ttl < USEC_PER_SEC || ttl % USEC_PER_SEC != 0) {
                        log_error("Invalid TTL: %s (whole seconds, at least 1)", arg);
                        return EXIT_USAGE;
                }
                ttl /= USEC_PER_SEC;
        } else if (streq(what, "keepalive") || streq(what, "revoke")) {
                if (parse_uint64(arg, &lease) < 0 || lease == 0) {
                        log_error("Invalid lease id: %s", arg);
                        return EXIT_USAGE;
                }
        } else {
                log_error("Unknown lease command '%s': grant, keepalive or revoke. See --help.", what);
                return EXIT_USAGE;
        }

        if (context_open_clerk(ctx, &clerk) < 0)
                return EXIT_FAIL;

        if (streq(what, "grant")) {
                r = mrkv_clerk_lease_grant(clerk, ttl, &lease, &ttl);
                if (r != MRKV_OK)
                        return lease_result(clerk, r, what, arg);
                if (ctx->json)
                        r = printf("{\"lease\":%" PRIu64 ",\"ttl\":%" PRIu64 "}\n", lease, ttl);
                else
                        r = printf("%" PRIu64 "\n", lease);
                return r < 0 || flush_stdout() < 0 ? EXIT_FAIL : EXIT_OK;
        }
        if (streq(what, "revoke")) {
                r = mrkv_clerk_lease_revoke(clerk, lease);
                return r == MRKV_OK ? EXIT_OK : lease_result(clerk, r, what, arg);
        }

        /* keepalive: renew once (which also tells the ttl), then, unless --once, keep
         * renewing until interrupted. */
        r = mrkv_clerk_lease_keepalive(clerk, lease, &ttl);
        if (r != MRKV_OK)
                return lease_result(clerk, r, what, arg);
        if (once) {
                if (ctx->json)
                        r = printf("{\"lease\":%" PRIu64 ",\"ttl\":%" PRIu64 "}\n", lease, ttl);
                else
                        r = printf("%" PRIu64 "\n", ttl);
                return r < 0 || flush_stdout() < 0 ? EXIT_FAIL : EXIT_OK;
        }
        return lease_keepalive_loop(clerk, lease, ttl, arg);
}
