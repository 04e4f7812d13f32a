/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <limits.h>
#include <signal.h>

#include "bus-util.h"
#include "daemon-setup.h"
#include "listen.h"
#include "log.h"
#include "nofile.h"
#include "parse-util.h"

int daemon_parse_address(const char *arg, const char *env_var, const char *sockname, Address *ret) {
        _cleanup_free_ char *default_address = NULL;
        int r;

        assert(ret);

        if (!arg) {
                r = address_default(env_var, sockname, &default_address);
                if (r < 0)
                        return log_error_errno(r, "Failed to determine the default address: %m");
                arg = default_address;
        }
        r = address_parse(arg, ret);
        if (r < 0)
                return log_error_errno(r, "Invalid address '%s': %m (expected unix:/path or tcp:host:port)",
                                       arg);
        return 0;
}

int daemon_parse_limit_option(int option, const char *arg, VarlinkServerLimits *limits) {
        uint64_t v;
        int r;

        assert(limits);

        switch (option) {
        case ARG_DAEMON_MAX_CONNECTIONS:
                r = parse_unsigned(arg, 1, UINT_MAX, &limits->max_connections);
                if (r < 0)
                        return log_error_errno(EINVAL, "Invalid --max-connections '%s': expected a number > 0.", arg);
                return 1;
        case ARG_DAEMON_MAX_INPUT:
                r = parse_size(arg, SIZE_MAX, &v);
                if (r < 0 || v == 0)
                        return log_error_errno(EINVAL, "Invalid --max-input '%s': expected bytes > 0 (K, M, G).", arg);
                limits->max_input = (size_t) v;
                return 1;
        case ARG_DAEMON_IDLE_TIMEOUT:
        case ARG_DAEMON_MESSAGE_TIMEOUT:
                r = parse_timeout(arg, option == ARG_DAEMON_IDLE_TIMEOUT ? &limits->idle_timeout
                                                                         : &limits->message_timeout);
                if (r < 0)
                        return log_error_errno(EINVAL, "Invalid --%s '%s': expected seconds > 0 or \"infinity\".",
                                               option == ARG_DAEMON_IDLE_TIMEOUT ? "idle-timeout" : "message-timeout",
                                               arg);
                return 1;
        default:
                return 0;
        }
}

int daemon_event_new(sd_event_signal_handler_t on_exit, void *userdata, sd_event **ret) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        sigset_t mask;
        int r;

        /* sd-event takes signals through a signalfd, which needs them blocked. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m");
        (void) signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        /* A NULL handler makes the signal end the loop. */
        r = sd_event_add_signal(event, NULL, SIGTERM, on_exit, userdata);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, on_exit, userdata);
        if (r < 0)
                return log_error_errno(r, "Failed to watch signals: %m");
        r = sd_event_set_watchdog(event, true);
        if (r < 0)
                return log_error_errno(r, "Failed to enable the watchdog: %m");

        *ret = TAKE_PTR(event);
        return 0;
}

int daemon_new(const DaemonOptions *options, Daemon **ret) {
        _cleanup_(daemon_freep) Daemon *d = NULL;
        int r;

        assert(options);
        assert(options->ident);
        assert(options->address);
        assert(ret);

        d = calloc(1, sizeof(Daemon));
        if (!d)
                return log_oom();
        d->options = *options;

        d->limits = options->limits ? *options->limits : VARLINK_SERVER_LIMITS_DEFAULT;
        d->limits.max_connections = nofile_fit_connections(d->limits.max_connections);

        r = daemon_event_new(NULL, NULL, &d->event);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(d);
        return 0;
}

Daemon *daemon_free(Daemon *d) {
        if (!d)
                return NULL;
        sd_event_unref(d->event);
        if (d->bound)
                address_unlink(d->options.address);
        free(d);
        return NULL;
}

int daemon_open_bus(Daemon *d, DaemonBusSetup setup, void *userdata, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        bool explicit;
        int r;

        assert(d);
        assert(d->options.bus_name);
        assert(setup);
        assert(ret);

        r = bus_open_for_daemon(d->options.bus_address, &bus, &explicit);
        if (r >= 0 && bus) {
                r = setup(bus, userdata);
                if (r >= 0)
                        r = bus_start_daemon(bus, d->event, d->options.bus_name, d->options.ident);
        }
        if (r < 0) {
                if (explicit)
                        return log_error_errno(r, "Failed to serve on the bus as %s: %m",
                                               d->options.bus_name);
                log_warning_errno(r, "Not serving on D-Bus as %s: %m", d->options.bus_name);
                bus = sd_bus_flush_close_unref(bus);
        }

        *ret = TAKE_PTR(bus);
        return 0;
}

/* Hands fds[0..n) to listen_fd; the ones not handed over when it fails are closed. */
static int hand_over(int *fds, size_t n, DaemonListenFd listen_fd, void *userdata) {
        int r;

        for (size_t i = 0; i < n; i++) {
                r = listen_fd(TAKE_FD(fds[i]), userdata);
                if (r < 0) {
                        for (size_t j = i + 1; j < n; j++)
                                (void) close(TAKE_FD(fds[j]));
                        return log_error_errno(r, "Failed to serve on a listening socket: %m");
                }
        }
        return 0;
}

int daemon_listen(Daemon *d, DaemonListenFd listen_fd, void *userdata) {
        _cleanup_free_ int *fds = NULL;
        int n, fd, bad_fd = -EBADF;

        assert(d);
        assert(listen_fd);

        n = listen_fds_passed(&fds, &bad_fd);
        if (n == -ENOTSOCK)
                return log_error_errno(EINVAL, "Passed file descriptor %d is not a listening stream socket.",
                                       bad_fd);
        if (n == -EPFNOSUPPORT)
                return log_error_errno(EPFNOSUPPORT, "Passed file descriptor %d is not a Unix socket: "
                                       DAEMON_UNIX_ONLY_REASON, bad_fd);
        if (n < 0)
                return log_error_errno(n, "Failed to read sockets passed by the service manager: %m");
        if (n > 0) {
                log_debug("Using %d socket(s) passed by the service manager.", n);
                return hand_over(fds, n, listen_fd, userdata);
        }

        if (d->options.address->family != AF_UNIX)
                return log_error_errno(EPFNOSUPPORT, "Refusing to listen on %s: " DAEMON_UNIX_ONLY_REASON,
                                       d->options.address->string);
        fd = address_listen(d->options.address);
        if (fd < 0)
                return log_error_errno(fd, "Failed to listen on %s: %m", d->options.address->string);
        d->bound = true;
        return hand_over(&fd, 1, listen_fd, userdata);
}
