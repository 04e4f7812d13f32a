/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

/* Connects a daemon to the bus it should serve on:
 *   - address, when given (--bus-address);
 *   - else $MRKV_BUS: "system", "user", "none", or a bus address;
 *   - else, when started by systemd ($INVOCATION_ID), the user bus for a user manager's
 *     service ($XDG_RUNTIME_DIR set) and the system bus otherwise;
 *   - else no bus (a program run by hand, as in the lab).
 * Returns 0 with *ret NULL for no bus. *ret_explicit tells whether the bus was asked for
 * (a failure is then fatal) or chosen by default (a failure is a warning). Logs nothing. */
int bus_open_for_daemon(const char *address, sd_bus **ret, bool *ret_explicit);

/* Attaches to the event loop, serves org.freedesktop.LogControl1 (so that
 * `systemctl service-log-level` and `service-log-target` work) and requests name. Logs
 * nothing: returns -errno, -EEXIST when another connection owns name. */
int bus_start_daemon(sd_bus *bus, sd_event *event, const char *name, const char *ident);
