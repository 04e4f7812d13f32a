/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"

#include "address.h"
#include "daemon-setup.h"
#include "fault.h"
#include "log.h"
#include "macro.h"
#include "main-func.h"
#include "parse-util.h"
#include "proxy.h"

/* An hour is far beyond any test's patience; the bound keeps the µs arithmetic safe. */
#define DELAY_MAX_MSEC (3600U * 1000U)

typedef struct Config {
        Address listen, upstream;
        const char *ready_file;
        uint64_t seed;
        bool seed_set;
        FaultPolicy policy;
} Config;

static void config_done(Config *c) {
        address_done(&c->listen);
        address_done(&c->upstream);
}

static void help(void) {
        printf("Usage: %s --listen ADDRESS --connect ADDRESS [OPTIONS]\n"
               "\n"
               "A Varlink proxy that injects faults: it drops calls before they reach the server,\n"
               "drops replies after the server has acted, and delays calls, preserving their order.\n"
               "ADDRESS is unix:/path or tcp:host:port.\n"
               "\n"
               "  -h --help              Show this help and exit\n"
               "     --version           Show the version and exit\n"
               "     --listen ADDRESS    Where clients connect\n"
               "     --connect ADDRESS   The server; one connection to it per client connection\n"
               "     --seed N            Seed of the fault choices (default: random, logged)\n"
               "     --drop-request PCT  Percentage of calls dropped (default: %g)\n"
               "     --drop-reply PCT    Percentage of replies dropped (default: %g)\n"
               "     --delay-min MS      Least delay of a forwarded call (default: %u)\n"
               "     --delay-max MS      Greatest delay of a forwarded call (default: %u, or\n"
               "                         --delay-min if that is larger)\n"
               "     --ready-file PATH   Write the listening address to PATH once listening\n"
               "     --log-level LEVEL   debug, info, notice, warning, err (default: info)\n"
               "\n"
               "SIGUSR1 logs the counters; SIGTERM and SIGINT log them and exit.\n",
               program_invocation_short_name, FAULT_DEFAULT_DROP_REQUEST, FAULT_DEFAULT_DROP_REPLY,
               FAULT_DEFAULT_DELAY_MIN_MSEC, FAULT_DEFAULT_DELAY_MAX_MSEC);
}

static int parse_percent(const char *option, const char *s, double *ret) {
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0.0 || v > 100.0)
                return log_error_errno(EINVAL, "Invalid value for --%s: '%s' (a percentage from 0 to 100).",
                                       option, s);
        *ret = v;
        return 0;
}

static int parse_msec(const char *option, const char *s, uint64_t *ret) {
        unsigned v;

        if (parse_unsigned(s, 0, DELAY_MAX_MSEC, &v) < 0)
                return log_error_errno(EINVAL, "Invalid value for --%s: '%s' (milliseconds, 0 to %u).", option, s,
                                       DELAY_MAX_MSEC);
        *ret = v;
        return 0;
}

