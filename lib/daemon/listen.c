/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/socket.h>

#include <systemd/sd-daemon.h>

#include "listen.h"
#include "macro.h"
#include "strv.h"

static void close_passed(int n) {
        for (int i = 0; i < n; i++)
                (void) close(SD_LISTEN_FDS_START + i);
}

int listen_fds_passed(int **ret_fds, int *ret_bad_fd) {
        _cleanup_strv_free_ char **names = NULL;
        int *fds, n;

        assert(ret_fds);
        assert(ret_bad_fd);

        /* The names are not used: every passed socket serves the same interfaces. */
        n = sd_listen_fds_with_names(true, &names);
        if (n <= 0) {
                *ret_fds = NULL;
                return n;
        }

        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i, r = 0;

                if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0)
                        r = -ENOTSOCK;
                else if (sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1) <= 0)
                        r = -EPFNOSUPPORT; /* no peer credentials, no authentication */
                if (r < 0) {
                        *ret_bad_fd = fd;
                        close_passed(n);
                        return r;
                }
        }

        fds = calloc(n, sizeof(int));
        if (!fds) {
                close_passed(n);
                return -ENOMEM;
        }
        for (int i = 0; i < n; i++)
                fds[i] = SD_LISTEN_FDS_START + i;
        *ret_fds = fds;
        return n;
}
