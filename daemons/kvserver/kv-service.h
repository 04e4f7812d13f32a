/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "kv-state.h"
#include "store.h"
#include "varlink-server.h"

/* The org.mrkv.KV Varlink interface: translates calls into store operations and their
 * results into replies. Gets read the store; Puts go through the durable state
 * (kv-state.h), which may answer them later, once their record is durable: the only
 * per-connection state is that waiting Put. */

#define KV_DEFAULT_MAX_KEY_SIZE (64U * 1024U)
#define KV_DEFAULT_MAX_VALUE_SIZE (1024U * 1024U)
#define KV_DEFAULT_MAX_WATCHERS 4096U
#define KV_DEFAULT_MAX_WATCH_QUEUE (4U * 1024U * 1024U)
#define KV_LIST_DEFAULT_LIMIT 1000U
#define KV_LIST_MAX_LIMIT 10000U
/* A List reply stops adding entries past about this many bytes. */
#define KV_LIST_MAX_REPLY (4U * 1024U * 1024U)

typedef struct KVLimits {
        size_t max_key_size;
        size_t max_value_size;
        size_t max_message_size; /* 0: large enough for the largest key and value */
        size_t max_watchers;     /* 0: no bound */
        size_t max_watch_queue;  /* bytes a watcher may have queued; 0: no bound */
        uint64_t max_leases;     /* for the errors; kv-state.h enforces them */
        uint64_t max_lease_keys;
        VarlinkServerLimits server; /* connections, input, time-outs */
} KVLimits;

typedef struct KVService KVService;

/* Counters for status reports. */
typedef struct KVStats {
        uint64_t gets, puts, errors;
        uint64_t deletes, lists, watches, leases; /* leases: Grant, KeepAlive, Revoke calls */
        uint64_t storage_errors;        /* Puts refused because the log failed */
} KVStats;

/* store and state are borrowed and must outlive the service. */
int kv_service_new(sd_event *event, Store *store, KVState *state, const KVLimits *limits, KVService **ret);
KVService *kv_service_free(KVService *k);

/* Serves on a listening socket; takes the fd. */
int kv_service_listen_fd(KVService *k, int fd);
/* Flushes pending replies and closes every connection. */
void kv_service_shutdown(KVService *k, uint64_t timeout_usec);

unsigned kv_service_n_connections(KVService *k);
/* Watch calls and KeepAlive calls with more that are open. */
size_t kv_service_n_watchers(KVService *k);
const KVStats *kv_service_stats(KVService *k);

/* The message size limit that fits a call with the largest key and value even if
 * every byte is written as a \uXXXX escape. */
size_t kv_message_size_for(size_t max_key_size, size_t max_value_size);
