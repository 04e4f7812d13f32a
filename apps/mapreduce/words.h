/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Words as the MapReduce apps see them: maximal runs of ASCII letters [A-Za-z], case
 * kept. Every other byte, including each byte of a UTF-8 sequence, separates words, so
 * the result does not depend on the locale or on the input being valid UTF-8. */

/* Whether each byte is a letter, for the last bytes of a text. */
extern const bool word_letter[256];

#define WORD_HIGH_BITS UINT64_C(0x8080808080808080)

/* The letters among the 8 bytes at p: the high bit of each letter's byte, byte i of p in
 * byte i of the result. Bytewise arithmetic on one word, with no carry between bytes:
 * a byte is a letter when it is below 0x80 and, with bit 5 set (lower case), from 'a'
 * to 'z'. */
static inline uint64_t word_letters8(const unsigned char *p) {
        const uint64_t ones = UINT64_C(0x0101010101010101);
        uint64_t w, x;

        memcpy(&w, p, sizeof(w));
        w = le64toh(w);
        x = (w | ones * 0x20) & ~WORD_HIGH_BITS;
        return (x + ones * (0x80 - 'a')) & ~(x + ones * (0x80 - 'z' - 1)) & ~w & WORD_HIGH_BITS;
}

/* The first position at or after i (at most size) whose byte is not a letter. */
static inline size_t word_end(const unsigned char *u, size_t size, size_t i) {
        for (; size - i >= 8; i += 8) {
                uint64_t ends = ~word_letters8(u + i) & WORD_HIGH_BITS;
                if (ends != 0)
                        return i + (size_t) __builtin_ctzll(ends) / 8;
        }
        while (i < size && word_letter[u[i]])
                i++;
        return i;
}

/* Finds the next word in s[0..size) starting at *pos. Returns its length and sets *ret
 * to its first byte and *pos past it; returns 0 when no word is left. Inline: a word
 * count calls it once per word, and the position stays in a register.
 *
 * Eight bytes at a time, so that a branch is taken per word rather than per byte (and
 * mispredicted at the end of nearly every word): a word of up to 6 letters after one
 * separator is found in one 8-byte load, its start and end both. A byte at a time only in
 * the last 7 bytes, never reading past size. */
static inline size_t word_next(const char *s, size_t size, size_t *pos, const char **ret) {
        const unsigned char *u = (const unsigned char *) s;
        size_t i = *pos, start, end;

        for (;; i += 8) {
                uint64_t letters, ends;

                if (size - i < 8) {
                        while (i < size && !word_letter[u[i]])
                                i++;
                        start = i;
                        end = word_end(u, size, i);
                        break;
                }
                letters = word_letters8(u + i);
                if (letters == 0)
                        continue;
                /* The non-letters from the first letter on, in these 8 bytes. */
                ends = ~letters & WORD_HIGH_BITS & (~UINT64_C(0) << __builtin_ctzll(letters));
                start = i + (size_t) __builtin_ctzll(letters) / 8;
                end = ends != 0 ? i + (size_t) __builtin_ctzll(ends) / 8 : word_end(u, size, i + 8);
                break;
        }

        *pos = end;
        *ret = s + start;
        return end - start;
}
