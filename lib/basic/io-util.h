/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* poll()'s time-out until deadline (CLOCK_MONOTONIC µs; UINT64_MAX: none, -1): in
 * milliseconds rounded up, so that a remainder under a millisecond does not spin; 0 once
 * it has passed. */
int poll_timeout(uint64_t deadline);

/* Waits until fd has one of events (POLLIN, POLLOUT, ...) or an error or hang-up, or
 * until deadline (CLOCK_MONOTONIC µs; UINT64_MAX: none) passes. Signals do not end the
 * wait. Returns 1 when fd is ready, 0 at the deadline, or -errno. */
int fd_wait_until(int fd, short events, uint64_t deadline);

/* pread(), again when a signal interrupts it: the bytes read (0 at the end of the file) or
 * -errno. */
ssize_t pread_retry(int fd, void *buf, size_t n, uint64_t offset);
