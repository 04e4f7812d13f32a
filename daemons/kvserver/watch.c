/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "siphash.h"
#include "watch.h"

#define WATCH_INITIAL_BUCKETS 64U
/* What an event costs a watcher's queue beyond its key and value. */
#define WATCH_EVENT_OVERHEAD 64U

struct WatchKey {
        WatchKey *next;
        uint32_t hash;
        Watcher *watchers;
        size_t key_size;
        char data[];
};

struct Watchers {
        WatchKey **buckets;
        size_t n_buckets, n_keys;
        Watcher *prefix_watchers;
        size_t n_watchers, max_watchers, max_queue;
        watcher_ready_t ready;
        void *userdata;
        uint8_t hash_key[16];
};

int watchers_new(size_t max_watchers, size_t max_queue, watcher_ready_t ready, void *userdata, Watchers **ret) {
        _cleanup_free_ Watchers *ws = NULL;

        assert(ready);
        assert(ret);

        ws = calloc(1, sizeof(*ws));
        if (!ws)
                return -ENOMEM;
        if (getrandom(ws->hash_key, sizeof(ws->hash_key), 0) != (ssize_t) sizeof(ws->hash_key))
                return errno > 0 ? -errno : -EIO;
        ws->buckets = calloc(WATCH_INITIAL_BUCKETS, sizeof(WatchKey *));
        if (!ws->buckets)
                return -ENOMEM;
        ws->n_buckets = WATCH_INITIAL_BUCKETS;
        ws->max_watchers = max_watchers;
        ws->max_queue = max_queue;
        ws->ready = ready;
        ws->userdata = userdata;
        *ret = TAKE_PTR(ws);
        return 0;
}

Watchers *watchers_free(Watchers *ws) {
        if (!ws)
                return NULL;
        /* Watchers belong to their connections, which are closed first. */
        assert(ws->n_watchers == 0);
        free(ws->buckets);
        return mfree(ws);
}

static uint32_t watch_hash(const Watchers *ws, const void *key, size_t key_size) {
        uint64_t h = siphash13(key, key_size, ws->hash_key);

        return (uint32_t) (h ^ (h >> 32));
}

static WatchKey **watch_key_find(Watchers *ws, const void *key, size_t key_size, uint32_t hash) {
        WatchKey **link = &ws->buckets[hash & (ws->n_buckets - 1)];

        for (; *link; link = &(*link)->next)
                if ((*link)->hash == hash && (*link)->key_size == key_size &&
                    memcmp((*link)->data, key, key_size) == 0)
                        break;
        return link;
}

static void watch_keys_grow(Watchers *ws) {
        size_t n = ws->n_buckets * 2;
        WatchKey **buckets = calloc(n, sizeof(WatchKey *));

        if (!buckets)
                return; /* longer chains */
        for (size_t i = 0; i < ws->n_buckets; i++)
                for (WatchKey *wk = ws->buckets[i], *next; wk; wk = next) {
                        next = wk->next;
                        wk->next = buckets[wk->hash & (n - 1)];
                        buckets[wk->hash & (n - 1)] = wk;
                }
        free(ws->buckets);
        ws->buckets = buckets;
        ws->n_buckets = n;
}

int watcher_new(Watchers *ws, const void *key, size_t key_size, bool prefix, uint64_t version, void *userdata,
                Watcher **ret) {
        _cleanup_free_ Watcher *w = NULL;

        assert(ws);
        assert(ret);

        if (ws->max_watchers > 0 && ws->n_watchers >= ws->max_watchers)
                return -EUSERS;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->watchers = ws;
        w->userdata = userdata;
        w->version = version;

        if (prefix) {
                w->prefix = malloc(MAX(key_size, (size_t) 1));
                if (!w->prefix)
                        return -ENOMEM;
                if (key_size > 0)
                        memcpy(w->prefix, key, key_size);
                w->prefix_size = key_size;
                LIST_PREPEND(watchers, ws->prefix_watchers, w);
        } else {
                uint32_t hash = watch_hash(ws, key, key_size);
                WatchKey **link = watch_key_find(ws, key, key_size, hash);

                if (!*link) {
                        WatchKey *wk = malloc(offsetof(WatchKey, data) + MAX(key_size, (size_t) 1));

                        if (!wk)
                                return -ENOMEM;
                        *wk = (WatchKey) { .hash = hash, .key_size = key_size };
                        if (key_size > 0)
                                memcpy(wk->data, key, key_size);
                        *link = wk;
                        if (++ws->n_keys > ws->n_buckets)
                                watch_keys_grow(ws);
                }
                w->key = *watch_key_find(ws, key, key_size, hash);
                LIST_PREPEND(watchers, w->key->watchers, w);
        }
        ws->n_watchers++;
        *ret = TAKE_PTR(w);
        return 0;
}

static void watcher_clear(Watcher *w) {
        while (w->n_queued > 0)
                watch_event_unref(watcher_pop(w));
        w->queued_bytes = 0;
}

Watcher *watcher_free(Watcher *w) {
        Watchers *ws;

        if (!w)
                return NULL;
        ws = w->watchers;
        watcher_clear(w);
        free(w->queue);
        if (w->key) {
                WatchKey *wk = w->key;

                LIST_REMOVE(watchers, wk->watchers, w);
                if (!wk->watchers) {
                        WatchKey **link = watch_key_find(ws, wk->data, wk->key_size, wk->hash);

                        assert(*link == wk);
                        *link = wk->next;
                        ws->n_keys--;
                        free(wk);
                }
        } else {
                LIST_REMOVE(watchers, ws->prefix_watchers, w);
                free(w->prefix);
        }
        ws->n_watchers--;
        return mfree(w);
}

