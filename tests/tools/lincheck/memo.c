/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck-memo.h"
#include "macro.h"

/* Entries are packed into chunks, so growing never copies (or doubles) the bulk of
 * the memo, which is most of the checker's memory. */
#define CHUNK_WORDS ((size_t) 1 << 17)

enum {
        E_VERSION,
        E_VALUE_N, /* value << 32 | number of window words */
        E_LO,
        E_WORDS,
};

int opset_init(OpSet *set, size_t n_bits) {
        *set = (OpSet) { .n_words = (n_bits + 63) / 64 };
        set->words = calloc(MAX(set->n_words, (size_t) 1), sizeof(uint64_t));
        return set->words ? 0 : -ENOMEM;
}

void opset_done(OpSet *set) {
        free(set->words);
        *set = (OpSet) {};
}

void opset_add(OpSet *set, uint32_t op) {
        size_t w = op / 64;

        assert(w < set->n_words);
        set->words[w] |= UINT64_C(1) << (op % 64);
        if (w >= set->hi)
                set->hi = w + 1;
        while (set->lo < set->n_words && set->words[set->lo] == UINT64_MAX)
                set->lo++;
}

void opset_remove(OpSet *set, uint32_t op) {
        size_t w = op / 64;

        assert(w < set->n_words);
        set->words[w] &= ~(UINT64_C(1) << (op % 64));
        if (w < set->lo)
                set->lo = w;
        while (set->hi > 0 && set->words[set->hi - 1] == 0)
                set->hi--;
}

void memo_init(Memo *m, uint64_t max_bytes) {
        *m = (Memo) {
                .max_bytes = max_bytes,
        };
}

void memo_done(Memo *m) {
        for (size_t i = 0; i < m->n_chunks; i++)
                free(m->chunks[i]);
        free(m->chunks);
        free(m->slots);
        *m = (Memo) {};
}

static bool over_budget(const Memo *m, uint64_t more) {
        return m->max_bytes > 0 && m->bytes + more > m->max_bytes;
}

static int memo_grow_slots(Memo *m) {
        size_t n = MAX(m->n_slots * 2, (size_t) 1024);
        MemoSlot *slots;

        if (over_budget(m, (n - m->n_slots) * sizeof(MemoSlot)))
                return -ENOSPC;
        slots = calloc(n, sizeof(MemoSlot));
        if (!slots)
                return -ENOMEM;

        for (size_t j = 0; j < m->n_slots; j++) {
                size_t i;

                if (!m->slots[j].entry)
                        continue;
                for (i = m->slots[j].hash & (n - 1); slots[i].entry; i = (i + 1) & (n - 1))
                        ;
                slots[i] = m->slots[j];
        }
        m->bytes += (n - m->n_slots) * sizeof(MemoSlot);
        free(m->slots);
        m->slots = slots;
        m->n_slots = n;
        return 0;
}

static int memo_alloc(Memo *m, size_t words, uint64_t **ret) {
        size_t size;
        uint64_t *chunk;

        if (m->n_chunks > 0 && m->chunk_size - m->chunk_used >= words) {
                *ret = m->chunks[m->n_chunks - 1] + m->chunk_used;
                m->chunk_used += words;
                return 0;
        }

        /* The tail of the last chunk is wasted; at most one entry's worth. */
        size = MAX(words, CHUNK_WORDS);
        if (over_budget(m, size * sizeof(uint64_t)))
                return -ENOSPC;
        if (m->n_chunks == m->allocated_chunks) {
                size_t n = MAX(m->allocated_chunks * 2, (size_t) 16);
                uint64_t **chunks = reallocarray(m->chunks, n, sizeof(uint64_t *));

                if (!chunks)
                        return -ENOMEM;
                m->chunks = chunks;
                m->allocated_chunks = n;
        }
        chunk = malloc(size * sizeof(uint64_t));
        if (!chunk)
                return -ENOMEM;
        m->chunks[m->n_chunks++] = chunk;
        m->chunk_size = size;
        m->chunk_used = words;
        m->bytes += size * sizeof(uint64_t);
        *ret = chunk;
        return 0;
}

int memo_insert(Memo *m, uint64_t hash, uint64_t version, uint32_t value, const OpSet *set) {
        /* Only the window is stored: with lo and the window, the set is canonical. */
        size_t lo = set->lo, n_words = set->hi > lo ? set->hi - lo : 0;
        const uint64_t *words = set->words + lo;
        uint64_t value_n = (uint64_t) value << 32 | n_words;
        uint64_t *e;
        size_t i;
        int r;

        assert(n_words <= UINT32_MAX);

        /* Load factor at most 1/2. */
        if ((m->n_entries + 1) * 2 > m->n_slots) {
                r = memo_grow_slots(m);
                if (r < 0)
                        return r;
        }

        for (i = hash & (m->n_slots - 1); m->slots[i].entry; i = (i + 1) & (m->n_slots - 1)) {
                if (m->slots[i].hash != hash)
                        continue;
                e = m->slots[i].entry;
                if (e[E_VERSION] == version && e[E_VALUE_N] == value_n && e[E_LO] == lo &&
                    memcmp(e + E_WORDS, words, n_words * sizeof(uint64_t)) == 0)
                        return 0;
        }

        r = memo_alloc(m, E_WORDS + n_words, &e);
        if (r < 0)
                return r;
        e[E_VERSION] = version;
        e[E_VALUE_N] = value_n;
        e[E_LO] = lo;
        memcpy(e + E_WORDS, words, n_words * sizeof(uint64_t));
        m->slots[i] = (MemoSlot) { .entry = e, .hash = hash };
        m->n_entries++;
        return 1;
}
