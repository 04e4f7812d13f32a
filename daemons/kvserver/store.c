/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "macro.h"
#include "order.h"
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
        uint64_t lease; /* 0: none */
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
        uint64_t floor; /* the highest deletion version */
        KeyOrder *order; /* built by the first List, kept from then on; NULL before */
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
        key_order_free(s->order);
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

/* Doubles the table once there is more than one key per bucket; it never shrinks. */
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
        e->lease = 0;
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
        /* Out of memory for the order: the next List builds it again. */
        if (s->order && key_order_insert(s->order, key, key_size, hash) < 0)
                s->order = key_order_free(s->order);

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
                Entry *e;

                if (version != 0)
                        return -ENOENT;
                if (s->floor == UINT64_MAX)
                        return -EOVERFLOW;
                r = store_insert(s, link, hash, key, key_size, value, value_size, &e);
                if (r < 0)
                        return r;
                e->version = s->floor + 1;
                if (ret_version)
                        *ret_version = e->version;
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

int store_remove(Store *s, const void *key, size_t key_size, uint64_t deletion_version) {
        Entry **link, *e;

        assert(s);
        if (key_size > STORE_SIZE_MAX)
                return -ENOENT;
        link = store_find_link(s, key, key_size, store_hash(s, key, key_size));
        e = *link;
        if (!e)
                return -ENOENT;
        *link = e->next;
        s->generation++;
        s->n_keys--;
        s->data_bytes -= e->key_size + e->value_size;
        if (s->order)
                key_order_remove(s->order, e->data, e->key_size);
        free(e);
        store_raise_floor(s, deletion_version);
        return 0;
}

int store_delete(Store *s, const void *key, size_t key_size, uint64_t version, uint64_t *ret_deletion_version) {
        Entry *e = store_lookup(s, key, key_size);

        if (!e)
                return -ENOENT;
        if (e->version != version)
                return -ESTALE;
        if (version == UINT64_MAX)
                return -EOVERFLOW;
        if (ret_deletion_version)
                *ret_deletion_version = version + 1;
        return store_remove(s, key, key_size, version + 1);
}

uint64_t store_floor(const Store *s) {
        assert(s);
        return s->floor;
}

void store_raise_floor(Store *s, uint64_t floor) {
        assert(s);
        s->floor = MAX(s->floor, floor);
}

int store_get_lease(Store *s, const void *key, size_t key_size, uint64_t *ret_lease) {
        Entry *e = store_lookup(s, key, key_size);

        if (!e)
                return -ENOENT;
        *ret_lease = e->lease;
        return 0;
}

int store_set_lease(Store *s, const void *key, size_t key_size, uint64_t lease) {
        Entry *e = store_lookup(s, key, key_size);

        if (!e)
                return -ENOENT;
        e->lease = lease;
        return 0;
}

/* List: the entries after a key, the largest of them kept in a max-heap of limit
 * entries while the table is walked once, then sorted. */

static int entry_compare(const Entry *a, const Entry *b) {
        int c = memcmp(a->data, b->data, MIN(a->key_size, b->key_size));

        if (c != 0)
                return c;
        return a->key_size < b->key_size ? -1 : a->key_size > b->key_size;
}

static int key_compare(const Entry *e, const void *key, size_t key_size) {
        int c = memcmp(e->data, key, MIN((size_t) e->key_size, key_size));

        if (c != 0)
                return c;
        return e->key_size < key_size ? -1 : e->key_size > key_size;
}

static void heap_swap(Entry **heap, size_t a, size_t b) {
        Entry *t = heap[a];

        heap[a] = heap[b];
        heap[b] = t;
}

static void heap_sift_down(Entry **heap, size_t n, size_t i) {
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, m = i;

                if (l < n && entry_compare(heap[l], heap[m]) > 0)
                        m = l;
                if (r < n && entry_compare(heap[r], heap[m]) > 0)
                        m = r;
                if (m == i)
                        return;
                heap_swap(heap, i, m);
                i = m;
        }
}

static void heap_sift_up(Entry **heap, size_t i) {
        while (i > 0 && entry_compare(heap[(i - 1) / 2], heap[i]) < 0) {
                heap_swap(heap, (i - 1) / 2, i);
                i = (i - 1) / 2;
        }
}

