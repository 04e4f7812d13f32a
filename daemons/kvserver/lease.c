/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lease.h"

#define LEASES_INITIAL_BUCKETS 64U

struct Leases {
        Lease **buckets;        /* by id */
        size_t n_buckets;       /* a power of two */
        Lease **heap;           /* by deadline */
        size_t n_leases, n_heap_allocated;
        uint64_t next_id;
};

int leases_new(Leases **ret) {
        _cleanup_free_ Leases *l = NULL;

        assert(ret);
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->buckets = calloc(LEASES_INITIAL_BUCKETS, sizeof(Lease *));
        if (!l->buckets)
                return -ENOMEM;
        l->n_buckets = LEASES_INITIAL_BUCKETS;
        l->next_id = 1;
        *ret = TAKE_PTR(l);
        return 0;
}

static void lease_free(Lease *lease) {
        for (size_t i = 0; i < lease->n_keys; i++)
                free(lease->keys[i].data);
        free(lease->keys);
        free(lease);
}

Leases *leases_free(Leases *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n_leases; i++)
                lease_free(l->heap[i]);
        free(l->heap);
        free(l->buckets);
        return mfree(l);
}

static size_t bucket_of(const Leases *l, uint64_t id) {
        /* Ids are sequential: a multiplicative hash spreads them anyway. */
        return (size_t) ((id * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & (l->n_buckets - 1);
}

Lease *leases_get(Leases *l, uint64_t id) {
        assert(l);
        for (Lease *lease = l->buckets[bucket_of(l, id)]; lease; lease = lease->hash_next)
                if (lease->id == id)
                        return lease;
        return NULL;
}

static void heap_set(Leases *l, size_t i, Lease *lease) {
        l->heap[i] = lease;
        lease->heap_index = i;
}

static void heap_up(Leases *l, size_t i) {
        Lease *lease = l->heap[i];

        while (i > 0 && l->heap[(i - 1) / 2]->deadline > lease->deadline) {
                heap_set(l, i, l->heap[(i - 1) / 2]);
                i = (i - 1) / 2;
        }
        heap_set(l, i, lease);
}

static void heap_down(Leases *l, size_t i) {
        Lease *lease = l->heap[i];

        for (;;) {
                size_t c = 2 * i + 1;

                if (c >= l->n_leases)
                        break;
                if (c + 1 < l->n_leases && l->heap[c + 1]->deadline < l->heap[c]->deadline)
                        c++;
                if (l->heap[c]->deadline >= lease->deadline)
                        break;
                heap_set(l, i, l->heap[c]);
                i = c;
        }
        heap_set(l, i, lease);
}

static void heap_fix(Leases *l, size_t i) {
        if (i > 0 && l->heap[(i - 1) / 2]->deadline > l->heap[i]->deadline)
                heap_up(l, i);
        else
                heap_down(l, i);
}

static void leases_grow(Leases *l) {
        size_t n = l->n_buckets * 2;
        Lease **buckets = calloc(n, sizeof(Lease *));

        if (!buckets)
                return; /* longer chains */
        for (size_t i = 0; i < l->n_leases; i++) {
                Lease *lease = l->heap[i];
                size_t b = (size_t) ((lease->id * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & (n - 1);

                lease->hash_next = buckets[b];
                buckets[b] = lease;
        }
        free(l->buckets);
        l->buckets = buckets;
        l->n_buckets = n;
}

int leases_add(Leases *l, uint64_t id, uint32_t uid, uint64_t ttl, uint64_t now, Lease **ret) {
        Lease *lease;
        size_t b;

        assert(l);
        assert(id > 0);
        assert(ttl > 0 && ttl <= LEASE_TTL_MAX);

        if (leases_get(l, id))
                return -EEXIST;
        if (l->n_leases == l->n_heap_allocated) {
                size_t n = MAX(l->n_heap_allocated * 2, (size_t) 16);
                Lease **heap = reallocarray(l->heap, n, sizeof(Lease *));

                if (!heap)
                        return -ENOMEM;
                l->heap = heap;
                l->n_heap_allocated = n;
        }
        lease = calloc(1, sizeof(*lease));
        if (!lease)
                return -ENOMEM;
        lease->id = id;
        lease->uid = uid;
        lease->ttl = ttl;
        lease->deadline = now + ttl * UINT64_C(1000000);
        b = bucket_of(l, id);
        lease->hash_next = l->buckets[b];
        l->buckets[b] = lease;
        l->heap[l->n_leases] = lease;
        heap_up(l, l->n_leases++);
        leases_saw_id(l, id);
        if (l->n_leases > l->n_buckets)
                leases_grow(l);
        if (ret)
                *ret = lease;
        return 0;
}

void leases_remove(Leases *l, Lease *lease) {
        Lease **link;
        size_t i;

        assert(l);
        assert(lease);

        for (link = &l->buckets[bucket_of(l, lease->id)]; *link != lease; link = &(*link)->hash_next)
                assert(*link);
        *link = lease->hash_next;

        i = lease->heap_index;
        l->n_leases--;
        if (i < l->n_leases) {
                heap_set(l, i, l->heap[l->n_leases]);
                heap_fix(l, i);
        }
        lease_free(lease);
}

void leases_renew(Leases *l, Lease *lease, uint64_t now) {
        assert(lease);
        if (!lease->ending)
                leases_set_deadline(l, lease, now + lease->ttl * UINT64_C(1000000));
}

void leases_set_deadline(Leases *l, Lease *lease, uint64_t deadline) {
        assert(l);
        assert(lease);
        lease->deadline = deadline;
        heap_fix(l, lease->heap_index);
}

void leases_set_ending(Leases *l, Lease *lease, bool ending, uint64_t now) {
        assert(l);
        assert(lease);
        lease->ending = ending;
        lease->deadline = ending ? UINT64_MAX : now + lease->ttl * UINT64_C(1000000);
        heap_fix(l, lease->heap_index);
}

Lease *leases_earliest(Leases *l) {
        assert(l);
        return l->n_leases > 0 ? l->heap[0] : NULL;
}

size_t leases_size(const Leases *l) {
        assert(l);
        return l->n_leases;
}

int leases_foreach(Leases *l, leases_foreach_cb cb, void *userdata) {
        int r;

        assert(l);
        for (size_t i = 0; i < l->n_leases; i++) {
                r = cb(l->heap[i], userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

uint64_t leases_next_id(const Leases *l) {
        assert(l);
        return l->next_id;
}

void leases_saw_id(Leases *l, uint64_t id) {
        assert(l);
        if (id >= l->next_id && id < UINT64_MAX)
                l->next_id = id + 1;
}

static ssize_t lease_find_key(const Lease *lease, const void *key, size_t key_size) {
        for (size_t i = 0; i < lease->n_keys; i++)
                if (lease->keys[i].size == key_size && memcmp(lease->keys[i].data, key, key_size) == 0)
                        return (ssize_t) i;
        return -1;
}

bool lease_has_key(const Lease *lease, const void *key, size_t key_size) {
        assert(lease);
        return lease_find_key(lease, key, key_size) >= 0;
}

int lease_attach(Lease *lease, const void *key, size_t key_size) {
        char *copy;

        assert(lease);
        if (lease_find_key(lease, key, key_size) >= 0)
                return 0;
        if (lease->n_keys == lease->n_allocated) {
                size_t n = MAX(lease->n_allocated * 2, (size_t) 4);
                LeaseKey *keys = reallocarray(lease->keys, n, sizeof(LeaseKey));

                if (!keys)
                        return -ENOMEM;
                lease->keys = keys;
                lease->n_allocated = n;
        }
        copy = malloc(MAX(key_size, (size_t) 1));
        if (!copy)
                return -ENOMEM;
        if (key_size > 0)
                memcpy(copy, key, key_size);
        lease->keys[lease->n_keys++] = (LeaseKey) { .data = copy, .size = key_size };
        return 0;
}

void lease_detach(Lease *lease, const void *key, size_t key_size) {
        ssize_t i;

        assert(lease);
        i = lease_find_key(lease, key, key_size);
        if (i < 0)
                return;
        free(lease->keys[i].data);
        lease->keys[i] = lease->keys[--lease->n_keys];
}
