/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* Waits until fd has one of events (POLLIN, POLLOUT, ...) or an error or hang-up, or
 * until deadline (CLOCK_MONOTONIC µs; UINT64_MAX: none) passes. Signals do not end the
 * wait. Returns 1 when fd is ready, 0 at the deadline, or -errno. */
int fd_wait_until(int fd, short events, uint64_t deadline);