static int entry_qsort_compare(const void *a, const void *b) {
        return entry_compare(*(Entry *const *) a, *(Entry *const *) b);
}

static StoreItem store_item(const Entry *e) {
        return (StoreItem) {
                .key = e->data,
                .key_size = e->key_size,
                .value = e->data + e->key_size,
                .value_size = e->value_size,
                .version = e->version,
                .lease = e->lease,
        };
}

static int entry_qsort_compare(const void *a, const void *b);

/* Sorts the keys once and builds the order from them: O(n log n) of memcmp(), without
 * an insertion per key. */
static void store_build_order(Store *s) {
        _cleanup_(key_order_freep) KeyOrder *o = key_order_new();
        _cleanup_free_ KeyOrderItem *items = NULL;
        _cleanup_free_ Entry **entries = NULL;
        size_t n = 0;

        entries = calloc(MAX(s->n_keys, (size_t) 1), sizeof(Entry *));
        items = calloc(MAX(s->n_keys, (size_t) 1), sizeof(KeyOrderItem));
        if (!o || !entries || !items)
                return;
        for (size_t i = 0; i < s->n_buckets; i++)
                for (Entry *e = s->buckets[i]; e; e = e->next)
                        entries[n++] = e;
        qsort(entries, n, sizeof(Entry *), entry_qsort_compare);
        for (size_t i = 0; i < n; i++)
                items[i] = (KeyOrderItem) {
                        .key = entries[i]->data,
                        .key_size = entries[i]->key_size,
                        .priority = entries[i]->hash,
                };
        if (key_order_build(o, items, n) < 0)
                return;
        s->order = TAKE_PTR(o);
}

typedef struct ListPage {
        Store *store;
        StoreItem *items;
        size_t n, limit;
        bool more;
} ListPage;

static int list_page_add(const void *key, size_t key_size, void *userdata) {
        ListPage *p = userdata;
        Entry *e = store_lookup(p->store, key, key_size);

        assert(e);
        if (p->n == p->limit) {
                p->more = true;
                return 1;
        }
        p->items[p->n++] = store_item(e);
        return 0;
}

int store_list(Store *s, const void *prefix, size_t prefix_size, const void *after, size_t after_size,
               size_t limit, StoreItem **ret_items, size_t *ret_n, bool *ret_more) {
        _cleanup_free_ Entry **heap = NULL;
        StoreItem *items;
        size_t n = 0;
        bool more = false;

        assert(s);
        assert(limit > 0);
        assert(ret_items);
        assert(ret_n);

        if (!s->order)
                store_build_order(s);
        if (s->order) {
                ListPage p = { .store = s, .limit = limit };

                p.items = calloc(MIN(limit, s->n_keys) + 1, sizeof(StoreItem));
                if (!p.items)
                        return -ENOMEM;
                (void) key_order_walk(s->order, prefix, prefix_size, after, after_size, list_page_add, &p);
                *ret_items = p.items;
                *ret_n = p.n;
                if (ret_more)
                        *ret_more = p.more;
                return 0;
        }

        /* Without the order (out of memory for it): one walk of the table, the first
         * limit + 1 keys kept in a heap; the extra one says whether more follow. */
        heap = calloc(MIN(limit, s->n_keys) + 1, sizeof(Entry *));
        if (!heap)
                return -ENOMEM;

        for (size_t i = 0; i < s->n_buckets; i++)
                for (Entry *e = s->buckets[i]; e; e = e->next) {
                        if (e->key_size < prefix_size || (prefix_size > 0 && memcmp(e->data, prefix, prefix_size) != 0))
                                continue;
                        if (after && key_compare(e, after, after_size) <= 0)
                                continue;
                        if (n < limit + 1) {
                                heap[n] = e;
                                heap_sift_up(heap, n++);
                        } else if (entry_compare(e, heap[0]) < 0) {
                                heap[0] = e;
                                heap_sift_down(heap, n, 0);
                        }
                }

        qsort(heap, n, sizeof(Entry *), entry_qsort_compare);
        if (n > limit) {
                n = limit;
                more = true;
        }
        items = calloc(MAX(n, (size_t) 1), sizeof(StoreItem));
        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                items[i] = store_item(heap[i]);
        *ret_items = items;
        *ret_n = n;
        if (ret_more)
                *ret_more = more;
        return 0;
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
