/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "time-util.h"

/* Time and jittered pauses for the retry loops of the clerk and the lock. Each caller
 * owns its random state, so that clerks in different threads share nothing. */

/* Seeds a random state from getrandom(), falling back on the clock and the address of
 * the state when the kernel has no entropy to give yet. */
void jitter_seed(uint64_t *state);
/* A value drawn uniformly from [usec / 2, usec * 3 / 2). */
uint64_t jitter(uint64_t *state, uint64_t usec);
/* Sleeps for usec, but not past deadline (CLOCK_MONOTONIC usec). */
void pause_until(uint64_t usec, uint64_t deadline);
