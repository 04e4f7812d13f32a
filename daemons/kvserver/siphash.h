/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* SipHash: a keyed hash, so that clients who do not know the key cannot pick keys that
 * all land in one bucket (hash flooding). The store uses SipHash-1-3 (as Rust and
 * Python do for hash tables); SipHash-2-4 is the variant with published test vectors,
 * and shares the code, so testing it tests both. */
uint64_t siphash13(const void *data, size_t size, const uint8_t key[static 16]);
uint64_t siphash24(const void *data, size_t size, const uint8_t key[static 16]);