WatchEvent *watch_event_unref(WatchEvent *e) {
        if (e && --e->n_ref == 0)
                free(e);
        return NULL;
}

static WatchEvent *watch_event_new(const void *key, size_t key_size, const void *value, size_t value_size,
                                   uint64_t version, bool deleted, uint64_t lease) {
        WatchEvent *e;

        if (key_size > UINT32_MAX || value_size > UINT32_MAX)
                return NULL;
        e = malloc(offsetof(WatchEvent, data) + key_size + value_size + 1);
        if (!e)
                return NULL;
        e->n_ref = 1;
        e->deleted = deleted;
        e->version = version;
        e->lease = lease;
        e->key_size = (uint32_t) key_size;
        e->value_size = (uint32_t) value_size;
        if (key_size > 0)
                memcpy(e->data, key, key_size);
        if (value_size > 0)
                memcpy(e->data + key_size, value, value_size);
        e->data[key_size + value_size] = '\0';
        return e;
}

static size_t event_cost(const WatchEvent *e) {
        return WATCH_EVENT_OVERHEAD + e->key_size + e->value_size;
}

/* Queues e (taking a reference) and tells the owner; past the bound the queue is dropped
 * and the watcher marked overflowed: its owner ends it. */
static void watcher_queue(Watcher *w, WatchEvent *e) {
        Watchers *ws = w->watchers;

        if (w->overflowed)
                return;
        if (w->n_queued > 0 && ws->max_queue > 0 && w->queued_bytes + event_cost(e) > ws->max_queue) {
                watcher_clear(w);
                w->overflowed = true;
                ws->ready(w, ws->userdata);
                return;
        }
        if (w->n_queued == w->n_allocated) {
                size_t n = MAX(w->n_allocated * 2, (size_t) 4);
                WatchEvent **q = reallocarray(NULL, n, sizeof(WatchEvent *));

                if (!q) {
                        /* Nothing is dropped silently: the watcher resumes. */
                        watcher_clear(w);
                        w->overflowed = true;
                        ws->ready(w, ws->userdata);
                        return;
                }
                for (size_t i = 0; i < w->n_queued; i++)
                        q[i] = w->queue[(w->head + i) % w->n_allocated];
                free(w->queue);
                w->queue = q;
                w->head = 0;
                w->n_allocated = n;
        }
        e->n_ref++;
        w->queue[(w->head + w->n_queued++) % w->n_allocated] = e;
        w->queued_bytes += event_cost(e);
        ws->ready(w, ws->userdata);
}

static bool watcher_wants(const Watcher *w, const void *key, size_t key_size, uint64_t version) {
        if (w->key)
                return version > w->version;
        return key_size >= w->prefix_size && memcmp(key, w->prefix, w->prefix_size) == 0;
}

void watchers_changed(Watchers *ws, const void *key, size_t key_size, const void *value, size_t value_size,
                      uint64_t version, bool deleted, uint64_t lease) {
        WatchEvent *e = NULL;
        WatchKey *wk;

        assert(ws);
        if (ws->n_watchers == 0)
                return;

        wk = ws->n_keys > 0 ? *watch_key_find(ws, key, key_size, watch_hash(ws, key, key_size)) : NULL;
        for (int pass = 0; pass < 2; pass++)
                LIST_FOREACH_SAFE(watchers, w, next, pass == 0 ? (wk ? wk->watchers : NULL) : ws->prefix_watchers) {
                        if (!watcher_wants(w, key, key_size, version))
                                continue;
                        if (!e) {
                                e = watch_event_new(key, key_size, value, value_size, version, deleted, lease);
                                if (!e) {
                                        /* Out of memory: every watcher of the change resumes. */
                                        watcher_clear(w);
                                        w->overflowed = true;
                                        ws->ready(w, ws->userdata);
                                        continue;
                                }
                        }
                        if (w->key)
                                w->version = version;
                        else
                                w->version = MAX(w->version, version);
                        watcher_queue(w, e);
                }
        watch_event_unref(e);
}

void watcher_push(Watcher *w, const void *key, size_t key_size, const void *value, size_t value_size,
                  uint64_t version, bool deleted, uint64_t lease) {
        WatchEvent *e;

        assert(w);
        e = watch_event_new(key, key_size, value, value_size, version, deleted, lease);
        if (!e) {
                watcher_clear(w);
                w->overflowed = true;
                w->watchers->ready(w, w->watchers->userdata);
                return;
        }
        w->version = w->key ? version : MAX(w->version, version);
        watcher_queue(w, e);
        watch_event_unref(e);
}

WatchEvent *watcher_pop(Watcher *w) {
        WatchEvent *e;

        assert(w);
        if (w->n_queued == 0)
                return NULL;
        e = w->queue[w->head];
        w->head = (w->head + 1) % w->n_allocated;
        w->n_queued--;
        w->queued_bytes -= MIN(w->queued_bytes, event_cost(e));
        return e;
}

size_t watchers_size(const Watchers *ws) {
        assert(ws);
        return ws->n_watchers;
}

size_t watchers_max(const Watchers *ws) {
        assert(ws);
        return ws->max_watchers;
}
