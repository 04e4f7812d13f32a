/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>

#include "address.h"
#include "io-util.h"
#include "fs-util.h"
#include "macro.h"
#include "parse-util.h"

static int parse_unix(const char *path, Address *a) {
        struct sockaddr_un *un = (struct sockaddr_un *) &a->sa;

        if (path[0] != '/')
                return -EINVAL; /* relative paths would depend on each process's cwd */
        if (strlen(path) >= sizeof(un->sun_path))
                return -ENAMETOOLONG;

        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, path);
        a->family = AF_UNIX;
        a->sa_len = offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
        return 0;
}

static int parse_tcp(const char *hostport, Address *a) {
        _cleanup_free_ char *host = NULL;
        const char *port;
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
        struct addrinfo *res = NULL;

        if (hostport[0] == '[') {
                const char *end = strchr(hostport, ']');
                if (!end || end[1] != ':')
                        return -EINVAL;
                host = strndup(hostport + 1, end - hostport - 1);
                port = end + 2;
        } else {
                const char *colon = strrchr(hostport, ':');
                if (!colon)
                        return -EINVAL;
                host = strndup(hostport, colon - hostport);
                port = colon + 1;
        }
        if (!host)
                return -ENOMEM;
        unsigned port_number;
        if (parse_unsigned(port, 0, 65535, &port_number) < 0)
                return -EINVAL;

        if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0 || !res)
                return -EADDRNOTAVAIL;

        memcpy(&a->sa, res->ai_addr, res->ai_addrlen);
        a->sa_len = res->ai_addrlen;
        a->family = res->ai_family;
        freeaddrinfo(res);
        return 0;
}

int address_parse(const char *s, Address *ret) {
        Address a = {};
        int r;

        assert(s);
        assert(ret);

        if (strncmp(s, "unix:", 5) == 0)
                r = parse_unix(s + 5, &a);
        else if (s[0] == '/')
                r = parse_unix(s, &a);
        else if (strncmp(s, "tcp:", 4) == 0)
                r = parse_tcp(s + 4, &a);
        else
                r = -EINVAL;
        if (r < 0)
                return r;

        a.string = strdup(s);
        if (!a.string)
                return -ENOMEM;
        *ret = a;
        return 0;
}

void address_done(Address *a) {
        free(a->string);
        a->string = NULL;
}

int address_connect(const Address *a, bool nonblock) {
        _cleanup_close_ int fd = -EBADF;

        fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (const struct sockaddr *) &a->sa, a->sa_len) < 0)
                return -errno;
        if (a->family != AF_UNIX)
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
        if (nonblock && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int address_connect_until(const Address *a, uint64_t deadline) {
        _cleanup_close_ int fd = -EBADF;
        socklen_t len = sizeof(int);
        int r, error = 0;

        fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (a->family != AF_UNIX)
                /* Calls are small and answered one at a time: Nagle would only add latency. */
                (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));

        if (connect(fd, (const struct sockaddr *) &a->sa, a->sa_len) < 0) {
                if (errno != EINPROGRESS)
                        return -errno;
                r = fd_wait_until(fd, POLLOUT, deadline);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ETIMEDOUT;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                        return -errno;
                if (error != 0)
                        return -error;
        }
        return TAKE_FD(fd);
}

int address_listen(const Address *a) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;

        if (a->family == AF_UNIX) {
                const char *path = ((const struct sockaddr_un *) &a->sa)->sun_path;
                struct stat st;

                r = mkdir_parents(path);
                if (r < 0)
                        return r;
                /* A socket file left by a process that died is stale; anything else we leave alone. */
                if (lstat(path, &st) == 0) {
                        if (!S_ISSOCK(st.st_mode))
                                return -EEXIST;
                        if (unlink(path) < 0)
                                return -errno;
                }
        } else
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));

        if (a->family != AF_UNIX) {
                if (bind(fd, (const struct sockaddr *) &a->sa, a->sa_len) < 0)
                        return -errno;
                if (listen(fd, SOMAXCONN) < 0)
                        return -errno;
                return TAKE_FD(fd);
        }

        /* A Unix socket file accepts connections only once listen() ran: bind under a
         * temporary name and rename it into place, so that a client that sees the file
         * never meets a refused connection. */
        const char *path = ((const struct sockaddr_un *) &a->sa)->sun_path;
        struct sockaddr_un tmp = { .sun_family = AF_UNIX };
        if (snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s.%d.tmp", path, (int) getpid()) >=
            (int) sizeof(tmp.sun_path))
                return -ENAMETOOLONG;
        (void) unlink(tmp.sun_path);
        if (bind(fd, (const struct sockaddr *) &tmp, sizeof(tmp)) < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0 || rename(tmp.sun_path, path) < 0) {
                r = -errno;
                (void) unlink(tmp.sun_path);
                return r;
        }
        return TAKE_FD(fd);
}

void address_unlink(const Address *a) {
        if (a->family == AF_UNIX)
                (void) unlink(((const struct sockaddr_un *) &a->sa)->sun_path);
}

int address_default(const char *env_var, const char *sockname, char **ret) {
        const char *e, *dir;
        char *s;
        int n;

        e = env_var ? getenv(env_var) : NULL;
        if (e && e[0]) {
                s = strdup(e);
                if (!s)
                        return -ENOMEM;
                *ret = s;
                return 0;
        }

        dir = getenv("RUNTIME_DIRECTORY");
        if (dir && dir[0]) {
                /* systemd may pass several, separated by ':'; the first is ours. */
                n = asprintf(&s, "unix:%.*s/%s", (int) strcspn(dir, ":"), dir, sockname);
        } else if ((dir = getenv("XDG_RUNTIME_DIR")) && dir[0])
                n = asprintf(&s, "unix:%s/mrkv/%s", dir, sockname);
        else
                n = asprintf(&s, "unix:/run/mrkv/%s", sockname);
        if (n < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}
