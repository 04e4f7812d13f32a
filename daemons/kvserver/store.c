/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "macro.h"
#include "siphash.h"
#include "store.h"

/* One allocation per key: the header, then the key bytes, the value bytes and a NUL
 * (so that a value is also a C string for callers that want one). With the bucket
 * pointer and malloc's own header this is about 50 bytes of overhead per key. */
typedef struct Entry {
        struct Entry *next;
        uint64_t version;
        uint32_t hash; /* the low bits pick the bucket; kept to rehash and to skip memcmp */
        uint32_t key_size;
        uint32_t value_size;
        uint32_t owner; /* the uid that wrote it last, for quotas */
        char data[];
} Entry;

struct Store {
        Entry **buckets;
        size_t n_buckets; /* a power of two */
        size_t n_keys;
        uint64_t data_bytes;
        uint64_t generation;    /* counts the changes of links (inserts, moved entries, resizes;
                                 * anything that unlinks an entry too): a StoreFound of an
                                 * older one looks again */
        uint8_t hash_key[16];
};

#define STORE_INITIAL_BUCKETS 64U

static size_t entry_alloc_size(size_t key_size, size_t value_size) {
        return offsetof(Entry, data) + key_size + value_size + 1;
}

static uint32_t store_hash(const Store *s, const void *key, size_t key_size) {
        uint64_t h = siphash13(key, key_size, s->hash_key);

        return (uint32_t) (h ^ (h >> 32));
}

int store_new(Store **ret) {
        _cleanup_free_ Store *s = NULL;

        assert(ret);

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;

        /* A fresh key per process: nobody outside can predict bucket collisions. */
        if (getrandom(s->hash_key, sizeof(s->hash_key), 0) != (ssize_t) sizeof(s->hash_key))
                return errno > 0 ? -errno : -EIO;

        s->buckets = calloc(STORE_INITIAL_BUCKETS, sizeof(Entry *));
        if (!s->buckets)
                return -ENOMEM;
        s->n_buckets = STORE_INITIAL_BUCKETS;

        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;

        for (size_t i = 0; i < s->n_buckets; i++)
                for (Entry *e = s->buckets[i], *next; e; e = next) {
                        next = e->next;
                        free(e);
                }
        free(s->buckets);
        free(s);
        return NULL;
}

/* Returns the link that points at the entry for key, or at the NULL ending its chain. */
static Entry **store_find_link(Store *s, const void *key, size_t key_size, uint32_t hash) {
        Entry **link = &s->buckets[hash & (s->n_buckets - 1)];

        for (; *link; link = &(*link)->next) {
                Entry *e = *link;

                if (e->hash == hash && e->key_size == key_size && memcmp(e->data, key, key_size) == 0)
                        break;
        }
        return link;
}

static int store_resize(Store *s, size_t n) {
        Entry **buckets;

        if (n > SIZE_MAX / sizeof(Entry *) || n - 1 > UINT32_MAX)
                return 0; /* chains just get longer */

        buckets = calloc(n, sizeof(Entry *));
        if (!buckets)
                return 0; /* likewise: a slower table beats a failed Put */

        for (size_t i = 0; i < s->n_buckets; i++)
                for (Entry *e = s->buckets[i], *next; e; e = next) {
                        Entry **b = &buckets[e->hash & (n - 1)];

                        next = e->next;
                        e->next = *b;
                        *b = e;
                }

        free(s->buckets);
        s->buckets = buckets;
        s->n_buckets = n;
        s->generation++;
        return 0;
}

/* Doubles the table once there is more than one key per bucket; keys are never
 * removed, so it never shrinks. */
static int store_grow(Store *s) {
        return store_resize(s, s->n_buckets * 2);
}

void store_reserve(Store *s, size_t n) {
        size_t b = s->n_buckets;

        assert(s);
        while (b < n && b <= SIZE_MAX / 4)
                b *= 2;
        if (b > s->n_buckets)
                (void) store_resize(s, b);
}

