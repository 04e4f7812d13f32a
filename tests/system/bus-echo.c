/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkv-test-bus-echo ADDRESS NAME...: owns NAMEs on the bus at ADDRESS and answers every
 * method call sent to it with an empty reply, whatever its path, interface or member.
 * The D-Bus policy test uses it as the daemon that owns org.mrkv.*1, so that a call
 * that fails there was refused by the bus (the policy), never by the daemon. Prints
 * "ready" on stdout once every name is owned; runs until SIGTERM or SIGINT. Exit
 * status 3 when a name cannot be owned (the policy refused it). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "macro.h"

#define EXIT_NAME_REFUSED 3

static int on_message(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        unsigned *n_calls = userdata;
        int r;

        if (!sd_bus_message_is_method_call(m, NULL, NULL))
                return 0;

        (*n_calls)++;
        log_debug("%s %s.%s from %s", sd_bus_message_get_path(m), sd_bus_message_get_interface(m) ?: "",
                  sd_bus_message_get_member(m), sd_bus_message_get_sender(m));
        r = sd_bus_reply_method_return(m, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to reply: %m");
        return 1;
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        unsigned n_calls = 0;
        sigset_t mask;
        int r;

        log_set_ident("mrkv-test-bus-echo");
        if (argc < 3) {
                fprintf(stderr, "Usage: %s ADDRESS NAME...\n", program_invocation_short_name);
                return 2;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m"), 1;

        r = sd_event_default(&event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m"), 1;
        r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to watch signals: %m"), 1;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, argv[1]);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to %s: %m", argv[1]), 1;

        r = sd_bus_add_filter(bus, NULL, on_message, &n_calls);
        if (r < 0)
                return log_error_errno(r, "Failed to add the message filter: %m"), 1;

        for (int i = 2; i < argc; i++) {
                r = sd_bus_request_name(bus, argv[i], 0);
                if (r < 0) {
                        log_error_errno(r, "Failed to own %s: %m", argv[i]);
                        return r == -EACCES || r == -EPERM ? EXIT_NAME_REFUSED : 1;
                }
        }

        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m"), 1;

        printf("ready\n");
        fflush(stdout);

        r = sd_event_loop(event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m"), 1;
        log_debug("Answered %u calls.", n_calls);
        return 0;
}