/* Returns 1 to run, 0 to exit successfully (--help), < 0 on a usage error. */
static int parse_argv(int argc, char *argv[], Config *c) {
        enum {
                ARG_VERSION = 0x100,
                ARG_LISTEN,
                ARG_CONNECT,
                ARG_SEED,
                ARG_DROP_REQUEST,
                ARG_DROP_REPLY,
                ARG_DELAY_MIN,
                ARG_DELAY_MAX,
                ARG_READY_FILE,
                ARG_LOG_LEVEL,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "connect", required_argument, NULL, ARG_CONNECT },
                { "seed", required_argument, NULL, ARG_SEED },
                { "drop-request", required_argument, NULL, ARG_DROP_REQUEST },
                { "drop-reply", required_argument, NULL, ARG_DROP_REPLY },
                { "delay-min", required_argument, NULL, ARG_DELAY_MIN },
                { "delay-max", required_argument, NULL, ARG_DELAY_MAX },
                { "ready-file", required_argument, NULL, ARG_READY_FILE },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                {},
        };
        uint64_t delay_min = FAULT_DEFAULT_DELAY_MIN_MSEC, delay_max = FAULT_DEFAULT_DELAY_MAX_MSEC;
        const char *listen = NULL, *connect = NULL;
        bool delay_max_set = false;
        int opt, r;

        c->policy = (FaultPolicy) {
                .drop_request_percent = FAULT_DEFAULT_DROP_REQUEST,
                .drop_reply_percent = FAULT_DEFAULT_DROP_REPLY,
        };

        /* Leading ':' so that we, not getopt, word the errors; '+' stops at the first non-option. */
        while ((opt = getopt_long(argc, argv, "+:h", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("mrkv-faultproxy %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_LISTEN:
                        listen = optarg;
                        break;
                case ARG_CONNECT:
                        connect = optarg;
                        break;
                case ARG_SEED:
                        r = parse_uint64(optarg, &c->seed);
                        if (r < 0)
                                return log_error_errno(r, "Invalid value for --seed: '%s' "
                                                          "(an unsigned 64-bit integer).",
                                                       optarg);
                        c->seed_set = true;
                        break;
                case ARG_DROP_REQUEST:
                        r = parse_percent("drop-request", optarg, &c->policy.drop_request_percent);
                        if (r < 0)
                                return r;
                        break;
                case ARG_DROP_REPLY:
                        r = parse_percent("drop-reply", optarg, &c->policy.drop_reply_percent);
                        if (r < 0)
                                return r;
                        break;
                case ARG_DELAY_MIN:
                        r = parse_msec("delay-min", optarg, &delay_min);
                        if (r < 0)
                                return r;
                        break;
                case ARG_DELAY_MAX:
                        r = parse_msec("delay-max", optarg, &delay_max);
                        if (r < 0)
                                return r;
                        delay_max_set = true;
                        break;
                case ARG_READY_FILE:
                        if (optarg[0] == '\0')
                                return log_error_errno(EINVAL, "--ready-file needs a path.");
                        c->ready_file = optarg;
                        break;
                case ARG_LOG_LEVEL:
                        r = log_set_max_level_from_option(optarg);
                        if (r < 0)
                                return r;
                        break;
                case ':':
                case '?':
                        return log_option_error(opt, argv);
                default:
                        assert(false);
                }
        }

        if (optind < argc)
                return log_error_errno(EINVAL, "Unexpected argument '%s'.", argv[optind]);
        if (!listen)
                return log_error_errno(EINVAL, "--listen ADDRESS is required.");
        if (!connect)
                return log_error_errno(EINVAL, "--connect ADDRESS is required.");

        /* Raising only the minimum means "at least this long", not an error against a default. */
        if (!delay_max_set)
                delay_max = MAX(delay_max, delay_min);
        if (delay_min > delay_max)
                return log_error_errno(EINVAL,
                                       "--delay-min (%" PRIu64 ") is larger than --delay-max (%" PRIu64 ").",
                                       delay_min, delay_max);
        c->policy.delay_min_usec = delay_min * USEC_PER_MSEC;
        c->policy.delay_max_usec = delay_max * USEC_PER_MSEC;

        r = address_parse(listen, &c->listen);
        if (r < 0)
                return log_error_errno(r, "Invalid --listen address '%s': %m", listen);
        r = address_parse(connect, &c->upstream);
        if (r < 0)
                return log_error_errno(r, "Invalid --connect address '%s': %m", connect);
        /* Connecting to itself, every accepted client would bring in another until the fds run out. */
        if (c->listen.sa_len == c->upstream.sa_len &&
            memcmp(&c->listen.sa, &c->upstream.sa, c->upstream.sa_len) == 0)
                return log_error_errno(EINVAL, "--listen and --connect name the same address, %s.", listen);
        return 1;
}

/* The address actually listened on: for tcp:host:0 the port is the one the kernel picked. */
static int listen_address_string(int fd, const Address *a, char **ret) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof(sa);
        char host[INET6_ADDRSTRLEN];
        char *s = NULL;
        int n;

        if (a->family == AF_UNIX) {
                s = strdup(a->string);
                if (!s)
                        return -ENOMEM;
                *ret = s;
                return 0;
        }

        if (getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                return -errno;
        if (sa.ss_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) &sa;
                inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
                n = asprintf(&s, "tcp:%s:%u", host, ntohs(in->sin_port));
        } else {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) &sa;
                inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
                n = asprintf(&s, "tcp:[%s]:%u", host, ntohs(in6->sin6_port));
        }
        if (n < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Written under a temporary name and renamed, so a poller never reads a half-written file. */
static int write_ready_file(const char *path, const char *content) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t n = strlen(content);

        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, content, n) != (ssize_t) n || write(fd, "\n", 1) != 1 ||
            fchmod(fd, 0644) < 0 || rename(tmp, path) < 0) {
                int r = negative_errno();
                (void) unlink(tmp);
                return r;
        }
        return 0;
}

