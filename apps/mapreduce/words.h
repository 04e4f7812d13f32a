/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Words as the MapReduce apps see them: maximal runs of ASCII letters [A-Za-z], case
 * kept. Every other byte, including each byte of a UTF-8 sequence, separates words, so
 * the result does not depend on the locale or on the input being valid UTF-8. */

/* Whether each byte is a letter: a table beats two range compares per byte. */
extern const bool word_letter[256];

/* Finds the next word in s[0..size) starting at *pos. Returns its length and sets *ret
 * to its first byte and *pos past it; returns 0 when no word is left. Inline: a word
 * count calls it once per word, and the position stays in a register. */
static inline size_t word_next(const char *s, size_t size, size_t *pos, const char **ret) {
        const unsigned char *u = (const unsigned char *) s;
        size_t i = *pos, start;

        while (i < size && !word_letter[u[i]])
                i++;
        start = i;
        while (i < size && word_letter[u[i]])
                i++;

        *pos = i;
        *ret = s + start;
        return i - start;
}
