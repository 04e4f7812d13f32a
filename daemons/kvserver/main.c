/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkv-kvserver: the key/value server. Parses options, builds the server, and runs the
 * event loop until SIGTERM or SIGINT. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "address.h"
#include "config.h"
#include "daemon-setup.h"
#include "fs-util.h"
#include "log.h"
#include "macro.h"
#include "main-func.h"
#include "nofile.h"
#include "parse-util.h"
#include "server.h"

/* json-c keeps string lengths in an int; stay well below that. */
#define SIZE_OPTION_MAX ((uint64_t) 256 * 1024 * 1024)

static Address arg_address = {};
static const char *arg_bus_address = NULL;
static char *arg_state_directory = NULL;
static KVStateOptions arg_state = {
        .sync_mode = WAL_SYNC_ALWAYS,
        .snapshot_log_size = KV_STATE_DEFAULT_SNAPSHOT_LOG_SIZE,
        .quota = { .keys = QUOTA_DEFAULT_KEYS, .bytes = QUOTA_DEFAULT_BYTES },
        .max_leases = KV_STATE_DEFAULT_MAX_LEASES,
        .max_lease_keys = KV_STATE_DEFAULT_MAX_LEASE_KEYS,
};
static enum {
        ACTION_SERVE,
        ACTION_CHECK,
        ACTION_REPAIR,
} arg_action = ACTION_SERVE;
static KVLimits arg_limits = {
        .max_key_size = KV_DEFAULT_MAX_KEY_SIZE,
        .max_value_size = KV_DEFAULT_MAX_VALUE_SIZE,
        .max_message_size = 0,
        .max_watchers = KV_DEFAULT_MAX_WATCHERS,
        .max_watch_queue = KV_DEFAULT_MAX_WATCH_QUEUE,
        .server = VARLINK_SERVER_LIMITS_DEFAULT,
};

STATIC_DESTRUCTOR_REGISTER(arg_address, address_done);
STATIC_DESTRUCTOR_REGISTER(arg_state_directory, freep);

static void help(void) {
        printf("Usage: %s [OPTIONS...]\n\n"
               "Serves the org.mrkv.KV Varlink interface: a key/value store with versioned,\n"
               "conditional Put.\n\n"
               "  -h --help                  Show this help\n"
               "     --version               Show the version\n"
               "  -l --listen=ADDRESS        Listen on ADDRESS (unix:/path; no TCP) unless\n"
               "                             systemd passes sockets; default $%s, else\n"
               "                             unix:$RUNTIME_DIRECTORY/%s (or $XDG_RUNTIME_DIR/mrkv/,\n"
               "                             /run/mrkv/)\n"
               "     --max-key-size=BYTES    Largest key (default %u; K, M suffixes are KiB, MiB)\n"
               "     --max-value-size=BYTES  Largest value (default %u)\n"
               "     --max-message-size=BYTES\n"
               "                             Largest Varlink message (default: enough for the\n"
               "                             largest key and value, at least %u)\n"
               "     --max-connections=N     Most concurrent connections (default %u, or as many\n"
               "                             as RLIMIT_NOFILE, raised to its hard limit, leaves\n"
               "                             room for beside %u descriptors)\n"
               "     --max-input=BYTES       Most bytes of incomplete messages held for all\n"
               "                             connections together (default %zuM)\n"
               "     --idle-timeout=SEC      Close a connection with no call in flight after SEC\n"
               "                             seconds (default %llu; \"infinity\": never)\n"
               "     --message-timeout=SEC   Close a connection that takes longer than SEC seconds\n"
               "                             to send a message (default %llu)\n"
               "  -D --state-directory=DIR   Keep the keys in DIR (default $STATE_DIRECTORY, else\n"
               "                             $XDG_STATE_HOME/mrkv/kv, else ~/.local/state/mrkv/kv;\n"
               "                             /var/lib/mrkv/kv for root)\n"
               "     --sync=MODE             always: a Put is answered once its log record is on\n"
               "                             stable storage (default); interval:MS: answered at once,\n"
               "                             synced every MS milliseconds; none: never synced\n"
               "     --snapshot-log-size=BYTES\n"
               "                             Write a snapshot when the log holds this much (default\n"
               "                             %uM; 0: only when asked over D-Bus)\n"
               "     --quota-keys=N          Most keys a uid may hold, charged to the uid that wrote\n"
               "                             each last (default %u; 0: no bound; root is exempt)\n"
               "     --quota-bytes=BYTES     Most bytes of keys and values a uid may hold (default\n"
               "                             %lluM; 0: no bound)\n"
               "     --max-watchers=N        Most Watch calls open at once (default %u; 0: no bound)\n"
               "     --max-watch-queue=BYTES Most bytes of changes queued for a watcher that does\n"
               "                             not read them before it gets WatchOverflow (default %uM)\n"
               "     --max-leases=N          Most leases at once (default %u; 0: no bound)\n"
               "     --max-lease-keys=N      Most keys attached to one lease (default %u; 0: no bound)\n"
               "     --check                 Report damage in the state directory and exit: 0 if\n"
               "                             the server can start from it, 1 if not\n"
               "     --repair                Cut the log at its first damage, keeping the cut bytes\n"
               "                             beside it, and exit\n"
               "     --bus-address=ADDRESS   Serve org.mrkv.KeyValue1 on this D-Bus (default: $MRKV_BUS,\n"
               "                             \"system\", \"user\", \"none\" or an address; under systemd\n"
               "                             the bus of its manager; else none)\n"
               "     --log-level=LEVEL       err, warning, notice, info or debug\n",
                program_invocation_short_name, MRKV_KV_ADDRESS_ENV, MRKV_KV_SOCKET, KV_DEFAULT_MAX_KEY_SIZE,
                KV_DEFAULT_MAX_VALUE_SIZE, VARLINK_DEFAULT_MAX_MESSAGE, VARLINK_DEFAULT_MAX_CONNECTIONS,
                NOFILE_RESERVE, VARLINK_DEFAULT_MAX_INPUT >> 20, (unsigned long long) (VARLINK_DEFAULT_IDLE_TIMEOUT / USEC_PER_SEC),
                (unsigned long long) (VARLINK_DEFAULT_MESSAGE_TIMEOUT / USEC_PER_SEC),
                KV_STATE_DEFAULT_SNAPSHOT_LOG_SIZE >> 20, QUOTA_DEFAULT_KEYS, QUOTA_DEFAULT_BYTES >> 20,
                KV_DEFAULT_MAX_WATCHERS, KV_DEFAULT_MAX_WATCH_QUEUE >> 20, KV_STATE_DEFAULT_MAX_LEASES,
                KV_STATE_DEFAULT_MAX_LEASE_KEYS);
}

