/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "server.h"

#define STATUS_INTERVAL_USEC (1 * USEC_PER_SEC)
#define SHUTDOWN_FLUSH_USEC (1 * USEC_PER_SEC)

void server_update_status(Server *s) {
        _cleanup_free_ char *status = NULL;
        const KVStats *st = kv_service_stats(s->service);

        int degraded = kv_state_degraded(s->state);

        if (asprintf(&status,
                     "STATUS=%s%s%s%zu keys, %u connections, %" PRIu64 " gets, %" PRIu64 " puts, %" PRIu64
                     " errors, sync %s%s",
                     degraded < 0 ? "Degraded, Puts refused (log: " : "",
                     degraded < 0 ? strerror(-degraded) : "",
                     degraded < 0 ? "); " : "",
                     store_n_keys(s->store), kv_service_n_connections(s->service), st->gets, st->puts,
                     st->errors, kv_state_sync_mode_string(s->state),
                     kv_state_snapshot_running(s->state) ? ", writing a snapshot" : "") < 0)
                return;
        if (s->last_status && streq(s->last_status, status))
                return;
        (void) sd_notify(false, status);
        free(s->last_status);
        s->last_status = TAKE_PTR(status);
}

static int on_status_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        int r;

        server_update_status(userdata);
        r = sd_event_source_set_time(source, usec + STATUS_INTERVAL_USEC);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
}

static void on_state_changed(KVState *state, void *userdata) {
        Server *s = userdata;

        server_update_status(s);
        if (s->bus)
                kv_bus_emit_changed(s->bus, &s->bus_context);
}

int server_new(sd_event *event, const KVLimits *limits, const KVStateOptions *state_options, Server **ret) {
        _cleanup_(server_freep) Server *s = NULL;
        int r;

        s = calloc(1, sizeof(Server));
        if (!s)
                return log_oom();
        s->event = sd_event_ref(event);

        r = store_new(&s->store);
        if (r < 0)
                return log_error_errno(r, "Failed to create the store: %m");
        r = kv_state_open(event, s->store, state_options, &s->state);
        if (r < 0)
                return r;
        kv_state_set_change_handler(s->state, on_state_changed, s);
        r = kv_service_new(event, s->store, s->state, limits, &s->service);
        if (r < 0)
                return log_error_errno(r, "Failed to create the Varlink service: %m");
        s->bus_context = (KVBusContext) { .store = s->store, .service = s->service, .state = s->state };

        if (getenv("NOTIFY_SOCKET")) {
                r = sd_event_add_time_relative(event, &s->status_timer, CLOCK_MONOTONIC,
                                               STATUS_INTERVAL_USEC, 0, on_status_timer, s);
                if (r < 0)
                        return log_error_errno(r, "Failed to add the status timer: %m");
        }

        *ret = TAKE_PTR(s);
        return 0;
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;
        sd_bus_flush_close_unref(s->bus);
        sd_event_source_disable_unref(s->status_timer);
        kv_service_free(s->service);
        kv_state_free(s->state);
        store_free(s->store);
        free(s->last_status);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

int server_add_bus_objects(sd_bus *bus, void *userdata) {
        Server *s = userdata;

        return kv_bus_setup(bus, &s->bus_context);
}

int server_listen_fd(int fd, void *userdata) {
        Server *s = userdata;

        return kv_service_listen_fd(s->service, fd);
}

void server_shutdown(Server *s) {
        kv_state_flush(s->state);
        kv_service_shutdown(s->service, SHUTDOWN_FLUSH_USEC);
}
