/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* The keys of the store in bytewise order, for List: a treap of key copies whose
 * priorities are the keys' secret-keyed hashes (so no client can build a degenerate
 * tree). Inserting, removing and finding where a page starts are O(log n); the store
 * builds it on the first List and keeps it from then on. */

typedef struct KeyOrder KeyOrder;

KeyOrder *key_order_new(void);
KeyOrder *key_order_free(KeyOrder *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(KeyOrder *, key_order_free);

/* Builds an empty order from n keys sorted in bytewise order, without repeats, in O(n).
 * -ENOMEM (then it is empty). */
typedef struct KeyOrderItem {
        const void *key;
        size_t key_size;
        uint32_t priority;
} KeyOrderItem;
int key_order_build(KeyOrder *o, const KeyOrderItem *items, size_t n);

/* -ENOMEM; a key already there is left alone. */
int key_order_insert(KeyOrder *o, const void *key, size_t key_size, uint32_t priority);
void key_order_remove(KeyOrder *o, const void *key, size_t key_size);
size_t key_order_size(const KeyOrder *o);

/* Calls cb, in order, for the keys that start with prefix and sort after after (NULL:
 * from the first) until cb returns non-zero, which is returned (or 0 at the end). */
typedef int (*key_order_cb)(const void *key, size_t key_size, void *userdata);
int key_order_walk(KeyOrder *o, const void *prefix, size_t prefix_size, const void *after, size_t after_size,
                   key_order_cb cb, void *userdata);
