/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "list.h"

#define ARENA_CHUNK_SIZE ((size_t) 1024 * 1024)

struct ArenaChunk {
        LIST_FIELDS(ArenaChunk, chunks);
        char data[];
};

char *arena_dup(Arena *a, const char *p, size_t size) {
        char *r;

        if (!a->chunks || (size_t) (a->end - a->next) < size) {
                /* A string larger than a chunk gets a chunk of its own. */
                size_t n = size > ARENA_CHUNK_SIZE ? size : ARENA_CHUNK_SIZE;
                ArenaChunk *c = malloc(sizeof(ArenaChunk) + n);

                if (!c)
                        return NULL;
                LIST_PREPEND(chunks, a->chunks, c);
                a->next = c->data;
                a->end = c->data + n;
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
        a->end = keep->data + ARENA_CHUNK_SIZE; /* every chunk holds at least that */
}

void arena_done(Arena *a) {
        for (ArenaChunk *c; (c = LIST_POP(chunks, a->chunks));)
                free(c);
        *a = (Arena) {};
}
