/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkv-kvserver: the key/value server. Parses options, builds the store and the
 * Varlink service, and runs the event loop until SIGTERM or SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "address.h"
#include "bus-util.h"
#include "bus.h"
#include "config.h"
#include "kv-service.h"
#include "listen.h"
#include "log.h"
#include "macro.h"
#include "store.h"

#define EXIT_USAGE 2
#define STATUS_INTERVAL_USEC (1 * USEC_PER_SEC)
#define SHUTDOWN_FLUSH_USEC (1 * USEC_PER_SEC)
/* json-c keeps string lengths in an int; stay well below that. */
#define SIZE_OPTION_MAX ((uint64_t) 256 * 1024 * 1024)

static char *arg_listen = NULL;
static char *arg_bus_address = NULL;
static KVLimits arg_limits = {
        .max_key_size = KV_DEFAULT_MAX_KEY_SIZE,
        .max_value_size = KV_DEFAULT_MAX_VALUE_SIZE,
        .max_message_size = 0,
        .max_connections = KV_DEFAULT_MAX_CONNECTIONS,
};

typedef struct Context {
        Store *store;
        KVService *service;
        KVBusContext bus_context;
        char *last_status;
} Context;

static void help(void) {
        printf("Usage: %s [OPTIONS...]\n\n"
               "Serves the org.mrkv.KV Varlink interface: a key/value store with versioned,\n"
               "conditional Put.\n\n"
               "  -h --help                  Show this help\n"
               "     --version               Show the version\n"
               "  -l --listen=ADDRESS        Listen on ADDRESS (unix:/path or tcp:host:port) unless\n"
               "                             systemd passes sockets; default $%s, else\n"
               "                             unix:$RUNTIME_DIRECTORY/%s (or $XDG_RUNTIME_DIR/mrkv/,\n"
               "                             /run/mrkv/)\n"
               "     --max-key-size=BYTES    Largest key (default %u; K, M suffixes are KiB, MiB)\n"
               "     --max-value-size=BYTES  Largest value (default %u)\n"
               "     --max-message-size=BYTES\n"
               "                             Largest Varlink message (default: enough for the\n"
               "                             largest key and value, at least %u)\n"
               "     --max-connections=N     Most concurrent connections (default %u)\n"
               "     --bus-address=ADDRESS   Serve org.mrkv.KeyValue1 on this D-Bus (default: $MRKV_BUS,\n"
               "                             \"system\", \"user\", \"none\" or an address; under systemd\n"
               "                             the bus of its manager; else none)\n"
               "     --log-level=LEVEL       err, warning, notice, info or debug\n",
                program_invocation_short_name, MRKV_KV_ADDRESS_ENV, MRKV_KV_SOCKET, KV_DEFAULT_MAX_KEY_SIZE,
                KV_DEFAULT_MAX_VALUE_SIZE, VARLINK_DEFAULT_MAX_MESSAGE, KV_DEFAULT_MAX_CONNECTIONS);
}