static uint64_t random_seed(void) {
        uint64_t seed;
        struct timespec ts;

        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t) sizeof(seed))
                return seed;
        /* Early boot without entropy: still different from run to run. */
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 20) ^ (uint64_t) getpid();
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_info("Received %s, exiting.", strsignal((int) si->ssi_signo));
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int on_usr1(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        proxy_log_counters(userdata);
        return 0;
}

/* Removes, at exit, what the proxy leaves in the file system. */
static void unlink_socketp(const Address **a) {
        if (*a)
                address_unlink(*a);
}

static void unlink_filep(const char **path) {
        if (*path)
                (void) unlink(*path);
}

static int run(int argc, char *argv[]) {
        _cleanup_(config_done) Config c = {};
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(unlink_socketp) const Address *bound = NULL;
        _cleanup_(unlink_filep) const char *ready_file = NULL;
        _cleanup_(proxy_freep) Proxy *proxy = NULL;
        _cleanup_free_ char *listening = NULL;
        _cleanup_close_ int fd = -EBADF;
        sigset_t mask;
        int r;

        log_set_ident("mrkv-faultproxy");

        r = parse_argv(argc, argv, &c);
        if (r < 0) {
                fprintf(stderr, "Try '%s --help'.\n", program_invocation_short_name);
                return EXIT_USAGE;
        }
        if (r == 0)
                return EXIT_SUCCESS;
        if (!c.seed_set)
                c.seed = random_seed();

        /* SIGUSR1 goes to the event loop too, which takes signals only while they are blocked. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR1);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m");
        r = daemon_event_new(on_exit_signal, NULL, &event);
        if (r < 0)
                return r;

        fd = address_listen(&c.listen);
        if (fd < 0)
                return log_error_errno(fd, "Failed to listen on %s: %m", c.listen.string);
        bound = &c.listen;
        r = listen_address_string(fd, &c.listen, &listening);
        if (r < 0)
                return log_error_errno(r, "Failed to read the listening address: %m");

        r = proxy_new(event, TAKE_FD(fd), &c.upstream, &c.policy, c.seed, &proxy);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the proxy: %m");
        r = sd_event_add_signal(event, NULL, SIGUSR1, on_usr1, proxy);
        if (r < 0)
                return log_error_errno(r, "Failed to watch signals: %m");

        if (c.ready_file) {
                r = write_ready_file(c.ready_file, listening);
                if (r < 0)
                        return log_error_errno(r, "Failed to write %s: %m", c.ready_file);
                ready_file = c.ready_file;
        }

        log_info("Listening on %s, forwarding to %s: seed=%" PRIu64 " drop-request=%g%% drop-reply=%g%% "
                 "delay=%" PRIu64 "..%" PRIu64 "ms",
                 listening, c.upstream.string, c.seed, c.policy.drop_request_percent, c.policy.drop_reply_percent,
                 c.policy.delay_min_usec / USEC_PER_MSEC, c.policy.delay_max_usec / USEC_PER_MSEC);

        r = sd_event_loop(event);
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");
        proxy_log_counters(proxy);
        return r;
}

DEFINE_MAIN_FUNCTION(run);