/* $STATE_DIRECTORY (the first of its paths), else $XDG_STATE_HOME/mrkv/kv, else
 * ~/.local/state/mrkv/kv; for root outside a unit, /var/lib/mrkv/kv. */
static int state_directory_default(char **ret) {
        const char *e, *home;
        char *p = NULL;

        e = getenv("STATE_DIRECTORY");
        if (e && *e) {
                p = strndup(e, strcspn(e, ":"));
                if (!p)
                        return -ENOMEM;
                *ret = p;
                return 0;
        }
        e = getenv("XDG_STATE_HOME");
        if (e && *e == '/')
                asprintf_or_null(&p, "%s/mrkv/kv", e);
        else if (geteuid() == 0)
                p = strdup("/var/lib/mrkv/kv");
        else {
                home = getenv("HOME");
                if (!home || *home != '/')
                        return -ENXIO;
                asprintf_or_null(&p, "%s/.local/state/mrkv/kv", home);
        }
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_MAX_KEY_SIZE,
                ARG_MAX_VALUE_SIZE,
                ARG_MAX_MESSAGE_SIZE,
                ARG_LOG_LEVEL,
                ARG_BUS_ADDRESS,
                ARG_SYNC,
                ARG_SNAPSHOT_LOG_SIZE,
                ARG_QUOTA_KEYS,
                ARG_QUOTA_BYTES,
                ARG_MAX_WATCHERS,
                ARG_MAX_WATCH_QUEUE,
                ARG_MAX_LEASES,
                ARG_MAX_LEASE_KEYS,
                ARG_CHECK,
                ARG_REPAIR,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "listen", required_argument, NULL, 'l' },
                { "max-key-size", required_argument, NULL, ARG_MAX_KEY_SIZE },
                { "max-value-size", required_argument, NULL, ARG_MAX_VALUE_SIZE },
                { "max-message-size", required_argument, NULL, ARG_MAX_MESSAGE_SIZE },
                DAEMON_LIMIT_OPTIONS,
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "state-directory", required_argument, NULL, 'D' },
                { "sync", required_argument, NULL, ARG_SYNC },
                { "snapshot-log-size", required_argument, NULL, ARG_SNAPSHOT_LOG_SIZE },
                { "quota-keys", required_argument, NULL, ARG_QUOTA_KEYS },
                { "quota-bytes", required_argument, NULL, ARG_QUOTA_BYTES },
                { "max-watchers", required_argument, NULL, ARG_MAX_WATCHERS },
                { "max-watch-queue", required_argument, NULL, ARG_MAX_WATCH_QUEUE },
                { "max-leases", required_argument, NULL, ARG_MAX_LEASES },
                { "max-lease-keys", required_argument, NULL, ARG_MAX_LEASE_KEYS },
                { "check", no_argument, NULL, ARG_CHECK },
                { "repair", no_argument, NULL, ARG_REPAIR },
                {},
        };
        _cleanup_free_ char *default_address = NULL;
        const char *address = NULL;
        uint64_t v;
        int c, r;

        while ((c = getopt_long(argc, argv, "hl:D:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("mrkv-kvserver %s\n", PACKAGE_VERSION);
                        return 0;
                case 'l':
                        address = optarg;
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
                case ARG_BUS_ADDRESS:
                        arg_bus_address = optarg;
                        break;
                case 'D':
                        free(arg_state_directory);
                        arg_state_directory = strdup(optarg);
                        if (!arg_state_directory)
                                return log_oom();
                        break;
                case ARG_SYNC:
                        r = wal_sync_mode_from_string(optarg, &arg_state.sync_mode, &arg_state.sync_interval_usec);
                        if (r < 0) {
                                log_error("Invalid --sync mode: %s (always, interval:MS or none)", optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_SNAPSHOT_LOG_SIZE:
                        r = parse_size(optarg, UINT64_MAX, &arg_state.snapshot_log_size);
                        if (r < 0) {
                                log_error("Invalid size for --snapshot-log-size: %s", optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_QUOTA_KEYS:
                case ARG_QUOTA_BYTES:
                        r = parse_size(optarg, UINT64_MAX,
                                       c == ARG_QUOTA_KEYS ? &arg_state.quota.keys : &arg_state.quota.bytes);
                        if (r < 0) {
                                log_error("Invalid value for --%s: %s",
                                          c == ARG_QUOTA_KEYS ? "quota-keys" : "quota-bytes", optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_MAX_WATCHERS:
                case ARG_MAX_WATCH_QUEUE:
                        r = parse_size(optarg, SIZE_OPTION_MAX, &v);
                        if (r < 0) {
                                log_error("Invalid value for --%s: %s",
                                          c == ARG_MAX_WATCHERS ? "max-watchers" : "max-watch-queue", optarg);
                                return -EINVAL;
                        }
                        if (c == ARG_MAX_WATCHERS)
                                arg_limits.max_watchers = v;
                        else
                                arg_limits.max_watch_queue = v;
                        break;
                case ARG_MAX_LEASES:
                case ARG_MAX_LEASE_KEYS:
                        r = parse_size(optarg, UINT64_MAX,
                                       c == ARG_MAX_LEASES ? &arg_state.max_leases : &arg_state.max_lease_keys);
                        if (r < 0) {
                                log_error("Invalid value for --%s: %s",
                                          c == ARG_MAX_LEASES ? "max-leases" : "max-lease-keys", optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_CHECK:
                        arg_action = ACTION_CHECK;
                        break;
                case ARG_REPAIR:
                        arg_action = ACTION_REPAIR;
                        break;
                case ARG_LOG_LEVEL:
                        r = log_set_max_level_from_option(optarg);
                        if (r < 0)
                                return r;
                        break;
                default:
                        if (daemon_parse_limit_option(c, optarg, &arg_limits.server) <= 0)
                                return -EINVAL;
                }

        if (optind < argc) {
                log_error("Unexpected argument: %s", argv[optind]);
                return -EINVAL;
        }

        if (!arg_state_directory) {
                r = state_directory_default(&arg_state_directory);
                if (r < 0)
                        return log_error_errno(r, "Failed to determine the state directory: %m");
        }
        arg_state.directory = arg_state_directory;
        arg_limits.max_leases = arg_state.max_leases;
        arg_limits.max_lease_keys = arg_state.max_lease_keys;

        if (!address) {
                r = address_default(MRKV_KV_ADDRESS_ENV, MRKV_KV_SOCKET, &default_address);
                if (r < 0)
                        return log_error_errno(r, "Failed to determine the default address: %m");
                address = default_address;
        }
        r = address_parse(address, &arg_address);
        if (r < 0)
                return log_error_errno(r, "Invalid address '%s': %m", address);
        return 1;
}

static int run(int argc, char *argv[]) {
        _cleanup_(daemon_freep) Daemon *d = NULL;
        _cleanup_(server_freep) Server *s = NULL;
        int r;

        log_set_ident(program_invocation_short_name);

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;

        if (arg_action != ACTION_SERVE) {
                r = kv_state_check(arg_state.directory, arg_action == ACTION_REPAIR);
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }

        /* The state directory itself is created 0700 by the state layer. */
        r = mkdir_parents(arg_state.directory);
        if (r < 0)
                return log_error_errno(r, "Failed to create the parents of %s: %m", arg_state.directory);

        r = daemon_new(&(const DaemonOptions) {
                               .ident = "mrkv-kvserver",
                               .address = &arg_address,
                               .limits = &arg_limits.server,
                               .bus_address = arg_bus_address,
                               .bus_name = KEYVALUE_BUS_NAME,
                       },
                       &d);
        if (r < 0)
                return r;
        arg_limits.server = d->limits;

        r = server_new(d->event, &arg_limits, &arg_state, &s);
        if (r < 0)
                return r;
        r = daemon_open_bus(d, server_add_bus_objects, s, &s->bus);
        if (r < 0)
                return r;
        r = daemon_listen(d, server_listen_fd, s);
        if (r < 0)
                return r;

        log_info("Listening on %s.", d->bound ? arg_address.string : "sockets passed by systemd");
        (void) sd_notify(false, "READY=1");
        server_update_status(s);

        r = sd_event_loop(d->event);
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");

        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down.");
        server_shutdown(s);
        return r;
}

DEFINE_MAIN_FUNCTION(run);
