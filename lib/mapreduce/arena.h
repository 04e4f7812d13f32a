/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* A bump allocator for many small byte strings freed all at once: one malloc per
 * chunk instead of one per string, and no per-string header. */

typedef struct ArenaChunk ArenaChunk;

typedef struct Arena {
        ArenaChunk *chunks; /* newest first */
        char *next, *end;   /* free space in the newest chunk */
} Arena;

/* Copies size bytes into the arena; returns the copy (unaligned), or NULL if out of memory. */
char *arena_dup(Arena *a, const char *p, size_t size);

/* Forgets every string but keeps the newest chunk for reuse. */
void arena_reset(Arena *a);
void arena_done(Arena *a);
