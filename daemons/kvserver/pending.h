/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "quota.h"

/* The Puts that wait for their log record to become durable, in the order of their
 * sequence numbers, and an index of the newest one per key: the overlay that later Puts
 * are checked against while the store holds only what is durable (kv-state.c). An entry
 * may also be a deferred answer that writes nothing: a version check that depended on a
 * Put still waiting, answered only once what it saw is durable. */

/* What an entry does once durable. A Delete is in the index as the newest state of its
 * key (deleted); Grant and Revoke are answers that wait for their record. */
typedef enum PendingKind {
        PENDING_PUT,            /* store the value */
        PENDING_ANSWER,         /* answer result, nothing to apply */
        PENDING_DELETE,         /* remove the key, deleted at version */
        PENDING_GRANT,          /* answer a Grant of lease (ttl in version) */
        PENDING_REVOKE,         /* end lease, deleting its keys */
} PendingKind;

typedef struct PendingPut {
        struct PendingPut *queue_next;
        struct PendingPut *index_next;
        void *waiter;           /* who gets the answer; NULL once it went away */
        uint64_t seqnum;        /* answered once this record is durable */
        uint64_t version;       /* the version the Put creates; 0 for a deferred answer */
        int result;             /* a deferred answer: -ESTALE or -ENOENT */
        QuotaMove quota;        /* of the Put; quota.uid is its writer */
        uint64_t lease;         /* the lease a Put attaches, or the lease of Grant and Revoke */
        PendingKind kind;
        bool indexed;
        uint32_t hash;
        uint32_t key_size;
        uint32_t value_size;
        char data[];            /* key, then value */
} PendingPut;

typedef struct Pending Pending;

int pending_new(Pending **ret);
/* Frees every entry without answering anything. */
Pending *pending_free(Pending *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Pending *, pending_free);

/* The newest Put waiting on key, or NULL. */
PendingPut *pending_find(Pending *p, const void *key, size_t key_size);
/* Queues a Put (and makes it the newest for its key). seqnum must not be lower than the
 * last one queued. */
int pending_add_put(Pending *p, const void *key, size_t key_size, const void *value, size_t value_size,
                    uint64_t version, uint64_t seqnum, void *waiter, PendingPut **ret);
/* Queues a deferred answer. */
int pending_add_answer(Pending *p, int result, uint64_t seqnum, void *waiter, PendingPut **ret);

/* The oldest entry, if its seqnum is at most upto: taken out of the queue and the index.
 * The caller frees it with free(). */
PendingPut *pending_pop(Pending *p, uint64_t upto);
/* The oldest entry, whatever its seqnum, or NULL. */
PendingPut *pending_pop_any(Pending *p);

size_t pending_size(const Pending *p);

/* Calls cb for the newest Put of every key in the index. */
typedef int (*pending_foreach_cb)(const PendingPut *pp, void *userdata);
int pending_foreach_newest(Pending *p, pending_foreach_cb cb, void *userdata);

static inline const char *pending_key(const PendingPut *pp) {
        return pp->data;
}
static inline const char *pending_value(const PendingPut *pp) {
        return pp->data + pp->key_size;
}
