/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The search's set of visited configurations: (set of linearized operations, model
 * state). Reaching a configuration twice means the subtree below it was already
 * explored, which is what keeps Wing-Gong search from blowing up.
 *
 * The set is stored as a window of its bitset: words below `lo` are all ones and
 * words from `lo + n_words` on are all zero. With operations numbered by call time
 * the window spans the operations in flight, so an entry stays a few words long
 * however long the history is. */

/* A set of operations (by number) as a bitset that knows its window: words below lo
 * are all ones, words from hi on are all zero. */
typedef struct OpSet {
        uint64_t *words;
        size_t n_words, lo, hi;
} OpSet;

int opset_init(OpSet *set, size_t n_bits);
void opset_done(OpSet *set);
void opset_add(OpSet *set, uint32_t op);
void opset_remove(OpSet *set, uint32_t op);

static inline bool opset_contains(const OpSet *set, uint32_t op) {
        return set->words[op / 64] & (UINT64_C(1) << (op % 64));
}

typedef struct MemoSlot {
        uint64_t *entry; /* NULL when empty */
        uint64_t hash;
} MemoSlot;

typedef struct Memo {
        uint64_t **chunks;
        size_t n_chunks, allocated_chunks;
        size_t chunk_used, chunk_size; /* words, of the last chunk */
        size_t n_entries;
        MemoSlot *slots; /* open addressing, power-of-two size */
        size_t n_slots;
        uint64_t max_bytes; /* 0: no limit */
        uint64_t bytes;
} Memo;

void memo_init(Memo *m, uint64_t max_bytes);
void memo_done(Memo *m);

/* Adds a configuration. hash must be a function of the set and state only. Returns 1
 * if it was new, 0 if already present, -ENOSPC past max_bytes, -ENOMEM. */
int memo_insert(Memo *m, uint64_t hash, uint64_t version, uint32_t value, const OpSet *set);
