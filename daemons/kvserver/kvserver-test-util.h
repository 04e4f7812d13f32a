/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Helpers for the integration tests of mrkv-kvserver: start the real binary on a Unix
 * socket in a temporary directory, wait for its READY=1, and stop it. Header-only:
 * each test program is a single file. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_USEC_PER_SEC 1000000ULL

typedef struct TestServer {
        pid_t pid;
        int notify_fd;
        char address[128]; /* "unix:/tmp/.../kv.sock" */
        char socket_path[sizeof(((struct sockaddr_un *) NULL)->sun_path)];
        char notify_path[sizeof(((struct sockaddr_un *) NULL)->sun_path)];
        char last_status[256];
} TestServer;

static inline uint64_t test_now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * TEST_USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* Waits up to timeout_usec for fd to become readable: 1 if so, 0 on time-out. */
static inline int test_wait_readable(int fd, uint64_t timeout_usec) {
        uint64_t deadline = test_now_usec() + timeout_usec;

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                uint64_t now = test_now_usec();
                int r;

                if (now >= deadline)
                        return 0;
                r = poll(&p, 1, (int) ((deadline - now + 999) / 1000));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r > 0)
                        return 1;
        }
}

/* Reads sd_notify() datagrams until one contains want (e.g. "READY=1") or the time is
 * up. Remembers the last STATUS= line. Returns 1 when seen, 0 on time-out. */
static inline int test_server_wait_notify(TestServer *s, const char *want, uint64_t timeout_usec) {
        uint64_t deadline = test_now_usec() + timeout_usec;

        for (;;) {
                char buf[4096];
                uint64_t now;
                ssize_t n;
                int r;

                n = recv(s->notify_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                return -errno;
                        now = test_now_usec();
                        if (now >= deadline)
                                return 0;
                        r = test_wait_readable(s->notify_fd, deadline - now);
                        if (r <= 0)
                                return r;
                        continue;
                }
                buf[n] = '\0';
                for (char *line = buf, *next; line; line = next) {
                        next = strchr(line, '\n');
                        if (next)
                                *next++ = '\0';
                        if (strncmp(line, "STATUS=", 7) == 0)
                                snprintf(s->last_status, sizeof(s->last_status), "%s", line + 7);
                        if (strstr(line, want))
                                return 1;
                }
        }
}

/* Reads every queued notification without waiting. The server's sd_notify() blocks once
 * the datagram queue is full, so long tests call this now and then. */
static inline void test_server_drain_notify(TestServer *s) {
        /* No line contains a newline, so this reads until the queue is empty. */
        (void) test_server_wait_notify(s, "\n", 0);
}

/* Starts the server: argv[0] is the binary; listen, when not NULL, is passed as
 * --listen; extra is NULL-terminated. env, when not NULL, is "NAME=value" to add. Returns
 * 0 once READY=1 arrived; the server dies with the test process (PR_SET_PDEATHSIG). */
