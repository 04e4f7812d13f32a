/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <poll.h>
#include <unistd.h>

#include "io-util.h"
#include "macro.h"
#include "time-util.h"

int fd_wait_until(int fd, short events, uint64_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                int timeout_ms = -1, r;

                if (deadline != UINT64_MAX) {
                        uint64_t now = now_usec();

                        if (now >= deadline)
                                return 0;
                        /* Rounded up, so that a remainder under a millisecond does not spin. */
                        timeout_ms = (int) MIN((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC,
                                               (uint64_t) INT32_MAX);
                }
                r = poll(&p, 1, timeout_ms);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r > 0)
                        return 1;
        }
}

ssize_t pread_retry(int fd, void *buf, size_t n, uint64_t offset) {
        for (;;) {
                ssize_t k = pread(fd, buf, n, (off_t) offset);
                if (k >= 0 || errno != EINTR)
                        return k < 0 ? -errno : k;
        }
}
