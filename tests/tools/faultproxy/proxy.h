/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include <systemd/sd-event.h>

#include "address.h"
#include "fault.h"
#include "flow.h"
#include "macro.h"

/* The proxy on sd-event: accepts clients on a listening socket, opens one upstream
 * connection for each, and moves Varlink messages both ways through a pair of Flows. */

typedef struct ProxyCounters {
        FlowCounters requests, replies;
        uint64_t connections;       /* client connections paired with an upstream one */
        uint64_t upstream_failures; /* clients closed because the upstream was unreachable */
        uint64_t oversized;         /* pairs closed because of a message over the limit */
} ProxyCounters;

typedef struct Proxy Proxy;

/* Takes listen_fd. upstream and policy are borrowed and must outlive the proxy. */
int proxy_new(sd_event *event, int listen_fd, const Address *upstream, const FaultPolicy *policy, uint64_t seed,
              Proxy **ret);
Proxy *proxy_free(Proxy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Proxy *, proxy_free);

/* One log line with every counter, in key=value form so scripts can read it. */
void proxy_log_counters(Proxy *p);
