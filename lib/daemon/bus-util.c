/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-util.h"
#include "log.h"
#include "macro.h"

int bus_open_for_daemon(const char *address, sd_bus **ret, bool *ret_explicit) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *e = getenv("MRKV_BUS");
        int r;

        *ret = NULL;
        *ret_explicit = address || (e && e[0]);

        if (!address && e && e[0]) {
                if (streq(e, "none"))
                        return 0;
                if (!streq(e, "system") && !streq(e, "user"))
                        address = e;
        }

        if (address) {
                r = sd_bus_new(&bus);
                if (r < 0)
                        return r;
                r = sd_bus_set_address(bus, address);
                if (r < 0)
                        return r;
                r = sd_bus_set_bus_client(bus, true);
                if (r < 0)
                        return r;
                r = sd_bus_start(bus);
        } else if (e && streq(e, "system"))
                r = sd_bus_open_system(&bus);
        else if (e && streq(e, "user"))
                r = sd_bus_open_user(&bus);
        else if (getenv("INVOCATION_ID"))
                r = getenv("XDG_RUNTIME_DIR") ? sd_bus_open_user(&bus) : sd_bus_open_system(&bus);
        else
                return 0;
        if (r < 0)
                return r;

        *ret = TAKE_PTR(bus);
        return 0;
}

static int property_get_log_level(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", log_level_to_string(log_get_max_level()));
}

static int property_set_log_level(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *value, void *userdata, sd_bus_error *error) {
        const char *s;
        int r, level;

        r = sd_bus_message_read(value, "s", &s);
        if (r < 0)
                return r;
        level = log_level_from_string(s);
        if (level < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid log level '%s'.", s);
        log_set_max_level(level);
        log_info("Log level set to %s.", log_level_to_string(level));
        return 0;
}

static int property_get_log_target(sd_bus *bus, const char *path, const char *interface, const char *property,
                                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", log_target_to_string(log_get_target()));
}

static int property_set_log_target(sd_bus *bus, const char *path, const char *interface, const char *property,
                                   sd_bus_message *value, void *userdata, sd_bus_error *error) {
        const char *s;
        int r, t;

        r = sd_bus_message_read(value, "s", &s);
        if (r < 0)
                return r;
        t = log_target_from_string(s);
        if (t == -EOPNOTSUPP)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Log target '%s' is not supported (console, journal, auto, null).", s);
        if (t < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid log target '%s' (console, journal, auto, null).", s);
        log_set_target(t);
        log_info("Log target set to %s.", log_target_to_string(t));
        return 0;
}

static int property_get_ident(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", (const char *) userdata);
}

static const sd_bus_vtable log_control_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_WRITABLE_PROPERTY("LogLevel", "s", property_get_log_level, property_set_log_level, 0, 0),
        SD_BUS_WRITABLE_PROPERTY("LogTarget", "s", property_get_log_target, property_set_log_target, 0, 0),
        SD_BUS_PROPERTY("SyslogIdentifier", "s", property_get_ident, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END,
};

int bus_start_daemon(sd_bus *bus, sd_event *event, const char *name, const char *ident) {
        int r;

        r = sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/LogControl1", "org.freedesktop.LogControl1",
                                     log_control_vtable, (void *) ident);
        if (r < 0)
                return r;
        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;
        r = sd_bus_request_name(bus, name, 0);
        return r < 0 ? r : 0;
}
