/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <systemd/sd-daemon.h>

#include "listen.h"
#include "log.h"
#include "macro.h"

int listen_sockets(const Address *address, int **ret_fds, unsigned *ret_n, bool *ret_bound) {
        _cleanup_free_ int *fds = NULL;
        char **names = NULL;
        int n, fd;

        n = sd_listen_fds_with_names(true, &names);
        if (n < 0)
                return log_error_errno(n, "Failed to read sockets passed by the service manager: %m");
        if (names) {
                for (int i = 0; names[i]; i++)
                        free(names[i]);
                free(names);
        }

        if (n > 0) {
                fds = calloc(n, sizeof(int));
                if (!fds)
                        return log_oom();
                for (int i = 0; i < n; i++) {
                        fds[i] = SD_LISTEN_FDS_START + i;
                        if (sd_is_socket(fds[i], AF_UNSPEC, SOCK_STREAM, 1) <= 0)
                                return log_error_errno(EINVAL, "Passed file descriptor %d is not a listening stream socket.", fds[i]);
                }
                log_debug("Using %d socket(s) passed by the service manager.", n);
                *ret_fds = TAKE_PTR(fds);
                *ret_n = (unsigned) n;
                *ret_bound = false;
                return 0;
        }

        fd = address_listen(address);
        if (fd < 0)
                return log_error_errno(fd, "Failed to listen on %s: %m", address->string);
        fds = calloc(1, sizeof(int));
        if (!fds) {
                close(fd);
                return log_oom();
        }
        fds[0] = fd;
        *ret_fds = TAKE_PTR(fds);
        *ret_n = 1;
        *ret_bound = true;
        return 0;
}