static Entry *store_lookup(Store *s, const void *key, size_t key_size) {
        assert(s);
        assert(key || key_size == 0);

        if (key_size > STORE_SIZE_MAX)
                return NULL;
        return *store_find_link(s, key, key_size, store_hash(s, key, key_size));
}

int store_get_owner(Store *s, const void *key, size_t key_size, uint32_t *ret_owner) {
        Entry *e = store_lookup(s, key, key_size);

        if (!e)
                return -ENOENT;
        *ret_owner = e->owner;
        return 0;
}

int store_get(Store *s, const void *key, size_t key_size, const char **ret_value, size_t *ret_size,
        uint64_t *ret_version) {
        Entry *e = store_lookup(s, key, key_size);

        if (!e)
                return -ENOENT;

        if (ret_value)
                *ret_value = e->data + e->key_size;
        if (ret_size)
                *ret_size = e->value_size;
        if (ret_version)
                *ret_version = e->version;
        return 0;
}

static int store_insert(Store *s, Entry **link, uint32_t hash, const void *key, size_t key_size,
        const void *value, size_t value_size, Entry **ret) {
        Entry *e;

        e = malloc(entry_alloc_size(key_size, value_size));
        if (!e)
                return -ENOMEM;

        /* Field by field: a small entry is shorter than sizeof(Entry), whose tail padding
         * a struct assignment would write. */
        e->next = NULL;
        e->version = 1;
        e->hash = hash;
        e->key_size = (uint32_t) key_size;
        e->value_size = (uint32_t) value_size;
        e->owner = 0;
        if (key_size > 0)
                memcpy(e->data, key, key_size);
        if (value_size > 0)
                memcpy(e->data + key_size, value, value_size);
        e->data[key_size + value_size] = '\0';

        *link = e;
        s->generation++;
        s->n_keys++;
        s->data_bytes += key_size + value_size;
        if (ret)
                *ret = e;

        if (s->n_keys > s->n_buckets)
                (void) store_grow(s);
        return 0;
}

static int store_update(Store *s, Entry **link, const void *value, size_t value_size) {
        Entry *e = *link;

        if (e->value_size != value_size) {
                /* value may point into e (a caller writing back what store_get() gave
                 * it), and realloc may move e: copy through a new block in that case. */
                bool aliased = (const char *) value >= e->data &&
                        (const char *) value < e->data + e->key_size + e->value_size + 1;
                Entry *n;

                if (aliased) {
                        n = malloc(entry_alloc_size(e->key_size, value_size));
                        if (!n)
                                return -ENOMEM;
                        memcpy(n, e, offsetof(Entry, data) + e->key_size);
                        memcpy(n->data + e->key_size, value, value_size);
                        free(e);
                } else {
                        n = realloc(e, entry_alloc_size(e->key_size, value_size));
                        if (!n)
                                return -ENOMEM;
                        if (value_size > 0)
                                memcpy(n->data + n->key_size, value, value_size);
                }

                s->data_bytes = s->data_bytes - n->value_size + value_size;
                n->value_size = (uint32_t) value_size;
                if (n != e)
                        s->generation++;
                *link = e = n;
        } else if (value_size > 0)
                memmove(e->data + e->key_size, value, value_size);

        e->data[e->key_size + value_size] = '\0';
        e->version++;
        return 0;
}

/* The checks and the lookup a write starts with: -E2BIG for sizes an entry cannot hold,
 * else the key's hash and the link that holds (or would hold) its entry. */
static int store_locate(Store *s, const void *key, size_t key_size, const void *value, size_t value_size,
                        uint32_t *ret_hash, Entry ***ret_link) {
        assert(s);
        assert(key || key_size == 0);
        assert(value || value_size == 0);

        if (key_size > STORE_SIZE_MAX || value_size > STORE_SIZE_MAX ||
                key_size + value_size > SIZE_MAX - offsetof(Entry, data) - 1)
                return -E2BIG;

        *ret_hash = store_hash(s, key, key_size);
        *ret_link = store_find_link(s, key, key_size, *ret_hash);
        return 0;
}