static inline int test_server_start_full(TestServer *s, const char *binary, const char *dir,
        bool pass_listen, const char *const *extra, const char *env, int activation_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        pid_t parent = getpid();
        int r;

        memset(s, 0, sizeof(*s));
        s->notify_fd = -1;
        /* Socket paths must fit into sun_path. */
        if ((size_t) snprintf(s->socket_path, sizeof(s->socket_path), "%s/kv-%d.sock", dir,
                    (int) getpid()) >= sizeof(s->socket_path) ||
                (size_t) snprintf(s->notify_path, sizeof(s->notify_path), "%s/notify-%d", dir,
                        (int) getpid()) >= sizeof(s->notify_path) ||
                (size_t) snprintf(s->address, sizeof(s->address), "unix:%s", s->socket_path) >=
                        sizeof(s->address))
                return -ENAMETOOLONG;

        s->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s->notify_fd < 0)
                return -errno;
        unlink(s->notify_path);
        memcpy(sa.sun_path, s->notify_path, sizeof(sa.sun_path));
        if (bind(s->notify_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;

        s->pid = fork();
        if (s->pid < 0)
                return -errno;
        if (s->pid == 0) {
                const char *argv[32];
                size_t n = 0;

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(127);
                setenv("NOTIFY_SOCKET", s->notify_path, 1);
                if (env)
                        putenv((char *) env);
                if (activation_fd >= 0) {
                        char pid[32];

                        /* dup2() clears O_CLOEXEC, except when the fd is 3 already. */
                        if (activation_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(activation_fd, 3) < 0)
                                _exit(127);
                        snprintf(pid, sizeof(pid), "%d", (int) getpid());
                        setenv("LISTEN_PID", pid, 1);
                        setenv("LISTEN_FDS", "1", 1);
                        setenv("LISTEN_FDNAMES", "kv", 1);
                }
                argv[n++] = binary;
                if (pass_listen) {
                        argv[n++] = "--listen";
                        argv[n++] = s->address;
                }
                for (size_t i = 0; extra && extra[i] && n < 30; i++)
                        argv[n++] = extra[i];
                argv[n] = NULL;
                execv(binary, (char *const *) argv);
                _exit(127);
        }

        r = test_server_wait_notify(s, "READY=1", 10 * TEST_USEC_PER_SEC);
        if (r <= 0)
                return r < 0 ? r : -ETIMEDOUT;
        return 0;
}

static inline int test_server_start(
        TestServer *s, const char *binary, const char *dir, const char *const *extra) {
        return test_server_start_full(s, binary, dir, true, extra, NULL, -1);
}

/* SIGTERM, then waits (with a deadline) for the exit. Returns the exit status, or
 * -ETIMEDOUT (after killing it), or 128+signal if a signal ended it. */
static inline int test_server_stop(TestServer *s) {
        uint64_t deadline = test_now_usec() + 10 * TEST_USEC_PER_SEC;
        int status = 0, ret = -ETIMEDOUT;

        if (s->pid <= 0)
                return 0;
        kill(s->pid, SIGTERM);
        for (;;) {
                pid_t p = waitpid(s->pid, &status, WNOHANG);

                if (p == s->pid) {
                        ret = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                        break;
                }
                if (test_now_usec() >= deadline) {
                        kill(s->pid, SIGKILL);
                        waitpid(s->pid, &status, 0);
                        break;
                }
                (void) poll(NULL, 0, 10);
        }
        s->pid = 0;
        if (s->notify_fd >= 0)
                close(s->notify_fd);
        s->notify_fd = -1;
        unlink(s->notify_path);
        return ret;
}

/* Reads one NUL-terminated message from a raw socket: 1 and a malloc'd string, 0 when the
 * peer closed the connection, -ETIMEDOUT. */
static inline int test_raw_read(int fd, uint64_t timeout_usec, char **ret) {
        uint64_t deadline = test_now_usec() + timeout_usec;
        char *buf = NULL;
        size_t size = 0;

        *ret = NULL;
        for (;;) {
                char chunk[4096];
                uint64_t now = test_now_usec();
                ssize_t n;
                int r;

                if (now >= deadline) {
                        free(buf);
                        return -ETIMEDOUT;
                }
                r = test_wait_readable(fd, deadline - now);
                if (r < 0) {
                        free(buf);
                        return r;
                }
                if (r == 0)
                        continue;
                /* One byte at a time past a message would be slow; peek is not needed
                 * here because the tests have one call in flight per raw socket. */
                n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (n < 0 && errno != ECONNRESET) {
                        free(buf);
                        return -errno;
                }
                if (n <= 0) {
                        free(buf);
                        return 0;
                }
                char *p = realloc(buf, size + (size_t) n + 1);
                if (!p) {
                        free(buf);
                        return -ENOMEM;
                }
                buf = p;
                memcpy(buf + size, chunk, (size_t) n);
                size += (size_t) n;
                buf[size] = '\0';
                if (memchr(buf, '\0', size)) {
                        *ret = buf;
                        return 1;
                }
        }
}

/* Writes all of data; errors from a peer that closed first count as success, since a
 * server may hang up on a bad message before it is all sent. */
static inline int test_raw_write(int fd, const void *data, size_t size) {
        const char *p = data;

        while (size > 0) {
                ssize_t n = send(fd, p, size, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd pf = { .fd = fd, .events = POLLOUT };
                                (void) poll(&pf, 1, 1000);
                                continue;
                        }
                        if (errno == EPIPE || errno == ECONNRESET)
                                return 0;
                        return -errno;
                }
                p += n;
                size -= (size_t) n;
        }
        return 0;
}
