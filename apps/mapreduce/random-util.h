/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* A uniform random number in [0, n) from getrandom(), as the lab's crypto/rand. Each
 * worker process draws its own numbers, with no seed to share or forget. */
int random_below(uint32_t n, uint32_t *ret);

/* Sleeps ms milliseconds, resuming after signals. */
void sleep_msec(uint64_t ms);
