/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "kv-service.h"
#include "kv-state.h"
#include "store.h"

#define KEYVALUE_BUS_NAME "org.mrkv.KeyValue1"
#define KEYVALUE_BUS_PATH "/org/mrkv/KeyValue1"

typedef struct KVBusContext {
        Store *store;
        KVService *service;
        KVState *state;
} KVBusContext;

/* The status plane of the key/value server: org.mrkv.KeyValue1 at /org/mrkv/KeyValue1
 * with Keys, Bytes, Connections, operation and error counters, Watchers, Leases, LogBytes,
 * LastSyncLatency and Syncs: they change with every request, so they are read on demand rather
 * than signalled. Degraded, SnapshotBytes and LastSnapshotTime change rarely and are
 * signalled (kv_bus_emit_changed()); SyncMode is constant. Snapshot() starts a
 * snapshot (the bus policy lets only root and group mrkv call it). */
int kv_bus_setup(sd_bus *bus, KVBusContext *ctx);
/* PropertiesChanged for the signalled properties. */
void kv_bus_emit_changed(sd_bus *bus, KVBusContext *ctx);
