/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* Strict parsing of command-line numbers: the whole string, no sign, in range. */
int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret);
int parse_uint64(const char *s, uint64_t *ret);
/* Seconds with an optional fraction ("10", "0.5") into microseconds. */
int parse_seconds(const char *s, uint64_t *ret_usec);
/* A byte count: digits with an optional K, M or G suffix (powers of 1024), which may be
 * followed by "B" or "iB" ("64K", "1MiB"). -ERANGE above max. */
int parse_size(const char *s, uint64_t max, uint64_t *ret);
/* A time-out: seconds as parse_seconds() takes them, more than zero (a value under half a
 * microsecond is one microsecond), or "infinity" (UINT64_MAX). */
int parse_timeout(const char *s, uint64_t *ret_usec);
