/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* One descriptor for an event loop that stays the same while the connection behind it
 * comes and goes: an epoll instance holding the current connection's socket and a timer
 * (CLOCK_MONOTONIC) for the next thing due, such as a resend or a reconnect. It is
 * readable whenever there is something to read or the timer has expired. */
typedef struct Pollable {
        int epoll_fd;
        int timer_fd;
        int conn_fd; /* in the epoll set; -EBADF: none */
} Pollable;

int pollable_init(Pollable *p);
void pollable_done(Pollable *p);
/* Puts fd (-EBADF: none) in the place of the last connection's socket. */
int pollable_set_conn(Pollable *p, int fd);
/* Arms the timer for the absolute time usec (UINT64_MAX: disarms it), and clears an
 * expiry already counted. */
int pollable_arm(Pollable *p, uint64_t usec);
/* Waits until the descriptor is readable or deadline passes: 1, 0 at the deadline. */
int pollable_wait(Pollable *p, uint64_t deadline);
