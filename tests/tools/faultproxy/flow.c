/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "flow.h"
#include "list.h"
#include "macro.h"

struct FlowMessage {
        LIST_FIELDS(FlowMessage, queue);
        uint64_t release;
        size_t size; /* including the NUL */
        char data[];
};

void flow_init(Flow *f, FlowKind kind, const FaultPolicy *policy, FlowCounters *counters, size_t max_message,
               uint64_t seed, uint64_t stream) {
        assert(f);
        assert(policy);
        assert(counters);

        *f = (Flow) {
                .kind = kind,
                .policy = policy,
                .counters = counters,
                .max_message = max_message,
        };
        rng_init(&f->rng, seed, stream);
}

void flow_done(Flow *f) {
        for (FlowMessage *m; (m = LIST_POP(queue, f->queue));)
                free(m);
        f->queue_tail = NULL;
        f->queued_bytes = 0;
        varlink_buffer_done(&f->in);
        varlink_buffer_done(&f->out);
}

static int flow_forward(Flow *f, const char *data, size_t size) {
        int r = varlink_buffer_append(&f->out, data, size);
        if (r < 0)
                return r;
        f->counters->forwarded++;
        return 0;
}

/* data includes the terminating NUL. */
static int flow_handle_message(Flow *f, const char *data, size_t size, uint64_t now) {
        bool requests = f->kind == FLOW_REQUESTS;
        uint64_t release = now;
        FlowMessage *m;

        if (rng_chance(&f->rng, requests ? f->policy->drop_request_percent : f->policy->drop_reply_percent)) {
                f->counters->dropped++;
                return 0;
        }

        if (requests) {
                uint64_t delay = fault_pick_delay(f->policy, &f->rng);
                release = delay > UINT64_MAX - now ? UINT64_MAX - 1 : now + delay;
        }
        /* The queue is FIFO, so nothing overtakes anyway; this keeps the release times
         * monotonic, so the head is always the next one due. */
        if (f->queue)
                release = MAX(release, f->last_release);

        if (!f->queue && release <= now)
                return flow_forward(f, data, size);

        m = malloc(sizeof(FlowMessage) + size);
        if (!m)
                return -ENOMEM;
        m->release = release;
        m->size = size;
        memcpy(m->data, data, size);
        LIST_INSERT_AFTER(queue, f->queue, f->queue_tail, m);
        f->queue_tail = m;
        f->queued_bytes += size;
        f->last_release = release;
        return 0;
}

int flow_process(Flow *f, uint64_t now) {
        for (;;) {
                const char *data;
                size_t size;
                int r;

                r = varlink_buffer_next(&f->in, f->max_message, &data, &size);
                if (r <= 0)
                        return r;
                r = flow_handle_message(f, data, size + 1, now);
                if (r < 0)
                        return r;
                varlink_buffer_consume(&f->in, size + 1);
        }
}

int flow_feed(Flow *f, const void *data, size_t size, uint64_t now) {
        int r = varlink_buffer_append(&f->in, data, size);
        if (r < 0)
                return r;
        return flow_process(f, now);
}

size_t flow_end_input(Flow *f) {
        size_t n = varlink_buffer_size(&f->in);

        f->eof = true;
        varlink_buffer_done(&f->in);
        return n;
}

int flow_release(Flow *f, uint64_t now) {
        while (f->queue && f->queue->release <= now) {
                FlowMessage *m;
                int r = flow_forward(f, f->queue->data, f->queue->size);
                if (r < 0)
                        return r;
                m = LIST_POP(queue, f->queue);
                if (!f->queue)
                        f->queue_tail = NULL;
                f->queued_bytes -= m->size;
                free(m);
        }
        return 0;
}

uint64_t flow_next_release(const Flow *f) {
        return f->queue ? f->queue->release : UINT64_MAX;
}

size_t flow_pending_bytes(const Flow *f) {
        return f->queued_bytes + varlink_buffer_size(&f->out);
}

bool flow_finished(const Flow *f) {
        return f->eof && !f->queue && varlink_buffer_size(&f->out) == 0;
}