int store_put(Store *s, const void *key, size_t key_size, const void *value, size_t value_size,
        uint64_t version, uint64_t *ret_version) {
        Entry **link;
        uint32_t hash;
        int r;

        r = store_locate(s, key, key_size, value, value_size, &hash, &link);
        if (r < 0)
                return r;

        if (!*link) {
                if (version != 0)
                        return -ENOENT;
                r = store_insert(s, link, hash, key, key_size, value, value_size, NULL);
                if (r < 0)
                        return r;
                if (ret_version)
                        *ret_version = 1;
                return 0;
        }

        if ((*link)->version != version)
                return -ESTALE;
        if (version == UINT64_MAX)
                return -EOVERFLOW;

        r = store_update(s, link, value, value_size);
        if (r < 0)
                return r;
        if (ret_version)
                *ret_version = (*link)->version;
        return 0;
}

static int store_set_at(Store *s, Entry **link, uint32_t hash, const void *key, size_t key_size, const void *value,
                        size_t value_size, uint64_t version, uint32_t owner) {
        int r;

        if (!*link) {
                Entry *e;

                r = store_insert(s, link, hash, key, key_size, value, value_size, &e);
                if (r < 0)
                        return r;
                e->version = version;
                e->owner = owner;
                return 0;
        }
        r = store_update(s, link, value, value_size);
        if (r < 0)
                return r;
        (*link)->version = version;
        (*link)->owner = owner;
        return 0;
}

int store_set(Store *s, const void *key, size_t key_size, const void *value, size_t value_size, uint64_t version,
              uint32_t owner) {
        Entry **link;
        uint32_t hash;
        int r;

        r = store_locate(s, key, key_size, value, value_size, &hash, &link);
        if (r < 0)
                return r;
        return store_set_at(s, link, hash, key, key_size, value, value_size, version, owner);
}

int store_find(Store *s, const void *key, size_t key_size, StoreFound *ret_found, size_t *ret_size,
               uint64_t *ret_version, uint32_t *ret_owner) {
        Entry **link;
        uint32_t hash;
        int r;

        assert(ret_found);

        r = store_locate(s, key, key_size, NULL, 0, &hash, &link);
        if (r < 0)
                return r;
        *ret_found = (StoreFound) { .link = link, .generation = s->generation, .hash = hash };
        if (!*link)
                return -ENOENT;
        if (ret_size)
                *ret_size = (*link)->value_size;
        if (ret_version)
                *ret_version = (*link)->version;
        if (ret_owner)
                *ret_owner = (*link)->owner;
        return 0;
}

int store_set_found(Store *s, const StoreFound *found, const void *key, size_t key_size, const void *value,
                    size_t value_size, uint64_t version, uint32_t owner) {
        assert(s);
        assert(found);
        assert(key || key_size == 0);
        assert(value || value_size == 0);

        if (found->generation != s->generation || found->link == NULL)
                return store_set(s, key, key_size, value, value_size, version, owner);
        if (value_size > STORE_SIZE_MAX || key_size + value_size > SIZE_MAX - offsetof(Entry, data) - 1)
                return -E2BIG;
        return store_set_at(s, found->link, found->hash, key, key_size, value, value_size, version, owner);
}

int store_foreach(Store *s, store_foreach_cb cb, void *userdata) {
        int r;

        assert(s);
        assert(cb);

        for (size_t i = 0; i < s->n_buckets; i++)
                for (Entry *e = s->buckets[i]; e; e = e->next) {
                        r = cb(e->data, e->key_size, e->data + e->key_size, e->value_size, e->version, e->owner,
                               userdata);
                        if (r < 0)
                                return r;
                }
        return 0;
}

size_t store_n_keys(const Store *s) {
        assert(s);
        return s->n_keys;
}

uint64_t store_data_bytes(const Store *s) {
        assert(s);
        return s->data_bytes;
}
