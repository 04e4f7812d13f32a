/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An inverted index, as the lab's mrapps/indexer.go: map emits (word, document) once per
 * distinct word of a document; reduce emits "<count> <doc>,<doc>,..." with the documents
 * sorted. A document cut into splits is mapped by several tasks, each naming it: reduce
 * counts and lists each document once, and combine drops a task's repeats early. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "mrkv/app.h"
#include "values.h"
#include "words.h"

/* The words seen so far in one document: an open-addressing set of slices of the
 * document, which outlives the set. */
typedef struct WordSet {
        Value *slots; /* .data == NULL: empty */
        size_t n, mask;
} WordSet;

static uint64_t word_hash(const char *s, size_t n) {
        uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */

        for (size_t i = 0; i < n; i++) {
                h ^= (unsigned char) s[i];
                h *= UINT64_C(1099511628211);
        }
        return h;
}

static int word_set_resize(WordSet *s, size_t n_slots) {
        Value *slots = calloc(n_slots, sizeof(Value));

        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; s->slots && i <= s->mask; i++) {
                size_t j;

                if (!s->slots[i].data)
                        continue;
                for (j = word_hash(s->slots[i].data, s->slots[i].len) & (n_slots - 1); slots[j].data;
                     j = (j + 1) & (n_slots - 1))
                        ;
                slots[j] = s->slots[i];
        }
        free(s->slots);
        s->slots = slots;
        s->mask = n_slots - 1;
        return 0;
}

/* Returns 1 if the word was new, 0 if already present, or -ENOMEM. */
static int word_set_add(WordSet *s, const char *w, size_t n) {
        size_t i;
        int r;

        /* Keep the load under one half, so probes stay short. */
        if (!s->slots || (s->n + 1) * 2 > s->mask + 1) {
                r = word_set_resize(s, s->slots ? (s->mask + 1) * 2 : 1024);
                if (r < 0)
                        return r;
        }

        for (i = word_hash(w, n) & s->mask; s->slots[i].data; i = (i + 1) & s->mask)
                if (s->slots[i].len == n && memcmp(s->slots[i].data, w, n) == 0)
                        return 0;
        s->slots[i] = (Value) { .data = w, .len = n };
        s->n++;
        return 1;
}

static int indexer_map(const mrkv_host *host, mrkv_emitter *out, const char *filename, const char *contents,
                       size_t size) {
        WordSet set = {};
        size_t filename_len = strlen(filename), pos = 0, n;
        const char *w;
        int r = 0;

        while ((n = word_next(contents, size, &pos, &w)) > 0) {
                r = word_set_add(&set, w, n);
                if (r < 0)
                        break;
                if (r == 0)
                        continue;
                r = host->emit(out, w, n, filename, filename_len);
                if (r < 0)
                        break;
        }

        free(set.slots);
        return r < 0 ? r : 0;
}

static int indexer_reduce(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                          mrkv_values *values) {
        return emit_sorted_distinct_values(host, out, key, key_len, values, true, ",");
}

static int indexer_combine(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                           mrkv_values *values) {
        return emit_distinct_values(host, out, key, key_len, values);
}

MRKV_APP_DEFINE_COMBINE("indexer", "inverted index: for every word, the documents containing it", indexer_map,
                        indexer_reduce, indexer_combine)
