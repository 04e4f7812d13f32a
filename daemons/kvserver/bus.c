/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus.h"
#include "macro.h"

static int property_get_keys(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        KVBusContext *ctx = userdata;
        return sd_bus_message_append(reply, "t", (uint64_t) store_n_keys(ctx->store));
}

static int property_get_bytes(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        KVBusContext *ctx = userdata;
        return sd_bus_message_append(reply, "t", store_data_bytes(ctx->store));
}

static int property_get_connections(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        KVBusContext *ctx = userdata;
        return sd_bus_message_append(reply, "u", kv_service_n_connections(ctx->service));
}

static int property_get_counter(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        KVBusContext *ctx = userdata;
        const KVStats *st = kv_service_stats(ctx->service);
        uint64_t v = streq(property, "Gets")      ? st->gets
                   : streq(property, "Puts")    ? st->puts
                   : streq(property, "Deletes") ? st->deletes
                   : streq(property, "Lists")   ? st->lists
                   : streq(property, "Watchers") ? (uint64_t) kv_service_n_watchers(ctx->service)
                   : streq(property, "Leases")  ? (uint64_t) kv_state_n_leases(ctx->state)
                                                : st->errors;

        return sd_bus_message_append(reply, "t", v);
}

static int property_get_sync_mode(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        KVBusContext *ctx = userdata;
        return sd_bus_message_append(reply, "s", kv_state_sync_mode_string(ctx->state));
}

static int property_get_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        KVBusContext *ctx = userdata;
        uint64_t v;

        if (streq(property, "LogBytes"))
                v = kv_state_log_bytes(ctx->state);
        else if (streq(property, "SnapshotBytes"))
                v = kv_state_snapshot_bytes(ctx->state);
        else if (streq(property, "Syncs"))
                v = kv_state_syncs(ctx->state);
        else if (streq(property, "LastSnapshotTime"))
                v = kv_state_last_snapshot_usec(ctx->state);
        else
                v = kv_state_sync_latency_p99(ctx->state);
        return sd_bus_message_append(reply, "t", v);
}

static int property_get_degraded(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        KVBusContext *ctx = userdata;
        return sd_bus_message_append(reply, "b", kv_state_degraded(ctx->state) < 0);
}

static int property_get_quota(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        KVBusContext *ctx = userdata;
        const Quota *q = kv_state_quota(ctx->state);

        if (streq(property, "QuotaUsers"))
                return sd_bus_message_append(reply, "u", (uint32_t) quota_n_uids(q));
        return sd_bus_message_append(reply, "t",
                                     streq(property, "QuotaKeys")    ? quota_limits(q)->keys :
                                     streq(property, "QuotaBytes")   ? quota_limits(q)->bytes :
                                                                       quota_refused(q));
}

static int method_snapshot(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        KVBusContext *ctx = userdata;
        int r;

        /* Returns once the writer is started: LastSnapshotTime and Degraded tell the outcome. */
        r = kv_state_snapshot(ctx->state);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to start a snapshot: %m");
        return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable keyvalue_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Keys", "t", property_get_keys, 0, 0),
        SD_BUS_PROPERTY("Bytes", "t", property_get_bytes, 0, 0),
        SD_BUS_PROPERTY("Connections", "u", property_get_connections, 0, 0),
        SD_BUS_PROPERTY("Gets", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("Puts", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("Errors", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("Deletes", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("Lists", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("Watchers", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("Leases", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("SyncMode", "s", property_get_sync_mode, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("LogBytes", "t", property_get_state, 0, 0),
        SD_BUS_PROPERTY("SnapshotBytes", "t", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastSnapshotTime", "t", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastSyncLatency", "t", property_get_state, 0, 0),
        SD_BUS_PROPERTY("Syncs", "t", property_get_state, 0, 0),
        SD_BUS_PROPERTY("Degraded", "b", property_get_degraded, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("QuotaKeys", "t", property_get_quota, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("QuotaBytes", "t", property_get_quota, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("QuotaUsers", "u", property_get_quota, 0, 0),
        SD_BUS_PROPERTY("QuotaRefused", "t", property_get_quota, 0, 0),
        SD_BUS_METHOD("Snapshot", "", "", method_snapshot, 0),
        SD_BUS_VTABLE_END,
};

int kv_bus_setup(sd_bus *bus, KVBusContext *ctx) {
        return sd_bus_add_object_vtable(bus, NULL, KEYVALUE_BUS_PATH, "org.mrkv.KeyValue1", keyvalue_vtable, ctx);
}

void kv_bus_emit_changed(sd_bus *bus, KVBusContext *ctx) {
        (void) sd_bus_emit_properties_changed(bus, KEYVALUE_BUS_PATH, "org.mrkv.KeyValue1", "Degraded",
                                              "SnapshotBytes", "LastSnapshotTime", NULL);
}
