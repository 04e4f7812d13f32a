/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fault.h"
#include "varlink-message.h"

/* One direction of a proxied connection, without the sockets: bytes read from one peer
 * go in, are split into whole Varlink messages, each is dropped or held back per the
 * policy, and the survivors come out, in their original order, as bytes to write to
 * the other peer. Kept apart from the event loop so a unit test can drive it. */

typedef enum FlowKind {
        FLOW_REQUESTS, /* client → server: may be dropped or delayed */
        FLOW_REPLIES,  /* server → client: may be dropped */
} FlowKind;

typedef struct FlowCounters {
        uint64_t forwarded, dropped;
} FlowCounters;

typedef struct FlowMessage FlowMessage;

typedef struct Flow {
        FlowKind kind;
        const FaultPolicy *policy;
        FlowCounters *counters; /* totals shared by all flows of a kind */
        Rng rng;
        size_t max_message;

        VarlinkBuffer in; /* read from the source, not yet split; the caller appends here */
        FlowMessage *queue, *queue_tail; /* held back until their release time, oldest first */
        size_t queued_bytes;
        uint64_t last_release;
        VarlinkBuffer out; /* whole messages due to the destination; the caller consumes */
        bool eof;          /* the source has closed its side */
} Flow;

void flow_init(Flow *f, FlowKind kind, const FaultPolicy *policy, FlowCounters *counters, size_t max_message,
               uint64_t seed, uint64_t stream);
void flow_done(Flow *f);

/* Handles every complete message in f->in; now is CLOCK_MONOTONIC in µs. Returns
 * -EMSGSIZE when a message is longer than max_message (the flow is then unusable),
 * -ENOMEM, else 0. */
int flow_process(Flow *f, uint64_t now);
/* Appends data to f->in and processes it (what a read does). */
int flow_feed(Flow *f, const void *data, size_t size, uint64_t now);
/* The source closed: an incomplete trailing message is discarded (only whole messages
 * are ever forwarded). Returns the number of bytes discarded. */
size_t flow_end_input(Flow *f);

/* Moves the held-back messages due at now to f->out. Returns -ENOMEM or 0. */
int flow_release(Flow *f, uint64_t now);
/* When the next held-back message is due, UINT64_MAX if none is held back. */
uint64_t flow_next_release(const Flow *f);

/* Bytes accepted but not yet written: held back and in f->out. */
size_t flow_pending_bytes(const Flow *f);
/* The source has closed and everything from it has been written. */
bool flow_finished(const Flow *f);
