/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "intermediate.h"

/* A min-heap of group readers ordered by their current key, ties broken by reader index:
 * the groups of one key come out in reader order, so a merge sees a deterministic value
 * order. With partitions (a spilled run holds every partition, each in key order), by
 * partition first: partitions[i] is that of reader i's current key, set by the caller
 * before it pushes i. */
typedef struct GroupMerge {
        GroupReader *readers;
        uint32_t *partitions; /* or NULL */
        unsigned *heap;
        unsigned n_heap;
} GroupMerge;

void group_merge_push(GroupMerge *m, unsigned reader);
unsigned group_merge_pop(GroupMerge *m);

/* Whether reader's current key equals key (pushed readers only). */
static inline int group_merge_same_key(const GroupMerge *m, unsigned reader, const char *key, size_t key_len) {
        const GroupReader *r = &m->readers[reader];

        return r->key_len == key_len && (key_len == 0 || memcmp(r->key, key, key_len) == 0);
}

/* The rest of the current run of one key's values, or the next, from the readers
 * members[*current..n_members) in turn (those positioned at that key, in merge order),
 * moving *current on as each runs out: 1 and *repeat, *value, *value_len; 0 when all
 * are read; a reader's error. Reduce and a combiner over spilled runs take a word
 * count's runs of "1"s this way, a call per run. */
int group_merge_take_run(GroupMerge *m, const unsigned *members, unsigned n_members, unsigned *current,
                         uint64_t *repeat, const char **value, size_t *value_len);
