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
        uint64_t v = streq(property, "Gets") ? st->gets : streq(property, "Puts") ? st->puts : st->errors;

        return sd_bus_message_append(reply, "t", v);
}

static const sd_bus_vtable keyvalue_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Keys", "t", property_get_keys, 0, 0),
        SD_BUS_PROPERTY("Bytes", "t", property_get_bytes, 0, 0),
        SD_BUS_PROPERTY("Connections", "u", property_get_connections, 0, 0),
        SD_BUS_PROPERTY("Gets", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("Puts", "t", property_get_counter, 0, 0),
        SD_BUS_PROPERTY("Errors", "t", property_get_counter, 0, 0),
        SD_BUS_VTABLE_END,
};

int kv_bus_setup(sd_bus *bus, KVBusContext *ctx) {
        return sd_bus_add_object_vtable(bus, NULL, KEYVALUE_BUS_PATH, "org.mrkv.KeyValue1", keyvalue_vtable, ctx);
}
