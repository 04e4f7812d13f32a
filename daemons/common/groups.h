/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

/* The intermediate pairs of a sequential run, grouped by key as they are emitted.
 *
 * The lab's mrsequential keeps every pair and sorts them all; grouping first keeps each
 * key once (in an arena) and each value as a length-prefixed byte string appended to
 * its key's buffer, and sorts only the distinct keys. On a word count that is ~2 bytes
 * per pair instead of a pointer pair, and a sort of thousands of keys instead of a
 * hundred million pairs. Values of one key stay in emission order. */

typedef struct Group {
        const char *key;
        size_t key_len;
        uint64_t hash;
        uint8_t *values; /* each value: LEB128 length, then its bytes */
        size_t values_size, values_allocated;
        size_t n_values;
} Group;

typedef struct Groups {
        Arena keys;
        Group *groups;
        size_t n_groups, n_allocated;
        uint32_t *slots; /* index + 1 into groups, 0 = empty; open addressing */
        size_t mask;
} Groups;

/* Appends value to key's values. Returns 0 or -ENOMEM. */
int groups_add(Groups *g, const char *key, size_t key_len, const char *value, size_t value_len);

/* Returns an array of all groups ordered by key (bytewise, as Go orders strings); the
 * caller frees the array, not the groups. Returns 0 or -ENOMEM. */
int groups_sorted(const Groups *g, const Group ***ret);

/* Iterates over the values of a group: start with *pos = 0. Returns 1 and sets
 * *value, *value_len, or 0 at the end. */
int group_next_value(const Group *group, size_t *pos, const char **value, size_t *value_len);

void groups_done(Groups *g);
