/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The key/value model: keys → (value, version), where a value only changes through a
 * Put that names the current version (kvsrv1 of MIT 6.5840). Keys and values are byte
 * strings; the store knows nothing of JSON or sockets, nor of the log that makes it durable
 * (kv-state.c).
 *
 * Versions never go back: the store keeps the highest version at which a key was deleted
 * (the floor), and creates keys above it, so a key deleted and created again starts
 * above every version it had. A key may carry a lease (a number the store only keeps). */

typedef struct Store Store;

/* Larger keys or values are refused with -E2BIG (entries keep 32-bit sizes). */
#define STORE_SIZE_MAX ((size_t) UINT32_MAX)

int store_new(Store **ret);
Store *store_free(Store *s);

/* Returns 0 and the value (NUL-terminated after *ret_size bytes; valid until the store
 * next changes) and its version, or -ENOENT. Any of the ret pointers may be NULL. */
int store_get(Store *s, const void *key, size_t key_size, const char **ret_value, size_t *ret_size,
        uint64_t *ret_version);

/* The conditional write:
 *   key exists, version is its version → stored, version + 1;
 *   key exists, another version        → -ESTALE (a version mismatch);
 *   key missing, version 0             → created at version floor + 1 (1 while nothing
 *                                        was ever deleted);
 *   key missing, version > 0           → -ENOENT.
 * Also -E2BIG (see STORE_SIZE_MAX), -ENOMEM, -EOVERFLOW (version UINT64_MAX, which
 * would take 2^64 Puts to reach). On success *ret_version (if not NULL) is the new one. */
int store_put(Store *s, const void *key, size_t key_size, const void *value, size_t value_size,
        uint64_t version, uint64_t *ret_version);

/* The uid that wrote key last (0 for keys store_put() wrote, and old state files), or
 * -ENOENT. */
int store_get_owner(Store *s, const void *key, size_t key_size, uint32_t *ret_owner);

/* Sets key to value at version, written by owner, whatever it held: for replaying the log
 * and loading a snapshot, whose records carry the version, and for applying a Put that
 * was checked before (kv-state.c). -E2BIG, -ENOMEM. */
int store_set(Store *s, const void *key, size_t key_size, const void *value, size_t value_size, uint64_t version,
              uint32_t owner);

/* Where a key is, or would go: found by store_find() for a lookup, and written by
 * store_set_found() without hashing the key again (a Put hashes its key once). */
typedef struct StoreFound {
        void *link;
        uint64_t generation;    /* of the store when found: a changed store looks again */
        uint32_t hash;
} StoreFound;

/* As store_get(), with the key's owner, and where it is (or would go) in *ret_found:
 * 0, or -ENOENT (then *ret_found is where store_set_found() inserts it), or -E2BIG. */
int store_find(Store *s, const void *key, size_t key_size, StoreFound *ret_found, size_t *ret_size,
               uint64_t *ret_version, uint32_t *ret_owner);
/* store_set() of the key that store_find() found. */
int store_set_found(Store *s, const StoreFound *found, const void *key, size_t key_size, const void *value,
                    size_t value_size, uint64_t version, uint32_t owner);

/* Calls cb for every key, in no particular order; a negative return stops the walk and
 * is returned. The store must not change meanwhile. */
typedef int (*store_foreach_cb)(const void *key, size_t key_size, const void *value, size_t value_size,
                                uint64_t version, uint32_t owner, void *userdata);
int store_foreach(Store *s, store_foreach_cb cb, void *userdata);

/* The conditional delete: key exists at version → removed; its deletion is version + 1,
 * returned in *ret_deletion_version, and the floor rises to it. -ENOENT, -ESTALE,
 * -EOVERFLOW as store_put(). */
int store_delete(Store *s, const void *key, size_t key_size, uint64_t version, uint64_t *ret_deletion_version);
/* Removes key whatever its version, as deleted at deletion_version (raising the floor to
 * it): for replaying the log and applying a checked Delete. -ENOENT. */
int store_remove(Store *s, const void *key, size_t key_size, uint64_t deletion_version);
uint64_t store_floor(const Store *s);
/* The floor becomes floor if that is higher (loading it from a snapshot). */
void store_raise_floor(Store *s, uint64_t floor);

/* The key's lease (0: none), or -ENOENT. */
int store_get_lease(Store *s, const void *key, size_t key_size, uint64_t *ret_lease);
int store_set_lease(Store *s, const void *key, size_t key_size, uint64_t lease);

/* A key as store_list() returns it: pointers into the store, valid until it changes. */
typedef struct StoreItem {
        const char *key, *value;
        size_t key_size, value_size;
        uint64_t version, lease;
} StoreItem;

/* The first limit (> 0) keys that start with prefix and sort after after (bytewise; NULL:
 * from the first), in order, in an array to free(); *ret_more says whether more follow.
 * The first call builds an ordered index of the keys (order.h), O(n log n), which new
 * and removed keys keep up to date from then on (O(log n) each); a page is then
 * O(log n + limit). Out of memory for the index, a call walks the whole table. */
int store_list(Store *s, const void *prefix, size_t prefix_size, const void *after, size_t after_size,
               size_t limit, StoreItem **ret_items, size_t *ret_n, bool *ret_more);

/* Makes room for n keys in all without growing the table again (a hint: 0 on failure). */
void store_reserve(Store *s, size_t n);

size_t store_n_keys(const Store *s);
/* The bytes of all keys and values, without the store's own overhead. */
uint64_t store_data_bytes(const Store *s);