/* A byte count with an optional K, M or G (binary) suffix. */
static int parse_size(const char *s, uint64_t max, uint64_t *ret) {
        unsigned long long v;
        uint64_t factor = 1;
        char *end;

        if (!s[0] || s[0] == '-' || s[0] == '+' || s[0] == ' ')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || end == s)
                return -EINVAL;
        if (*end) {
                switch (*end) {
                case 'K':
                case 'k':
                        factor = 1024;
                        break;
                case 'M':
                        factor = 1024 * 1024;
                        break;
                case 'G':
                        factor = 1024 * 1024 * 1024;
                        break;
                default:
                        return -EINVAL;
                }
                end++;
                if (*end == 'i' && end[1] == 'B')
                        end += 2;
                else if (*end == 'B')
                        end++;
                if (*end)
                        return -EINVAL;
        }
        if (v > max / factor)
                return -ERANGE;
        *ret = v * factor;
        return 0;
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_MAX_KEY_SIZE,
                ARG_MAX_VALUE_SIZE,
                ARG_MAX_MESSAGE_SIZE,
                ARG_MAX_CONNECTIONS,
                ARG_LOG_LEVEL,
                ARG_BUS_ADDRESS,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "listen", required_argument, NULL, 'l' },
                { "max-key-size", required_argument, NULL, ARG_MAX_KEY_SIZE },
                { "max-value-size", required_argument, NULL, ARG_MAX_VALUE_SIZE },
                { "max-message-size", required_argument, NULL, ARG_MAX_MESSAGE_SIZE },
                { "max-connections", required_argument, NULL, ARG_MAX_CONNECTIONS },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                {},
        };
        uint64_t v;
        int c, r;

        while ((c = getopt_long(argc, argv, "hl:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("mrkv-kvserver %s\n", PACKAGE_VERSION);
                        return 0;
                case 'l':
                        free(arg_listen);
                        arg_listen = strdup(optarg);
                        if (!arg_listen)
                                return log_oom();
                        break;
                case ARG_MAX_KEY_SIZE:
                case ARG_MAX_VALUE_SIZE:
                case ARG_MAX_MESSAGE_SIZE:
                        r = parse_size(optarg, c == ARG_MAX_MESSAGE_SIZE ? SIZE_MAX : SIZE_OPTION_MAX, &v);
                        if (r < 0 || (v == 0 && c == ARG_MAX_MESSAGE_SIZE)) {
                                log_error("Invalid size for --%s: %s",
                                        c == ARG_MAX_KEY_SIZE             ? "max-key-size"
                                                : c == ARG_MAX_VALUE_SIZE ? "max-value-size"
                                                                          : "max-message-size",
                                        optarg);
                                return -EINVAL;
                        }
                        if (c == ARG_MAX_KEY_SIZE)
                                arg_limits.max_key_size = v;
                        else if (c == ARG_MAX_VALUE_SIZE)
                                arg_limits.max_value_size = v;
                        else
                                arg_limits.max_message_size = v;
                        break;
                case ARG_MAX_CONNECTIONS:
                        r = parse_size(optarg, UINT32_MAX, &v);
                        if (r < 0 || v == 0) {
                                log_error("Invalid number for --max-connections: %s", optarg);
                                return -EINVAL;
                        }
                        arg_limits.max_connections = (unsigned) v;
                        break;
                case ARG_BUS_ADDRESS:
                        free(arg_bus_address);
                        arg_bus_address = strdup(optarg);
                        if (!arg_bus_address)
                                return log_oom();
                        break;
                case ARG_LOG_LEVEL:
                        r = log_set_max_level_from_option(optarg);
                        if (r < 0)
                                return r;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        abort();
                }

        if (optind < argc) {
                log_error("Unexpected argument: %s", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static void update_status(Context *ctx) {
        _cleanup_free_ char *s = NULL;
        const KVStats *st = kv_service_stats(ctx->service);

        if (asprintf(&s,
                    "STATUS=%zu keys, %u connections, %" PRIu64 " gets, %" PRIu64 " puts, %" PRIu64
                    " errors",
                    store_n_keys(ctx->store), kv_service_n_connections(ctx->service), st->gets, st->puts,
                    st->errors) < 0)
                return;
        if (ctx->last_status && streq(ctx->last_status, s))
                return;
        (void) sd_notify(false, s);
        free(ctx->last_status);
        ctx->last_status = TAKE_PTR(s);
}

static int on_status_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        int r;

        update_status(userdata);
        r = sd_event_source_set_time(source, usec + STATUS_INTERVAL_USEC);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
}

/* Descriptors kept for everything but client connections: listening sockets, the
 * event loop's own, and one for accepting a connection only to close it when full. */
#define NOFILE_RESERVE 64U

/* A server with thousands of clients needs more than the default 1024 descriptors; the
 * hard limit is the administrator's choice, and we use epoll, not select(). If it is
 * still too low for the connection limit, the limit goes down: were accept() to fail
 * with EMFILE, the pending connection would wake the loop again and again. */
static void bump_nofile(KVLimits *limits) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                        log_debug_errno(errno, "Failed to raise RLIMIT_NOFILE, ignoring: %m");
                        (void) getrlimit(RLIMIT_NOFILE, &rl);
                }
        }
        if (rl.rlim_cur != RLIM_INFINITY &&
                rl.rlim_cur < (rlim_t) limits->max_connections + NOFILE_RESERVE) {
                unsigned max = rl.rlim_cur > 2 * NOFILE_RESERVE ? (unsigned) (rl.rlim_cur - NOFILE_RESERVE)
                                                                : NOFILE_RESERVE;

                log_notice("RLIMIT_NOFILE is %llu: serving at most %u connections, not %u.",
                        (unsigned long long) rl.rlim_cur, max, limits->max_connections);
                limits->max_connections = max;
        }
}

