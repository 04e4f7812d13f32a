/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

/* The intermediate pairs of a map task, grouped by key as they are emitted.
 *
 * The lab's mrsequential keeps every pair and sorts them all (so does mrkv-sequential,
 * the tests' reference, on purpose: it shares nothing with this); grouping first keeps each
 * key once (in an arena) and each value as a length-prefixed byte string appended to
 * its key's buffer, and sorts only the distinct keys. On a word count that is ~2 bytes
 * per pair instead of a pointer pair, and a sort of thousands of keys instead of a
 * hundred million pairs. Values of one key stay in emission order. */

typedef struct Group {
        const char *key;
        size_t key_len;
        uint64_t hash;
        /* Runs of equal consecutive values, each: u32 repeat count (unaligned), LEB128
         * length, bytes. A word count's "1"s are one run per key. */
        uint8_t *values;
        size_t values_size, values_allocated;
        size_t n_values;
        size_t last_run;   /* offset of the last run + 1; 0 before the first value */
        size_t last_value; /* offset of the last run's bytes */
        size_t last_len;
} Group;

/* A position in a group's values, for group_next_value(); start zeroed. */
typedef struct GroupIter {
        size_t pos;
        uint32_t left; /* repeats of the current value still to hand out */
        const char *value;
        size_t value_len;
} GroupIter;

typedef struct Groups {
        Arena keys;
        Group *groups;
        size_t n_groups, n_allocated;
        uint32_t *slots; /* index + 1 into groups, 0 = empty; open addressing */
        size_t mask;
        size_t n_initialized; /* groups[] entries whose values buffer may be reused */
        size_t budget;        /* bytes the groups may hold; 0: no bound */
        size_t memory;        /* bytes held: table, groups, keys, value buffers */
        int (*full)(void *userdata); /* called when an add would go over the budget */
        void *userdata;
} Groups;

/* Bounds the memory g holds to about budget bytes (0: no bound); set on an empty g. When
 * an add would take g over it while g holds groups (never when it is empty), full() is
 * called, which writes the groups out and empties g (groups_done()), and the add is
 * made again; without full(), the add fails with -ENOBUFS. Memory kept by a reset
 * counts against the budget and is reused first. */
void groups_set_budget(Groups *g, size_t budget, int (*full)(void *userdata), void *userdata);

/* Appends value to key's values. Returns 0, -ENOMEM, -ENOBUFS, or full()'s error. */
int groups_add(Groups *g, const char *key, size_t key_len, const char *value, size_t value_len);

/* Appends a value to one group, unbounded (a combiner's output, outside any Groups).
 * Returns 0 or -ENOMEM. */
int group_append(Group *group, const char *value, size_t value_len);

/* Returns an array of all groups ordered by key (bytewise, as Go orders strings); the
 * caller frees the array, not the groups. Returns 0 or -ENOMEM. */
int groups_sorted(const Groups *g, const Group ***ret);

/* Iterates over the values of a group, in emission order. Returns 1 and sets *value,
 * *value_len, or 0 at the end. */
int group_next_value(const Group *group, GroupIter *it, const char **value, size_t *value_len);

/* The rest of the current run of it, or the next run: 1 and *value, *value_len and
 * *repeat (at least 1), or 0 at the end. Mixes with group_next_value(). */
int group_next_repeat(const Group *group, GroupIter *it, const char **value, size_t *value_len, uint64_t *repeat);

/* Iterates over the runs of a group: start with *pos = 0. Returns 1 and sets *repeat
 * (at least 1), *value, *value_len, or 0 at the end. */
int group_next_run(const Group *group, size_t *pos, uint32_t *repeat, const char **value, size_t *value_len);

/* Empties g but keeps its memory (table, key chunk, value buffers) for the next use:
 * a worker reuses one Groups for every map task. */
void groups_reset(Groups *g);
void groups_done(Groups *g);
