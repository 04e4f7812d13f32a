/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkv-varlink-cert: the Varlink certification suite (org.varlink.certification) on
 * mrkv's Varlink server and client, to run against the reference implementation's
 * varlink-go-certification, whose options it takes. */
#include <getopt.h>

#include <systemd/sd-event.h>

#include "address.h"
#include "cert-client.h"
#include "cert-service.h"
#include "config.h"
#include "daemon-setup.h"
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
                case '?':
                        return log_option_error(opt, argv);
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

static int listen_fd(int fd, void *userdata) {
        return cert_service_listen_fd(userdata, fd);
}

static void cert_service_freep(CertService **s) {
        cert_service_free(*s);
}

static int run_service(void) {
        _cleanup_(address_done) Address address = {};
        _cleanup_(daemon_freep) Daemon *d = NULL;
        _cleanup_(cert_service_freep) CertService *service = NULL; /* before the daemon's event loop */
        int r;

        r = address_parse(arg_address, &address);
        if (r < 0)
                return log_error_errno(r, "Invalid address '%s': %m", arg_address);

        r = daemon_new(&(const DaemonOptions) { .ident = "mrkv-varlink-cert", .address = &address }, &d);
        if (r < 0)
                return r;
        r = cert_service_new(d->event, &service);
        if (r < 0)
                return log_error_errno(r, "Failed to create the service: %m");
        r = daemon_listen(d, listen_fd, service);
        if (r < 0)
                return r;

        log_info("Listening on %s.", address.string);
        r = sd_event_loop(d->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
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
