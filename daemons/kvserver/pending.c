/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "pending.h"
#include "siphash.h"

#define PENDING_INITIAL_BUCKETS 64U

struct Pending {
        PendingPut *head, *tail;
        size_t n_queued;
        PendingPut **buckets;
        size_t n_buckets;       /* a power of two */
        size_t n_indexed;
        uint8_t hash_key[16];
};

int pending_new(Pending **ret) {
        _cleanup_free_ Pending *p = NULL;

        assert(ret);

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        if (getrandom(p->hash_key, sizeof(p->hash_key), 0) != (ssize_t) sizeof(p->hash_key))
                return errno > 0 ? -errno : -EIO;
        p->buckets = calloc(PENDING_INITIAL_BUCKETS, sizeof(PendingPut *));
        if (!p->buckets)
                return -ENOMEM;
        p->n_buckets = PENDING_INITIAL_BUCKETS;
        *ret = TAKE_PTR(p);
        return 0;
}

Pending *pending_free(Pending *p) {
        if (!p)
                return NULL;
        for (PendingPut *pp = p->head, *next; pp; pp = next) {
                next = pp->queue_next;
                free(pp);
        }
        free(p->buckets);
        return mfree(p);
}

static uint32_t pending_hash(const Pending *p, const void *key, size_t key_size) {
        uint64_t h = siphash13(key, key_size, p->hash_key);

        return (uint32_t) (h ^ (h >> 32));
}

static PendingPut **index_find(Pending *p, const void *key, size_t key_size, uint32_t hash) {
        PendingPut **link = &p->buckets[hash & (p->n_buckets - 1)];

        for (; *link; link = &(*link)->index_next)
                if ((*link)->hash == hash && (*link)->key_size == key_size &&
                    memcmp((*link)->data, key, key_size) == 0)
                        break;
        return link;
}

static void index_grow(Pending *p) {
        size_t n = p->n_buckets * 2;
        PendingPut **buckets;

        if (n - 1 > UINT32_MAX)
                return;
        buckets = calloc(n, sizeof(PendingPut *));
        if (!buckets)
                return; /* longer chains */
        for (size_t i = 0; i < p->n_buckets; i++)
                for (PendingPut *pp = p->buckets[i], *next; pp; pp = next) {
                        PendingPut **b = &buckets[pp->hash & (n - 1)];

                        next = pp->index_next;
                        pp->index_next = *b;
                        *b = pp;
                }
        free(p->buckets);
        p->buckets = buckets;
        p->n_buckets = n;
}

static void index_remove(Pending *p, PendingPut *pp) {
        PendingPut **link;

        if (!pp->indexed)
                return;
        link = index_find(p, pp->data, pp->key_size, pp->hash);
        assert(*link == pp);
        *link = pp->index_next;
        pp->index_next = NULL;
        pp->indexed = false;
        p->n_indexed--;
}

PendingPut *pending_find(Pending *p, const void *key, size_t key_size) {
        assert(p);
        if (p->n_indexed == 0 || key_size > UINT32_MAX)
                return NULL;
        return *index_find(p, key, key_size, pending_hash(p, key, key_size));
}

static void queue_append(Pending *p, PendingPut *pp) {
        assert(!p->tail || p->tail->seqnum <= pp->seqnum);
        pp->queue_next = NULL;
        if (p->tail)
                p->tail->queue_next = pp;
        else
                p->head = pp;
        p->tail = pp;
        p->n_queued++;
}

int pending_add_put(Pending *p, const void *key, size_t key_size, const void *value, size_t value_size,
                    uint64_t version, uint64_t seqnum, void *waiter, PendingPut **ret) {
        PendingPut *pp, **link;

        assert(p);
        assert(version > 0);

        if (key_size > UINT32_MAX || value_size > UINT32_MAX)
                return -E2BIG;
        /* At least sizeof(PendingPut): the assignment below writes its tail padding too. */
        pp = malloc(MAX(sizeof(PendingPut), offsetof(PendingPut, data) + key_size + value_size));
        if (!pp)
                return -ENOMEM;
        *pp = (PendingPut) {
                .waiter = waiter,
                .seqnum = seqnum,
                .version = version,
                .indexed = true,
                .hash = pending_hash(p, key, key_size),
                .key_size = (uint32_t) key_size,
                .value_size = (uint32_t) value_size,
        };
        if (key_size > 0)
                memcpy(pp->data, key, key_size);
        if (value_size > 0)
                memcpy(pp->data + key_size, value, value_size);

        /* The newest Put of a key replaces the older one in the index. */
        link = index_find(p, key, key_size, pp->hash);
        if (*link) {
                PendingPut *old = *link;

                pp->index_next = old->index_next;
                old->index_next = NULL;
                old->indexed = false;
                *link = pp;
        } else {
                *link = pp;
                p->n_indexed++;
                if (p->n_indexed > p->n_buckets)
                        index_grow(p);
        }
        queue_append(p, pp);
        if (ret)
                *ret = pp;
        return 0;
}

int pending_add_answer(Pending *p, int result, uint64_t seqnum, void *waiter, PendingPut **ret) {
        PendingPut *pp;

        assert(p);

        pp = malloc(sizeof(PendingPut));
        if (!pp)
                return -ENOMEM;
        *pp = (PendingPut) {
                .waiter = waiter,
                .seqnum = seqnum,
                .result = result,
                .kind = PENDING_ANSWER,
        };
        queue_append(p, pp);
        if (ret)
                *ret = pp;
        return 0;
}

PendingPut *pending_pop(Pending *p, uint64_t upto) {
        PendingPut *pp;

        assert(p);

        pp = p->head;
        if (!pp || pp->seqnum > upto)
                return NULL;
        p->head = pp->queue_next;
        if (!p->head)
                p->tail = NULL;
        pp->queue_next = NULL;
        p->n_queued--;
        index_remove(p, pp);
        return pp;
}

PendingPut *pending_pop_any(Pending *p) {
        return pending_pop(p, UINT64_MAX);
}

size_t pending_size(const Pending *p) {
        assert(p);
        return p->n_queued;
}

int pending_foreach_newest(Pending *p, pending_foreach_cb cb, void *userdata) {
        int r;

        assert(p);
        assert(cb);

        if (p->n_indexed == 0)
                return 0;
        for (size_t i = 0; i < p->n_buckets; i++)
                for (PendingPut *pp = p->buckets[i]; pp; pp = pp->index_next) {
                        r = cb(pp, userdata);
                        if (r < 0)
                                return r;
                }
        return 0;
}
