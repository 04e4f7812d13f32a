/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus.h"
#include "kv-service.h"
#include "kv-state.h"
#include "macro.h"
#include "store.h"

/* The key/value server: the store, its durable state, the org.mrkv.KV service over
 * them, its D-Bus objects, and the STATUS= line the service manager shows. */
typedef struct Server {
        sd_event *event;
        Store *store;
        KVState *state;
        KVService *service;
        sd_bus *bus;               /* NULL when serving on no bus */
        KVBusContext bus_context;  /* what the bus objects read */
        sd_event_source *status_timer;
        char *last_status;
} Server;

/* Loads the state directory. Logs its failures (-EBUSY: another server holds the
 * directory). Under a service manager ($NOTIFY_SOCKET), STATUS= is sent again every
 * second when it changed. */
int server_new(sd_event *event, const KVLimits *limits, const KVStateOptions *state_options, Server **ret);
/* Drops the bus first: its objects point into the service and the store. */
Server *server_free(Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free);

/* For daemon_open_bus() and daemon_listen(), with the server as userdata. */
int server_add_bus_objects(sd_bus *bus, void *userdata);
int server_listen_fd(int fd, void *userdata);

/* Sends STATUS= with the counters if they changed since the last one. */
void server_update_status(Server *s);
/* Syncs the log, answers the Puts waiting for it, flushes pending replies and closes
 * every connection. */
void server_shutdown(Server *s);
