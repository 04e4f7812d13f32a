/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "list.h"

#define ARENA_CHUNK_SIZE ((size_t) 1024 * 1024)

struct ArenaChunk {
        LIST_FIELDS(ArenaChunk, chunks);
        size_t size;
        char data[];
};

static size_t chunk_size(const Arena *a) {
        return a->chunk_size > 0 ? a->chunk_size : ARENA_CHUNK_SIZE;
}

size_t arena_growth(const Arena *a, size_t size) {
        if (a->chunks && (size_t) (a->end - a->next) >= size)
                return 0;
        return sizeof(ArenaChunk) + (size > chunk_size(a) ? size : chunk_size(a));
}

char *arena_dup(Arena *a, const char *p, size_t size) {
        char *r;

        if (!a->chunks || (size_t) (a->end - a->next) < size) {
                /* A string larger than a chunk gets a chunk of its own. */
                size_t n = size > chunk_size(a) ? size : chunk_size(a);
                ArenaChunk *c = malloc(sizeof(ArenaChunk) + n);

                if (!c)
                        return NULL;
                c->size = n;
                LIST_PREPEND(chunks, a->chunks, c);
                a->next = c->data;
                a->end = c->data + n;
                a->allocated += sizeof(ArenaChunk) + n;
        }

        r = a->next;
        if (size > 0)
                memcpy(r, p, size);
        a->next += size;
        return r;
}

void arena_reset(Arena *a) {
        ArenaChunk *keep = LIST_POP(chunks, a->chunks);

        if (!keep)
                return;
        arena_done(a);
        LIST_PREPEND(chunks, a->chunks, keep);
        a->next = keep->data;
        a->end = keep->data + keep->size;
        a->allocated = sizeof(ArenaChunk) + keep->size;
}

void arena_done(Arena *a) {
        size_t size = a->chunk_size;

        for (ArenaChunk *c; (c = LIST_POP(chunks, a->chunks));)
                free(c);
        *a = (Arena) { .chunk_size = size };
}
