/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "address.h"
#include "macro.h"
#include "varlink-server.h"

/* What every daemon sets up around its service: the event loop with its signals and the
 * watchdog, the descriptor limit and the bounds of its Varlink server, the optional bus,
 * and the listening sockets. These functions log their failures; callers just return the
 * error. */

typedef struct DaemonOptions {
        const char *ident;        /* the program, as org.freedesktop.LogControl1 names it */
        const Address *address;   /* where to listen unless the service manager passes sockets */
        /* The Varlink server's bounds, NULL for VARLINK_SERVER_LIMITS_DEFAULT; max_connections
         * is fitted to RLIMIT_NOFILE (lowered to what it leaves room for), 0 for as many as
         * it leaves room for. */
        const VarlinkServerLimits *limits;
        const char *bus_address;  /* --bus-address, or NULL: see bus_open_for_daemon() */
        const char *bus_name;     /* requested on the bus by daemon_open_bus() */
} DaemonOptions;

typedef struct Daemon {
        DaemonOptions options;    /* borrowed: the strings and the address outlive the daemon */
        sd_event *event;
        VarlinkServerLimits limits; /* options.limits, fitted to RLIMIT_NOFILE: for the server */
        bool bound;               /* listening on options.address: the socket file goes at exit */
} Daemon;

/* Adds the service's objects to the bus. */
typedef int (*DaemonBusSetup)(sd_bus *bus, void *userdata);
/* Serves on a listening socket; takes the fd, also when it fails. */
typedef int (*DaemonListenFd)(int fd, void *userdata);

/* The address a program of the service listens on or connects to: arg (its --listen or
 * --connect), else address_default(env_var, sockname). */
int daemon_parse_address(const char *arg, const char *env_var, const char *sockname, Address *ret);

/* The options every daemon takes for the bounds of its Varlink server, for getopt_long()
 * (DAEMON_LIMIT_OPTIONS among its options), and what getopt_long() returns for them. */
enum {
        ARG_DAEMON_MAX_CONNECTIONS = 0x1000,
        ARG_DAEMON_MAX_INPUT,
        ARG_DAEMON_IDLE_TIMEOUT,
        ARG_DAEMON_MESSAGE_TIMEOUT,
};
#define DAEMON_LIMIT_OPTIONS                                                                    \
        { "max-connections", required_argument, NULL, ARG_DAEMON_MAX_CONNECTIONS },             \
        { "max-input", required_argument, NULL, ARG_DAEMON_MAX_INPUT },                         \
        { "idle-timeout", required_argument, NULL, ARG_DAEMON_IDLE_TIMEOUT },                   \
        { "message-timeout", required_argument, NULL, ARG_DAEMON_MESSAGE_TIMEOUT }

/* Stores the value of option (what getopt_long() returned) in *limits if it is one of
 * DAEMON_LIMIT_OPTIONS: 1, or -EINVAL after logging a bad value; 0 for other options. */
int daemon_parse_limit_option(int option, const char *arg, VarlinkServerLimits *limits);

/* The event loop of a program that SIGTERM and SIGINT stop: they are blocked and handled
 * by on_exit, or end the loop when it is NULL. SIGPIPE is ignored (a write to a peer that
 * went away fails with EPIPE), and the service manager's watchdog is fed while the loop
 * runs. */
int daemon_event_new(sd_event_signal_handler_t on_exit, void *userdata, sd_event **ret);

/* The event loop (daemon_event_new()), after raising RLIMIT_NOFILE to its hard limit and
 * fitting the connection limit to it. */
int daemon_new(const DaemonOptions *options, Daemon **ret);
/* Removes the socket file it bound; free the service before, the event loop goes here. */
Daemon *daemon_free(Daemon *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(Daemon *, daemon_free);

/* Serves on the bus (bus_open_for_daemon()): setup adds the service's objects, then
 * org.freedesktop.LogControl1 is added and the name requested. *ret is NULL when the
 * daemon serves on no bus: none was asked for, or the default one failed (a warning).
 * Only a failure of a bus that was asked for is an error. */
int daemon_open_bus(Daemon *d, DaemonBusSetup setup, void *userdata, sd_bus **ret);

/* Why the daemons serve Unix sockets only: every request has an identity (SO_PEERCRED),
 * and a TCP connection carries none. Other hosts reach a daemon through an SSH forward of
 * its Unix socket, where the identity is that of the SSH login. */
#define DAEMON_UNIX_ONLY_REASON                                                                   \
        "the daemons serve Unix sockets only, since TCP carries no authentication "               \
        "(forward the Unix socket over SSH instead)"

/* Hands the listening sockets to the service: those the service manager passed, else one
 * bound to options.address; -EPFNOSUPPORT (logged) for anything but Unix sockets. When
 * listen_fd fails, the sockets not handed over are closed. */
int daemon_listen(Daemon *d, DaemonListenFd listen_fd, void *userdata);