static int run(int argc, char *argv[]) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *address_string = NULL, *bus_address = NULL;
        _cleanup_free_ int *fds = NULL;
        Address address = {};
        Context ctx = {};
        unsigned n_fds = 0;
        bool bound = false;
        sigset_t mask;
        int r;

        log_set_ident(program_invocation_short_name);

        r = parse_argv(argc, argv);
        address_string = TAKE_PTR(arg_listen);
        bus_address = TAKE_PTR(arg_bus_address);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;

        if (!address_string) {
                r = address_default(MRKV_KV_ADDRESS_ENV, MRKV_KV_SOCKET, &address_string);
                if (r < 0) {
                        log_error_errno(r, "Failed to determine the default address: %m");
                        return EXIT_FAILURE;
                }
        }
        r = address_parse(address_string, &address);
        if (r < 0) {
                log_error_errno(r, "Invalid address '%s': %m", address_string);
                return EXIT_USAGE;
        }

        bump_nofile(&arg_limits);
        /* Writes to peers that went away must fail with EPIPE, not kill us. */
        (void) signal(SIGPIPE, SIG_IGN);

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
                r = log_error_errno(errno, "Failed to block signals: %m");
                goto finish;
        }

        r = sd_event_default(&event);
        if (r < 0) {
                log_error_errno(r, "Failed to allocate the event loop: %m");
                goto finish;
        }
        /* A NULL handler makes the signal end the loop. */
        r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        if (r < 0) {
                log_error_errno(r, "Failed to watch signals: %m");
                goto finish;
        }
        r = sd_event_set_watchdog(event, true);
        if (r < 0) {
                log_error_errno(r, "Failed to enable the watchdog: %m");
                goto finish;
        }

        r = store_new(&ctx.store);
        if (r < 0) {
                log_error_errno(r, "Failed to create the store: %m");
                goto finish;
        }
        r = kv_service_new(event, ctx.store, &arg_limits, &ctx.service);
        if (r < 0) {
                log_error_errno(r, "Failed to create the Varlink service: %m");
                goto finish;
        }

        bool bus_explicit;
        ctx.bus_context = (KVBusContext) { .store = ctx.store, .service = ctx.service };
        r = bus_open_for_daemon(bus_address, &bus, &bus_explicit);
        if (r >= 0 && bus) {
                r = kv_bus_setup(bus, &ctx.bus_context);
                if (r >= 0)
                        r = bus_start_daemon(bus, event, KEYVALUE_BUS_NAME, "mrkv-kvserver");
        }
        if (r < 0) {
                if (bus_explicit) {
                        log_error_errno(r, "Failed to serve on the bus: %m");
                        goto finish;
                }
                log_warning_errno(r, "Not serving on D-Bus: %m");
                bus = sd_bus_flush_close_unref(bus);
        }

        r = listen_sockets(&address, &fds, &n_fds, &bound);
        if (r < 0) {
                log_error_errno(r, "Failed to listen on %s: %m", address.string);
                goto finish;
        }
        for (unsigned i = 0; i < n_fds; i++) {
                r = kv_service_listen_fd(ctx.service, fds[i]);
                fds[i] = -EBADF;
                if (r < 0) {
                        log_error_errno(r, "Failed to serve on a listening socket: %m");
                        goto finish;
                }
        }

        if (getenv("NOTIFY_SOCKET")) {
                r = sd_event_add_time_relative(
                        event, NULL, CLOCK_MONOTONIC, STATUS_INTERVAL_USEC, 0, on_status_timer, &ctx);
                if (r < 0) {
                        log_error_errno(r, "Failed to add the status timer: %m");
                        goto finish;
                }
        }

        log_info("Listening on %s.", bound ? address.string : "sockets passed by systemd");
        (void) sd_notify(false, "READY=1");
        update_status(&ctx);

        r = sd_event_loop(event);
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");

        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down.");
        kv_service_shutdown(ctx.service, SHUTDOWN_FLUSH_USEC);

finish:
        for (unsigned i = 0; fds && i < n_fds; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        /* The bus objects point into the service and the store: drop the bus first. */
        bus = sd_bus_flush_close_unref(bus);
        kv_service_free(ctx.service);
        store_free(ctx.store);
        free(ctx.last_status);
        /* The event loop holds references to our sources; drop it before the address. */
        event = sd_event_unref(event);
        if (bound)
                address_unlink(&address);
        address_done(&address);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main(int argc, char *argv[]) {
        return run(argc, argv);
}
