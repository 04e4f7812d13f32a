/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* Leases: a number granted to a uid with a time to live; keys attached to a lease are
 * deleted when it ends. This is the table of leases, ordered by their deadlines (a binary
 * heap, so that one timer for the earliest serves all), with the keys attached to each.
 * Knows nothing of clocks or the log: the caller gives the time (CLOCK_MONOTONIC µs) and
 * writes the records (kv-state.c). */

typedef struct LeaseKey {
        char *data;
        size_t size;
} LeaseKey;

typedef struct Lease {
        uint64_t id;
        uint64_t ttl;           /* seconds */
        uint64_t deadline;      /* µs, CLOCK_MONOTONIC; UINT64_MAX while ending */
        uint32_t uid;           /* who granted it */
        bool ending;            /* its Revoke (or expiry) is written, not applied yet */
        size_t heap_index;
        struct Lease *hash_next;
        LeaseKey *keys;         /* attached, in the store */
        size_t n_keys, n_allocated;
} Lease;

typedef struct Leases Leases;

/* A lease's time to live is 1 s to a year. */
#define LEASE_TTL_MAX (365ULL * 24 * 3600)

int leases_new(Leases **ret);
Leases *leases_free(Leases *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(Leases *, leases_free);

Lease *leases_get(Leases *l, uint64_t id);
/* A lease ending at now + ttl. -EEXIST, -ENOMEM. */
int leases_add(Leases *l, uint64_t id, uint32_t uid, uint64_t ttl, uint64_t now, Lease **ret);
/* Removes and frees it with its key list. */
void leases_remove(Leases *l, Lease *lease);
/* Renews it: now it ends at now + ttl. */
void leases_renew(Leases *l, Lease *lease, uint64_t now);
/* Moves its deadline (an expiry that could not be written is tried again later). */
void leases_set_deadline(Leases *l, Lease *lease, uint64_t deadline);
/* Marks it ending (no deadline) or, with ending false, back to a full ttl from now. */
void leases_set_ending(Leases *l, Lease *lease, bool ending, uint64_t now);
/* The lease with the earliest deadline, or NULL. */
Lease *leases_earliest(Leases *l);
size_t leases_size(const Leases *l);
/* Calls cb for every lease; a negative return stops the walk. */
typedef int (*leases_foreach_cb)(Lease *lease, void *userdata);
int leases_foreach(Leases *l, leases_foreach_cb cb, void *userdata);

/* The id the next Grant gets (1 at first): ids are never reused. */
uint64_t leases_next_id(const Leases *l);
/* Raises the next id above id (loading). */
void leases_saw_id(Leases *l, uint64_t id);

/* The keys attached to a lease. Attaching a key already there does nothing. */
bool lease_has_key(const Lease *lease, const void *key, size_t key_size);
int lease_attach(Lease *lease, const void *key, size_t key_size);
void lease_detach(Lease *lease, const void *key, size_t key_size);
