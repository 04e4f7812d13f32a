/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "kv-service.h"
#include "store.h"

#define KEYVALUE_BUS_NAME "org.mrkv.KeyValue1"
#define KEYVALUE_BUS_PATH "/org/mrkv/KeyValue1"

typedef struct KVBusContext {
        Store *store;
        KVService *service;
} KVBusContext;

/* The status plane of the key/value server: org.mrkv.KeyValue1 at /org/mrkv/KeyValue1
 * with Keys, Bytes, Connections and operation and error counters. They change with
 * every request, so they are read on demand rather than signalled. */
int kv_bus_setup(sd_bus *bus, KVBusContext *ctx);
