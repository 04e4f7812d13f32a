/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test-daemon.h"

#define MAX_ARGS 32
#define MAX_ENV 16

/* A path that fits into sun_path, or the test fails. */
static void format_path(char *buf, size_t size, const char *dir, const char *name, const char *suffix) {
        int n = snprintf(buf, size, "%s/%s%s", dir, name, suffix);

        ck_assert_msg(n > 0 && (size_t) n < size, "socket path %s/%s%s is too long", dir, name, suffix);
}

static void close_notify(TestDaemon *d) {
        if (d->notify_fd >= 0) {
                close(d->notify_fd);
                (void) unlink(d->notify_path);
        }
        d->notify_fd = -1;
}

void test_daemon_start(TestDaemon *d, const char *binary, const char *dir, const char *socket_name,
                       const TestDaemonOptions *o) {
        static const TestDaemonOptions none = {};
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *argv[MAX_ARGS], *env[MAX_ENV];
        char notify_env[sizeof(d->notify_path) + 16];
        size_t n = 0, m = 0;

        if (!o)
                o = &none;
        *d = (TestDaemon) { .binary = binary, .notify_fd = -1 };
        format_path(d->socket_path, sizeof(d->socket_path), dir, socket_name, "");
        format_path(d->notify_path, sizeof(d->notify_path), dir, socket_name, ".notify");
        snprintf(d->address, sizeof(d->address), "unix:%s", d->socket_path);

        d->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(d->notify_fd, 0);
        (void) unlink(d->notify_path);
        strcpy(sa.sun_path, d->notify_path);
        ck_assert_msg(bind(d->notify_fd, (struct sockaddr *) &sa, sizeof(sa)) == 0, "bind %s: %s", d->notify_path,
                      strerror(errno));

        argv[n++] = binary;
        if (!o->no_listen) {
                argv[n++] = "--listen";
                argv[n++] = d->address;
        }
        for (const char *const *a = o->args; a && *a; a++) {
                ck_assert_uint_lt(n, MAX_ARGS - 1);
                argv[n++] = *a;
        }
        argv[n] = NULL;

        snprintf(notify_env, sizeof(notify_env), "NOTIFY_SOCKET=%s", d->notify_path);
        env[m++] = notify_env;
        for (const char *const *e = o->env; e && *e; e++) {
                ck_assert_uint_lt(m, MAX_ENV - 1);
                env[m++] = *e;
        }
        env[m] = NULL;

        d->pid = test_spawn((char *const *) argv, &(TestSpawn) { .env = env, .listen_fd = o->listen_fd });
        ck_assert_msg(test_daemon_wait_notify(d, "READY=1", TEST_TIMEOUT_USEC), "%s sent no READY=1 within %u s",
                      binary, (unsigned) (TEST_TIMEOUT_USEC / USEC_PER_SEC));
        if (!o->watch_notify)
                close_notify(d);
}

typedef struct NotifyWait {
        TestDaemon *daemon;
        const char *want; /* NULL: read what is queued */
} NotifyWait;

/* Reads queued notifications, one datagram at a time, until one has want in a line. */
static bool notified(void *userdata) {
        NotifyWait *w = userdata;
        TestDaemon *d = w->daemon;
        int status;

        for (;;) {
                char buf[4096];
                ssize_t n;

                n = recv(d->notify_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        ck_assert_msg(errno == EAGAIN, "recv on %s: %s", d->notify_path, strerror(errno));
                        break;
                }
                buf[n] = '\0';
                for (char *line = buf, *next; line; line = next) {
                        next = strchr(line, '\n');
                        if (next)
                                *next++ = '\0';
                        if (strncmp(line, "STATUS=", 7) == 0)
                                snprintf(d->last_status, sizeof(d->last_status), "%s", line + 7);
                        if (w->want && strstr(line, w->want))
                                return true;
                }
        }

        if (d->pid > 0 && test_exited(d->pid, &status)) {
                d->pid = 0;
                ck_abort_msg("%s exited (wait status %#x) while waiting for %s", d->binary, (unsigned) status,
                             w->want ?: "its notifications");
        }
        return false;
}

bool test_daemon_wait_notify(TestDaemon *d, const char *want, uint64_t timeout_usec) {
        NotifyWait w = { .daemon = d, .want = want };

        ck_assert_msg(d->notify_fd >= 0, "start the daemon with watch_notify to read its notifications");
        return test_wait_until(timeout_usec, notified, &w);
}

void test_daemon_drain_notify(TestDaemon *d) {
        NotifyWait w = { .daemon = d };

        ck_assert_msg(d->notify_fd >= 0, "start the daemon with watch_notify to read its notifications");
        (void) notified(&w);
}

int test_daemon_stop(TestDaemon *d) {
        int status = test_kill(&d->pid);

        close_notify(d);
        if (status != 0)
                fprintf(stderr, "%s on %s ended with wait status %#x\n", d->binary, d->address, (unsigned) status);
        return status;
}
