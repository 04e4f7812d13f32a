/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "io-util.h"
#include "macro.h"
#include "pollable.h"
#include "time-util.h"

int pollable_init(Pollable *p) {
        *p = (Pollable) { .epoll_fd = -EBADF, .timer_fd = -EBADF, .conn_fd = -EBADF };

        p->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (p->epoll_fd < 0)
                return -errno;
        p->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (p->timer_fd < 0 ||
            epoll_ctl(p->epoll_fd, EPOLL_CTL_ADD, p->timer_fd, &(struct epoll_event) { .events = EPOLLIN }) < 0) {
                int r = -errno;
                pollable_done(p);
                return r;
        }
        return 0;
}

void pollable_done(Pollable *p) {
        closep(&p->epoll_fd);
        closep(&p->timer_fd);
        p->conn_fd = -EBADF;
}

int pollable_set_conn(Pollable *p, int fd) {
        /* The old socket may be closed already, which took it out of the set. */
        if (p->conn_fd >= 0)
                (void) epoll_ctl(p->epoll_fd, EPOLL_CTL_DEL, p->conn_fd, NULL);
        p->conn_fd = -EBADF;
        if (fd < 0)
                return 0;
        if (epoll_ctl(p->epoll_fd, EPOLL_CTL_ADD, fd, &(struct epoll_event) { .events = EPOLLIN }) < 0)
                return -errno;
        p->conn_fd = fd;
        return 0;
}

int pollable_arm(Pollable *p, uint64_t usec) {
        struct itimerspec its = {};
        uint64_t expirations;

        /* Read away an expiry that has been counted, or the descriptor stays readable. */
        (void) !read(p->timer_fd, &expirations, sizeof(expirations));

        if (usec != UINT64_MAX) {
                /* 0 would disarm it: the earliest time that is not 0 is as good as "now". */
                usec = MAX(usec, (uint64_t) 1);
                its.it_value.tv_sec = (time_t) (usec / USEC_PER_SEC);
                its.it_value.tv_nsec = (long) ((usec % USEC_PER_SEC) * NSEC_PER_USEC);
        }
        if (timerfd_settime(p->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
                return -errno;
        return 0;
}

int pollable_wait(Pollable *p, uint64_t deadline) {
        return fd_wait_until(p->epoll_fd, POLLIN, deadline);
}
