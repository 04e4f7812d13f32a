/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkv-varlink-cert: the Varlink certification suite (org.varlink.certification) on
 * mrkv's Varlink server and client, to run against the reference implementation's
 * varlink-go-certification, whose options it takes. */
#include <getopt.h>
#include <signal.h>

#include <systemd/sd-event.h>

#include "address.h"
#include "cert-client.h"
#include "cert-service.h"
#include "config.h"
#include "log.h"
#include "macro.h"

#define EXIT_USAGE 2
/* Per call; far beyond what a call takes, even under sanitizers. */
#define CALL_TIMEOUT_USEC (30U * USEC_PER_SEC)

static const char *arg_address = NULL;
static bool arg_client = false;

static void help(void) {
        printf("Usage: %s --varlink ADDRESS [--client]\n"
               "\n"
               "The Varlink certification suite (interface org.varlink.certification) on mrkv's\n"
               "Varlink server and client. ADDRESS is unix:/path or tcp:host:port.\n"
               "\n"
               "  -h --help             Show this help and exit\n"
               "     --version          Show the version and exit\n"
               "     --varlink ADDRESS  Where to listen, or with --client, the service to certify\n"
               "     --client           Run the client side against the service at ADDRESS; exit\n"
               "                        with 0 if it passed, 1 if not\n"
               "     --log-level LEVEL  debug, info, notice, warning, err (default: info)\n"
               "\n"
               "The service runs until SIGTERM or SIGINT and logs the outcome of every client.\n",
               program_invocation_short_name);
}

/* Returns 1 to run, 0 to exit successfully (--help), < 0 on a usage error. */
static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_VARLINK,
                ARG_CLIENT,
                ARG_LOG_LEVEL,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "varlink", required_argument, NULL, ARG_VARLINK },
                { "client", no_argument, NULL, ARG_CLIENT },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                {},
        };
        int opt, r;

        while ((opt = getopt_long(argc, argv, "+:h", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("mrkv-varlink-cert %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_VARLINK:
                        arg_address = optarg;
                        break;
                case ARG_CLIENT:
                        arg_client = true;
                        break;
                case ARG_LOG_LEVEL:
                        r = log_set_max_level_from_option(optarg);
                        if (r < 0)
                                return r;
                        break;
                case ':':
                        return log_error_errno(EINVAL, "Option '%s' needs an argument.", argv[optind - 1]);
                case '?':
                        if (optopt != 0)
                                return log_error_errno(EINVAL, "Unknown option '-%c'.", optopt);
                        return log_error_errno(EINVAL, "Unknown option '%s'.", argv[optind - 1]);
                default:
                        assert(false);
                }
        }

        if (optind < argc)
                return log_error_errno(EINVAL, "Unexpected argument '%s'.", argv[optind]);
        if (!arg_address)
                return log_error_errno(EINVAL, "--varlink ADDRESS is required.");
        return 1;
}

static int run_service(void) {
        _cleanup_(address_done) Address address = {};
        sd_event *event = NULL;
        CertService *service = NULL;
        sigset_t mask;
        bool bound = false;
        int fd = -EBADF, r;

        r = address_parse(arg_address, &address);
        if (r < 0)
                return log_error_errno(r, "Invalid address '%s': %m", arg_address);

        (void) signal(SIGPIPE, SIG_IGN);
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m");

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

        r = cert_service_new(event, &service);
        if (r < 0) {
                log_error_errno(r, "Failed to create the service: %m");
                goto finish;
        }
        fd = address_listen(&address);
        if (fd < 0) {
                r = log_error_errno(fd, "Failed to listen on %s: %m", address.string);
                goto finish;
        }
        bound = true;
        r = cert_service_listen_fd(service, TAKE_FD(fd));
        if (r < 0) {
                log_error_errno(r, "Failed to serve on %s: %m", address.string);
                goto finish;
        }

        log_info("Listening on %s.", address.string);
        r = sd_event_loop(event);
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");

finish:
        cert_service_free(service);
        sd_event_unref(event);
        if (bound)
                address_unlink(&address);
        return r;
}

int main(int argc, char *argv[]) {
        int r;

        log_set_ident("mrkv-varlink-cert");
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;

        if (arg_client) {
                /* Steps and failures (on stderr) in the order they happen. */
                setvbuf(stdout, NULL, _IOLBF, 0);
                r = cert_client_run(arg_address, CALL_TIMEOUT_USEC);
                if (r < 0) {
                        printf("FAIL: %s did not pass the certification.\n", arg_address);
                        return EXIT_FAILURE;
                }
                printf("PASS: %s passed the certification.\n", arg_address);
                return EXIT_SUCCESS;
        }

        return run_service() < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
