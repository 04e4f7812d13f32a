/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Words as the MapReduce apps see them: maximal runs of ASCII letters [A-Za-z], case
 * kept. Every other byte, including each byte of a UTF-8 sequence, separates words, so
 * the result does not depend on the locale or on the input being valid UTF-8. */

/* Finds the next word in s[0..size) starting at *pos. Returns its length and sets *ret
 * to its first byte and *pos past it; returns 0 when no word is left. */
size_t word_next(const char *s, size_t size, size_t *pos, const char **ret);
