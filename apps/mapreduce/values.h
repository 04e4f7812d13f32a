/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "mrkv/app.h"

/* The values of one reduce key, copied out of the host's iterator (whose pointers last
 * only until the next call) so they can be sorted and joined, as the lab's apps do. */

typedef struct Value {
        const char *data;
        size_t len;
} Value;

typedef struct ValueSet {
        char *data; /* all value bytes, back to back */
        size_t size, allocated;
        Value *items; /* data holds offsets into .data until value_set_collect() returns */
        size_t n, n_allocated;
} ValueSet;

/* Drains the iterator into s. Returns 0 or a negative errno. */
int value_set_collect(ValueSet *s, const mrkv_host *host, mrkv_values *values);

/* Sorts bytewise, a shorter value before a longer one it is a prefix of (Go's sort.Strings). */
void value_set_sort(ValueSet *s);

/* Joins the values with sep after prefix, into a new buffer (NUL-terminated; *ret_len
 * excludes the NUL). Returns 0 or -ENOMEM. */
int value_set_join(const ValueSet *s, const char *prefix, const char *sep, char **ret, size_t *ret_len);

void value_set_done(ValueSet *s);

/* The reduce of most lab apps: collects the values, sorts them (so that the output does
 * not depend on the order tasks ran in), and emits them joined by sep, preceded by their
 * count and a space if with_count. Returns 0 or a negative errno. */
int emit_sorted_values(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                       mrkv_values *values, bool with_count, const char *sep);

/* The same over the distinct values only (indexer: a document split into several map
 * tasks is named by each of them). */
int emit_sorted_distinct_values(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                                mrkv_values *values, bool with_count, const char *sep);

/* The reduce of word count: emits how many values key has, without keeping them. Returns
 * 0 or a negative errno. */
int emit_value_count(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                     mrkv_values *values);

/* The reduce and combine of word count: emits the sum of key's values, each a decimal
 * count ("1" from map, a partial sum from a combine), so it gives the same whether or not
 * some values were combined. Returns 0, -EBADMSG for a value that is not a count, or a
 * negative errno. */
int emit_value_sum(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                   mrkv_values *values);

/* The combine of indexer: emits each distinct value of key once, sorted. Returns 0 or a
 * negative errno. */
int emit_distinct_values(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                         mrkv_values *values);

/* Compares two byte strings as Go compares strings. */
int bytes_compare(const char *a, size_t a_len, const char *b, size_t b_len);
