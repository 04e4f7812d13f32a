/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"
#include "macro.h"

/* Watchers of keys and of key prefixes, and the changes queued for each. A change is one
 * reference-counted WatchEvent however many watchers it goes to: a watcher holds only
 * references, and what it holds is bounded (max_queue bytes of keys and values), past which
 * it overflows and holds nothing. Finding a key's watchers is one hash lookup, and nothing
 * at all while there are none; prefix watchers are checked one by one. Knows nothing of
 * connections: the owner of a watcher is told through a callback that it has something to
 * send, and takes the events with watcher_pop(). */

typedef struct WatchEvent {
        unsigned n_ref;
        bool deleted;
        uint64_t version;
        uint64_t lease;
        uint32_t key_size, value_size;
        char data[];            /* key, value, NUL */
} WatchEvent;

typedef struct Watchers Watchers;
typedef struct WatchKey WatchKey;

typedef struct Watcher {
        Watchers *watchers;
        void *userdata;
        WatchKey *key;          /* a key watcher's key; NULL for a prefix watcher */
        char *prefix;           /* a prefix watcher's */
        size_t prefix_size;
        uint64_t version;       /* key: the last version queued; prefix: the highest */
        WatchEvent **queue;     /* a ring */
        size_t head, n_queued, n_allocated;
        size_t queued_bytes;
        bool overflowed;
        LIST_FIELDS(struct Watcher, watchers);
} Watcher;

/* The watcher has something to take (or overflowed). */
typedef void (*watcher_ready_t)(Watcher *w, void *userdata);

int watchers_new(size_t max_watchers, size_t max_queue, watcher_ready_t ready, void *userdata, Watchers **ret);
Watchers *watchers_free(Watchers *ws);
DEFINE_TRIVIAL_CLEANUP_FUNC(Watchers *, watchers_free);

/* A watcher of key (prefix false) or of every key starting with it, of the changes after
 * version. -EUSERS at max_watchers, -ENOMEM. */
int watcher_new(Watchers *ws, const void *key, size_t key_size, bool prefix, uint64_t version, void *userdata,
                Watcher **ret);
Watcher *watcher_free(Watcher *w);

/* A change: queued to every watcher it concerns (a key watcher only if version is above
 * its last), each of which is then told. */
void watchers_changed(Watchers *ws, const void *key, size_t key_size, const void *value, size_t value_size,
                      uint64_t version, bool deleted, uint64_t lease);
/* The same for one watcher: the state it starts from. */
void watcher_push(Watcher *w, const void *key, size_t key_size, const void *value, size_t value_size,
                  uint64_t version, bool deleted, uint64_t lease);

/* The oldest queued event (the caller unrefs it), or NULL. */
WatchEvent *watcher_pop(Watcher *w);
WatchEvent *watch_event_unref(WatchEvent *e);

size_t watchers_size(const Watchers *ws);
size_t watchers_max(const Watchers *ws);
