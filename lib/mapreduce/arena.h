/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* A bump allocator for many small byte strings freed all at once: one malloc per
 * chunk instead of one per string, and no per-string header. */

typedef struct ArenaChunk ArenaChunk;

typedef struct Arena {
        ArenaChunk *chunks; /* newest first */
        char *next, *end;   /* free space in the newest chunk */
        size_t chunk_size;  /* bytes of a new chunk; 0 for the default, 1 MiB */
        size_t allocated;   /* bytes of all chunks held */
} Arena;

/* Copies size bytes into the arena; returns the copy (unaligned), or NULL if out of memory. */
char *arena_dup(Arena *a, const char *p, size_t size);

/* The bytes a chunk for size more bytes would take, or 0 if they fit in the newest chunk. */
size_t arena_growth(const Arena *a, size_t size);

/* Forgets every string but keeps the newest chunk for reuse. */
void arena_reset(Arena *a);
void arena_done(Arena *a);
