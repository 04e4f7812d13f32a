/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <poll.h>
#include <unistd.h>

#include "io-util.h"
#include "macro.h"
#include "time-util.h"

int poll_timeout(uint64_t deadline) {
        uint64_t now;

        if (deadline == UINT64_MAX)
                return -1;
        now = now_usec();
        if (deadline <= now)
                return 0;
        return (int) MIN((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC, (uint64_t) INT32_MAX);
}

int fd_wait_until(int fd, short events, uint64_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                int timeout_ms = poll_timeout(deadline), r;

                if (timeout_ms == 0)
                        return 0;
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
