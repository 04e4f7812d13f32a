/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A daemon under test: a program started on a Unix socket in a test's directory, with
 * $NOTIFY_SOCKET pointing at a datagram socket there, and ready once it sent READY=1
 * (as systemd waits for a Type=notify service). It dies with the test (see
 * test_spawn()); test_daemon_stop() ends it and says how it ended. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "harness.h"

typedef struct TestDaemon {
        const char *binary; /* as given to test_daemon_start() */
        pid_t pid;
        char socket_path[sizeof(((struct sockaddr_un *) NULL)->sun_path)];
        char address[sizeof(((struct sockaddr_un *) NULL)->sun_path) + 5]; /* "unix:" socket_path */
        char notify_path[sizeof(((struct sockaddr_un *) NULL)->sun_path)];
        int notify_fd;
        char last_status[256]; /* the last STATUS= it sent */
} TestDaemon;

/* Every field may stay zero. */
typedef struct TestDaemonOptions {
        const char *const *args; /* after "--listen ADDRESS"; NULL-terminated */
        const char *const *env;  /* as TestSpawn.env */
        bool no_listen;          /* no "--listen ADDRESS": it finds its address itself */
        int listen_fd;           /* as TestSpawn.listen_fd: socket activation */
        /* Keep reading its notifications after READY=1, for test_daemon_wait_notify().
         * The test must then read them now and then (test_daemon_drain_notify()): the
         * kernel queues only a few datagrams (net.unix.max_dgram_qlen, 10 by default),
         * and then the daemon's sd_notify() blocks. Otherwise the socket is closed once
         * the daemon is ready, and its later notifications go nowhere. */
        bool watch_notify;
} TestDaemonOptions;

/* Starts binary with "--listen unix:DIR/SOCKET_NAME" and the options (o may be NULL),
 * its notifications going to DIR/SOCKET_NAME.notify, and waits up to TEST_TIMEOUT_USEC
 * for its READY=1; fails the test if it exits or times out first. */
void test_daemon_start(TestDaemon *d, const char *binary, const char *dir, const char *socket_name,
                       const TestDaemonOptions *o);

/* Reads its notifications (it must have been started with watch_notify) until one has
 * a line containing want (e.g. a STATUS= text), up to timeout_usec; remembers the last
 * STATUS=. Returns whether it came; fails the test if the daemon exited. */
bool test_daemon_wait_notify(TestDaemon *d, const char *want, uint64_t timeout_usec);

/* Reads every queued notification without waiting. A daemon's sd_notify() blocks once
 * the datagram queue is full, so long tests call this now and then. */
void test_daemon_drain_notify(TestDaemon *d);

/* SIGTERM (SIGKILL after 10 s), reaps it, closes the notification socket. Returns the
 * wait status: 0 when it exited with 0. socket_path and address stay valid. No-op
 * returning 0 if it is not running. */
int test_daemon_stop(TestDaemon *d);
