/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "list.h"
#include "log.h"
#include "macro.h"
#include "ratelimit.h"
#include "time-util.h"
#include "varlink-server.h"

#define READ_CHUNK (64U * 1024U)
/* An empty input buffer up to this size is kept for the next read (a busy connection would
 * otherwise allocate one per read); a larger one, grown for a large message, is released. */
#define INPUT_KEEP (8U * 1024U)
/* A connection whose peer does not read its replies stops being served once this much
 * output is queued: otherwise pipelined calls for large replies grow the buffer without
 * bound (100 unread Gets of a 1 MiB value were 100 MiB). */
#define OUTPUT_HIGH_WATER (256U * 1024U)
/* After accept() failed for want of descriptors or memory, the listening sockets rest this
 * long (or until a connection closes): they stay readable, and retrying at once would spin. */
#define ACCEPT_RETRY_USEC (100 * USEC_PER_MSEC)
/* A message a client can trigger at will is logged once per interval, with a count. */
#define LOG_INTERVAL_USEC (10 * USEC_PER_SEC)

typedef struct Interface {
        char *name;
        char *description;
} Interface;

typedef struct Method {
        char *name;
        VarlinkMethod func;
        VarlinkPlainMethod plain;       /* optional: the call read in place */
} Method;

struct VarlinkServer {
        sd_event *event;
        void *userdata;
        VarlinkServerInfo info;
        Interface *interfaces;
        size_t n_interfaces;
        Method *methods;
        size_t n_methods;
        size_t n_plain;                 /* methods with a plain handler */
        sd_event_source **listeners;
        size_t n_listeners;
        VarlinkConn *connections;
        /* Connections live in an epoll set of their own, watched by one sd-event source,
         * so that one wakeup serves every ready connection (as Redis does), instead of
         * one sd-event iteration, with its epoll_wait(), per connection. */
        int epoll_fd;
        sd_event_source *epoll_source;
        unsigned n_connections;
        size_t max_message;
        VarlinkServerLimits limits;
        size_t input_held;        /* the connections' input_held */
        char *scratch;            /* READ_CHUNK bytes: reads of connections with nothing buffered */
        sd_event_source *sweep;   /* closes timed-out connections; on while there are any */
        sd_event_source *resume;  /* ends a pause of accepting */
        /* Connections with answers of held calls to write: all written by one deferred
         * event (sd-event dispatches one source per iteration). */
        sd_event_source *flush;
        VarlinkConn *flushing;
        bool accept_paused;
        bool closing;             /* flushing and closing: accept nobody new */
        RateLimit log_pause, log_evict, log_input, log_timeout;
        VarlinkConnHandler on_disconnect;
        VarlinkConnHandler on_drained;
};

/* A queue entry of a connection with held calls (varlink_conn_hold()): a held call, whose
 * answer goes into out once given, or the answers of calls made after a held call, which
 * wait in out until every call before them is answered. */
struct VarlinkHeld {
        VarlinkHeld *next;
        VarlinkConn *conn;
        void *userdata;
        VarlinkCallFlags flags;
        size_t size;    /* what the caller keeps for it */
        bool held;      /* false: an entry of answers */
        bool answered;
        VarlinkBuffer out;
};

struct VarlinkConn {
        unsigned n_ref;
        VarlinkServer *server;
        LIST_FIELDS(VarlinkConn, connections);
        int fd;
        uint32_t events; /* as registered in the server's epoll set */
        sd_event_source *defer;
        VarlinkBuffer in, out;
        bool pending;     /* a call waits for its reply */
        VarlinkCallFlags pending_flags;
        bool eof;         /* the peer closed its side */
        bool disconnected;
        bool processing;  /* inside conn_process_input(): it updates events and reads on */
        bool long_lived;  /* never idle (a registered worker) */
        /* Held calls and the answers behind them, in call order; n_held of them are held
         * calls not answered yet, held_bytes the answers waiting in the queue. */
        VarlinkHeld *held_head, *held_tail;
        unsigned n_held;
        size_t held_size;       /* the sizes of those n_held */
        size_t held_bytes;
        VarlinkHeld *answering; /* varlink_held_answer(): the next answer is this call's */
        VarlinkHeld *spare;     /* a freed entry kept for the next: one a durable Put, else */
        LIST_FIELDS(VarlinkConn, flushing); /* in the server's flushing, with a reference */
        bool in_flushing;
        uint64_t active;  /* when bytes last arrived or a call was last answered */
        uint64_t message_start; /* when the incomplete message buffered began; 0: none */
        size_t input_held; /* bytes of in, as counted in the server's input_held */
        void *userdata;
        struct ucred peer; /* SO_PEERCRED at accept; pid 0 when the socket has none */
        char description[32];
};

static void conn_disconnect(VarlinkConn *c);
static int conn_process_input(VarlinkConn *c);
static void server_resume_accept(VarlinkServer *s);

static VarlinkConn *conn_ref(VarlinkConn *c) {
        c->n_ref++;
        return c;
}

static VarlinkHeld *held_free(VarlinkHeld *h) {
        varlink_buffer_done(&h->out);
        free(h);
        return NULL;
}

/* A new queue entry: the connection's spare one if it has it. */
static VarlinkHeld *conn_held_new(VarlinkConn *c) {
        VarlinkHeld *h = c->spare;

        if (h)
                c->spare = NULL;
        else {
                h = malloc(sizeof(VarlinkHeld));
                if (!h)
                        return NULL;
        }
        *h = (VarlinkHeld) { .conn = c };
        return h;
}

/* Keeps an entry whose buffer holds nothing as the spare one. */
static void conn_held_release(VarlinkConn *c, VarlinkHeld *h) {
        if (!c->spare && h->out.allocated == 0) {
                c->spare = h;
                return;
        }
        held_free(h);
}

static void conn_held_free_all(VarlinkConn *c) {
        while (c->held_head) {
                VarlinkHeld *h = c->held_head;

                c->held_head = h->next;
                held_free(h);
        }
        if (c->spare)
                c->spare = held_free(c->spare);
        c->held_tail = c->answering = NULL;
        c->n_held = 0;
        c->held_size = 0;
        c->held_bytes = 0;
}

/* Whether the connection takes no further call for now: one waits for its answer, or its
 * held calls or the answers behind them are at their bounds (backpressure). */
static bool conn_blocked(VarlinkConn *c) {
        return c->pending || c->n_held >= VARLINK_HELD_MAX || c->held_size >= VARLINK_HELD_SIZE_MAX ||
                varlink_buffer_size(&c->out) + c->held_bytes >= OUTPUT_HIGH_WATER;
}

static VarlinkConn *conn_unref(VarlinkConn *c) {
        if (!c || --c->n_ref > 0)
                return NULL;
        assert(c->disconnected);
        assert(!c->held_head);
        varlink_buffer_done(&c->in);
        varlink_buffer_done(&c->out);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(VarlinkConn *, conn_unref);

static int conn_update_events(VarlinkConn *c) {
        uint32_t events = 0;

        if (c->disconnected)
                return 0;
        /* Read while no call is pending; backpressure otherwise. Write when output is queued. */
        if (!conn_blocked(c) && !c->eof)
                events |= EPOLLIN;
        if (varlink_buffer_size(&c->out) > 0)
                events |= EPOLLOUT;
        if (events == c->events)
                return 0;
        struct epoll_event ev = { .events = events, .data.ptr = c };
        if (epoll_ctl(c->server->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                return -errno;
        c->events = events;
        return 0;
}

static int conn_flush(VarlinkConn *c) {
        while (varlink_buffer_size(&c->out) > 0) {
                ssize_t n = send(c->fd, c->out.data + c->out.start, varlink_buffer_size(&c->out),
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        return -errno;
                }
                varlink_buffer_consume(&c->out, (size_t) n);
        }
        return 0;
}

/* Writes what the socket takes. A failed write closes the connection and returns < 0: the
 * peer is gone, which is nobody's error to report. */
static int conn_write(VarlinkConn *c) {
        int r;

        r = conn_flush(c);
        if (r < 0) {
                log_debug_errno(r, "Failed to write to %s: %m", c->description);
                conn_disconnect(c);
        }
        return r;
}

/* After an answer was queued: writes what the socket takes. */
static int conn_queued(VarlinkConn *c) {
        /* A reply from within the input loop: the loop writes every answer of the batch it
         * read with one send() and sets the events once, at its end; so does the deferred
         * event after the answer of a held call. */
        if (c->processing || c->answering)
                return 0;
        if (conn_write(c) < 0)
                return 0;
        return conn_update_events(c);
}

/* Where an answer goes: into the held call being answered; behind held calls not answered
 * yet, into the entry of answers at the queue's end; else into the output. NULL: out of
 * memory. */
static VarlinkBuffer *conn_answer_buffer(VarlinkConn *c) {
        VarlinkHeld *t = c->held_tail;

        /* Everything before the oldest held call is out: its answer goes straight there. */
        if (c->answering)
                return c->answering == c->held_head ? &c->out : &c->answering->out;
        if (!t)
                return &c->out;
        if (t->held) {
                VarlinkHeld *e = conn_held_new(c);

                if (!e)
                        return NULL;
                e->answered = true;
                t->next = e;
                c->held_tail = t = e;
        }
        return &t->out;
}

/* Moves the answers at the head of the queue, up to the first held call not answered
 * yet, to the output. */
static int conn_drain_held(VarlinkConn *c) {
        VarlinkHeld *h;

        while ((h = c->held_head) && h->answered) {
                size_t n = varlink_buffer_size(&h->out);

                if (n > 0 && varlink_buffer_size(&c->out) == 0) {
                        VarlinkBuffer t = c->out;

                        c->out = h->out;
                        h->out = t;
                } else if (n > 0 && varlink_buffer_append(&c->out, h->out.data + h->out.start, n) < 0)
                        return -ENOMEM;
                c->held_bytes -= n;
                c->held_head = h->next;
                if (!c->held_head)
                        c->held_tail = NULL;
                conn_held_release(c, h);
        }
        return 0;
}

/* Queues a reply and writes what the socket takes. A plain reply is written around its
 * serialized parameters, without a wrapping object for json-c to build and tear down. */
static int conn_send(VarlinkConn *c, json_object *message, json_object *parameters) {
        VarlinkBuffer *b;
        size_t before;
        int r;

        b = conn_answer_buffer(c);
        if (!b)
                return -ENOMEM;
        before = varlink_buffer_size(b);
        if (message)
                r = varlink_buffer_append_message(b, message);
        else {
                static const char head[] = "{\"parameters\":";
                const char *s;
                size_t n;
                char *p;

                s = parameters ? json_object_to_json_string_length(parameters,
                                                                   JSON_C_TO_STRING_PLAIN |
                                                                           JSON_C_TO_STRING_NOSLASHESCAPE,
                                                                   &n)
                               : "{}";
                if (!s)
                        return -ENOMEM;
                if (!parameters)
                        n = 2;
                p = varlink_buffer_reserve(b, sizeof(head) - 1 + n + 2);
                if (!p)
                        return -ENOMEM;
                memcpy(p, head, sizeof(head) - 1);
                memcpy(p + sizeof(head) - 1, s, n);
                memcpy(p + sizeof(head) - 1 + n, "}", 2); /* with the NUL */
                b->end += sizeof(head) - 1 + n + 2;
                r = 0;
        }
        if (r < 0)
                return r;
        if (b != &c->out)
                c->held_bytes += varlink_buffer_size(b) - before;
        return conn_queued(c);
}

static uint64_t server_now(VarlinkServer *s) {
        uint64_t t;

        /* The time of this event loop iteration: precise enough for time-outs, and free. */
        if (sd_event_now(s->event, CLOCK_MONOTONIC, &t) < 0)
                return now_usec();
        return t;
}

/* Whether a log line a client can trigger at will may go out now; *suffix then says how
 * many were left out since the last one. */
static bool server_log_allowed(VarlinkServer *s, RateLimit *rl, char suffix[static 48]) {
        unsigned dropped;

        if (!ratelimit_below(rl, server_now(s), &dropped))
                return false;
        if (dropped > 0)
                snprintf(suffix, 48, " (%u more like it not logged)", dropped);
        else
                suffix[0] = '\0';
        return true;
}

static void conn_call_done(VarlinkConn *c) {
        c->pending = false;
        c->pending_flags = 0;
        c->active = server_now(c->server);
        /* Within the input loop, the loop goes on by itself. */
        if (c->processing)
                return;
        /* A deferred reply: calls that arrived meanwhile are still buffered, pick them
         * up from the event loop. */
        if (!c->disconnected && varlink_buffer_size(&c->in) > 0)
                (void) sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT);
        (void) conn_update_events(c);
}

/* A held call was answered: what is answered at the head of the queue goes out, and a
 * connection that was at the bound of held calls reads on. */
static int conn_held_done(VarlinkConn *c) {
        VarlinkHeld *h = c->answering;
        int r;

        c->answering = NULL;
        h->answered = true;
        c->n_held--;
        c->held_size -= h->size;
        c->active = server_now(c->server);
        r = conn_drain_held(c);
        if (r < 0)
                return r;
        /* Within the input loop, the loop goes on by itself. */
        if (c->processing)
                return 0;
        /* With calls still held, the answers of more may follow in this batch (a sync
         * answers many held calls of a connection): they go out together, from the event
         * loop, with one send(). */
        if (c->n_held > 0) {
                if (!c->in_flushing) {
                        conn_ref(c);
                        LIST_PREPEND(flushing, c->server->flushing, c);
                        c->in_flushing = true;
                        (void) sd_event_source_set_enabled(c->server->flush, SD_EVENT_ONESHOT);
                }
                return 0;
        }
        /* The last: everything answered goes out now. */
        if (c->in_flushing) {
                LIST_REMOVE(flushing, c->server->flushing, c);
                c->in_flushing = false;
                conn_unref(c); /* not the last: the caller's is */
        }
        if (conn_write(c) < 0)
                return 0;
        /* Calls that arrived meanwhile, or a peer that is done: from the event loop. */
        if (!conn_blocked(c) && (varlink_buffer_size(&c->in) > 0 || c->eof))
                (void) sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT);
        return conn_update_events(c);
}

/* Answering is the last thing that happens to a call: if the answer cannot be queued, the
 * connection is closed, so that the client learns that the call failed. */
static int conn_reply_failed(VarlinkConn *c, int error) {
        log_warning_errno(error, "Failed to queue the answer to %s, closing the connection: %m",
                          c->description);
        conn_disconnect(c);
        return error;
}

/* The call was answered: a held one, or the current one. */
static int conn_answer_done(VarlinkConn *c) {
        int r;

        if (!c->answering) {
                conn_call_done(c);
                return 0;
        }
        if (c->disconnected) {
                c->answering = NULL;
                return 0;
        }
        r = conn_held_done(c);
        if (r < 0)
                return conn_reply_failed(c, r);
        return 0;
}

static int conn_reply_internal(VarlinkConn *c, const char *error, json_object *parameters, bool continues) {
        _cleanup_json_ json_object *m = NULL, *p = parameters;
        /* A failed write closes the connection, which may drop the last reference to it. */
        _cleanup_(conn_unrefp) VarlinkConn *ref = NULL;
        VarlinkCallFlags flags;
        int r = 0;

        assert(c);

        if (!c->pending && !c->answering)
                return -EBADMSG; /* no call to answer */
        flags = c->answering ? c->answering->flags : c->pending_flags;
        if (continues && !(flags & VARLINK_CALL_MORE))
                return -EINVAL;

        ref = conn_ref(c);
        if (!c->disconnected && !(flags & VARLINK_CALL_ONEWAY)) {
                if (!error && !continues)
                        r = conn_send(c, NULL, p);
                else {
                        if (error)
                                r = json_build_object(&m,
                                                      "error", json_object_new_string(error),
                                                      "parameters", TAKE_PTR(p) ?: json_object_new_object(),
                                                      NULL);
                        else
                                r = json_build_object(&m,
                                                      "parameters", TAKE_PTR(p) ?: json_object_new_object(),
                                                      "continues", json_object_new_boolean(true),
                                                      NULL);
                        if (r >= 0)
                                r = conn_send(c, m, NULL);
                }
                if (r < 0)
                        return conn_reply_failed(c, r);
        }

        if (continues)
                return 0;
        return conn_answer_done(c);
}

/* What an error answer returns once it is queued: the errno sd_varlink_error() gives. */
static int error_to_errno(const char *error) {
        static const struct {
                const char *error;
                int value;
        } table[] = {
                { VARLINK_ERROR_INVALID_PARAMETER, -EINVAL },
                { VARLINK_ERROR_METHOD_NOT_FOUND, -ENXIO },
                { VARLINK_ERROR_METHOD_NOT_IMPLEMENTED, -ENOTTY },
                { VARLINK_ERROR_INTERFACE_NOT_FOUND, -EADDRNOTAVAIL },
                { VARLINK_ERROR_PERMISSION_DENIED, -EACCES },
                { VARLINK_ERROR_EXPECTED_MORE, -EBADE },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(error, table[i].error))
                        return table[i].value;
        return -EBADR;
}

int varlink_conn_reply(VarlinkConn *c, json_object *parameters) {
        return conn_reply_internal(c, NULL, parameters, false);
}

static char *write_uint64(char *d, uint64_t v) {
        char digits[20];
        size_t n = 0;

        do {
                digits[n++] = (char) ('0' + v % 10);
                v /= 10;
        } while (v > 0);
        while (n > 0)
                *d++ = digits[--n];
        return d;
}

static char *write_fields(char *d, const VarlinkReplyField fields[], size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        *d++ = ',';
                d += json_escape(d, fields[i].name, strlen(fields[i].name));
                *d++ = ':';
                if (fields[i].string)
                        d += json_escape(d, fields[i].string, fields[i].string_size);
                else
                        d = write_uint64(d, fields[i].number);
        }
        return d;
}

int varlink_conn_reply_fields(VarlinkConn *c, const VarlinkReplyField fields[], size_t n) {
        static const char head[] = "{\"parameters\":{", tail[] = "}}"; /* tail with the NUL */
        _cleanup_(conn_unrefp) VarlinkConn *ref = NULL;
        size_t need = sizeof(head) + sizeof(tail);
        VarlinkCallFlags flags;
        int r;

        assert(c);
        assert(fields || n == 0);

        if (!c->pending && !c->answering)
                return -EBADMSG;
        flags = c->answering ? c->answering->flags : c->pending_flags;
        for (size_t i = 0; i < n; i++)
                need += JSON_ESCAPED_MAX(strlen(fields[i].name)) + 1 +
                        (fields[i].string ? JSON_ESCAPED_MAX(fields[i].string_size) : 20) + 1;

        ref = conn_ref(c);
        if (!c->disconnected && !(flags & VARLINK_CALL_ONEWAY)) {
                VarlinkBuffer *b = conn_answer_buffer(c);
                char *p = b ? varlink_buffer_reserve(b, need) : NULL, *d;

                if (!p)
                        return conn_reply_failed(c, -ENOMEM);
                d = mempcpy(p, head, sizeof(head) - 1);
                d = write_fields(d, fields, n);
                d = mempcpy(d, tail, sizeof(tail));
                b->end += (size_t) (d - p);
                if (b != &c->out)
                        c->held_bytes += (size_t) (d - p);
                r = conn_queued(c);
                if (r < 0)
                        return conn_reply_failed(c, r);
        }
        return conn_answer_done(c);
}

int varlink_conn_notify(VarlinkConn *c, json_object *parameters) {
        return conn_reply_internal(c, NULL, parameters, true);
}

int varlink_conn_error(VarlinkConn *c, const char *error, json_object *parameters) {
        int r;

        assert(error);

        r = conn_reply_internal(c, error, parameters, false);
        if (r < 0)
                return r;
        return error_to_errno(error);
}

int varlink_conn_error_invalid_parameter(VarlinkConn *c, const char *parameter) {
        return varlink_conn_errorb(c, VARLINK_ERROR_INVALID_PARAMETER,
                                   "parameter", json_object_new_string(parameter ?: ""),
                                   NULL);
}

int varlink_conn_dispatch(VarlinkConn *c, json_object *parameters, const VarlinkField fields[],
                          void *target) {
        const char *bad = NULL;
        int r;

        assert(c);

        r = varlink_dispatch(parameters, fields, target, &bad);
        if (r < 0)
                return varlink_conn_error_invalid_parameter(c, bad);
        return 0;
}

/* Answers with the parameters built from json_build_object() pairs; an error answer
 * with error set, a "continues" one with continues. A failure to build them is an answer
 * that cannot be queued. */
static int conn_answer_va(VarlinkConn *c, const char *error, bool continues, va_list ap) {
        json_object *p;
        int r;

        r = json_build_object_va(&p, ap);
        if (r < 0)
                return (c->pending || c->answering) && !c->disconnected ? conn_reply_failed(c, r) : r;
        if (error)
                return varlink_conn_error(c, error, p);
        return continues ? varlink_conn_notify(c, p) : varlink_conn_reply(c, p);
}

int varlink_conn_replyb(VarlinkConn *c, ...) {
        va_list ap;
        int r;

        va_start(ap, c);
        r = conn_answer_va(c, NULL, false, ap);
        va_end(ap);
        return r;
}

int varlink_conn_notifyb(VarlinkConn *c, ...) {
        va_list ap;
        int r;

        va_start(ap, c);
        r = conn_answer_va(c, NULL, true, ap);
        va_end(ap);
        return r;
}

int varlink_conn_errorb(VarlinkConn *c, const char *error, ...) {
        va_list ap;
        int r;

        assert(error);

        va_start(ap, error);
        r = conn_answer_va(c, error, false, ap);
        va_end(ap);
        return r;
}

size_t varlink_conn_output_size(VarlinkConn *c) {
        return varlink_buffer_size(&c->out);
}

size_t varlink_conn_unread_size(VarlinkConn *c) {
        int n = 0;

        if (c->disconnected || ioctl(c->fd, SIOCOUTQ, &n) < 0 || n < 0)
                n = 0;
        return varlink_buffer_size(&c->out) + (size_t) n;
}

bool varlink_conn_has_pending_call(VarlinkConn *c) {
        return c->pending && !c->disconnected;
}

int varlink_conn_hold(VarlinkConn *c, void *userdata, size_t size, VarlinkHeld **ret) {
        VarlinkHeld *h;

        assert(c);
        assert(ret);
        assert(c->pending && !c->answering);
        assert(!(c->pending_flags & VARLINK_CALL_MORE));

        if (c->disconnected)
                return -ENOTCONN;
        h = conn_held_new(c);
        if (!h)
                return -ENOMEM;
        h->userdata = userdata;
        h->flags = c->pending_flags;
        h->size = size;
        h->held = true;
        if (c->held_tail)
                c->held_tail->next = h;
        else
                c->held_head = h;
        c->held_tail = h;
        c->n_held++;
        c->held_size += size;
        /* The call is no longer the connection's current one: later calls are read. */
        c->pending = false;
        c->pending_flags = 0;
        *ret = h;
        return 0;
}

VarlinkConn *varlink_held_answer(VarlinkHeld *h) {
        assert(h);
        assert(h->held && !h->answered);
        assert(!h->conn->answering);

        h->conn->answering = h;
        return h->conn;
}

void *varlink_held_get_userdata(VarlinkHeld *h) {
        return h->userdata;
}

VarlinkHeld *varlink_conn_next_held(VarlinkConn *c, VarlinkHeld *after) {
        for (VarlinkHeld *h = after ? after->next : c->held_head; h; h = h->next)
                if (h->held && !h->answered)
                        return h;
        return NULL;
}

void *varlink_conn_get_userdata(VarlinkConn *c) {
        return c->userdata;
}

void varlink_conn_set_long_lived(VarlinkConn *c, bool b) {
        c->long_lived = b;
}

void varlink_conn_set_userdata(VarlinkConn *c, void *userdata) {
        c->userdata = userdata;
}

VarlinkServer *varlink_conn_get_server(VarlinkConn *c) {
        return c->server;
}

const char *varlink_conn_describe(VarlinkConn *c) {
        return c->description;
}

int varlink_conn_get_peer_credentials(VarlinkConn *c, uid_t *ret_uid, gid_t *ret_gid) {
        if (c->peer.pid <= 0)
                return -ENODATA;
        if (ret_uid)
                *ret_uid = c->peer.uid;
        if (ret_gid)
                *ret_gid = c->peer.gid;
        return 0;
}

uid_t varlink_conn_get_peer_uid(VarlinkConn *c) {
        uid_t uid;

        return varlink_conn_get_peer_credentials(c, &uid, NULL) < 0 ? UID_INVALID : uid;
}

static void conn_disconnect(VarlinkConn *c) {
        VarlinkServer *s = c->server;

        if (c->disconnected)
                return;
        c->disconnected = true;

        /* Answers queued before the close still go out, as far as the socket takes them
         * without waiting: the input loop writes a batch's answers only at its end. */
        (void) conn_flush(c);
        (void) epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        c->defer = sd_event_source_disable_unref(c->defer);
        if (c->in_flushing) {
                LIST_REMOVE(flushing, s->flushing, c);
                c->in_flushing = false;
                conn_unref(c); /* not the last: the server's is */
        }
        closep(&c->fd);
        c->fd = -EBADF;

        LIST_REMOVE(connections, s->connections, c);
        s->n_connections--;
        s->input_held -= c->input_held;
        c->input_held = 0;
        server_resume_accept(s);

        if (s->on_disconnect)
                s->on_disconnect(c, s->userdata);
        /* The held calls were the disconnect handler's to forget. */
        conn_held_free_all(c);
        log_debug("Connection %s closed.", c->description);
        conn_unref(c); /* the server's reference */
}

void varlink_conn_close(VarlinkConn *c) {
        conn_disconnect(c);
}

static int builtin_get_info(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        VarlinkServer *s = c->server;
        _cleanup_json_ json_object *ifaces = NULL;
        int r;

        r = varlink_conn_dispatch(c, parameters, (const VarlinkField[]) { {} }, NULL);
        if (r < 0)
                return r;

        ifaces = json_object_new_array();
        if (!ifaces)
                return -ENOMEM;
        r = json_array_append(ifaces, json_object_new_string("org.varlink.service"));
        for (size_t i = 0; r >= 0 && i < s->n_interfaces; i++)
                r = json_array_append(ifaces, json_object_new_string(s->interfaces[i].name));
        if (r < 0)
                return r;

        return varlink_conn_replyb(c,
                                   "vendor", json_object_new_string(s->info.vendor ?: ""),
                                   "product", json_object_new_string(s->info.product ?: ""),
                                   "version", json_object_new_string(s->info.version ?: ""),
                                   "url", json_object_new_string(s->info.url ?: ""),
                                   "interfaces", TAKE_PTR(ifaces),
                                   NULL);
}

static const char service_description[] =
        "# The Varlink Service Interface is provided by every varlink service.\n"
        "interface org.varlink.service\n"
        "\n"
        "method GetInfo() -> (\n  vendor: string,\n  product: string,\n  version: string,\n"
        "  url: string,\n  interfaces: []string\n)\n"
        "\n"
        "method GetInterfaceDescription(interface: string) -> (description: string)\n"
        "\n"
        "error InterfaceNotFound (interface: string)\n"
        "error MethodNotFound (method: string)\n"
        "error MethodNotImplemented (method: string)\n"
        "error InvalidParameter (parameter: string)\n"
        "error PermissionDenied ()\n"
        "error ExpectedMore ()\n";

static int builtin_get_interface_description(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags,
                                             void *userdata) {
        VarlinkServer *s = c->server;
        struct { const char *interface; } p = {};
        const char *description = NULL;
        int r;

        r = varlink_conn_dispatch(c, parameters,
                                  (const VarlinkField[]) {
                                          { "interface", VARLINK_STRING, 0, true },
                                          {},
                                  },
                                  &p);
        if (r < 0)
                return r;

        if (streq(p.interface, "org.varlink.service"))
                description = service_description;
        for (size_t i = 0; !description && i < s->n_interfaces; i++)
                if (streq(s->interfaces[i].name, p.interface))
                        description = s->interfaces[i].description;
        if (!description)
                return varlink_conn_errorb(c, VARLINK_ERROR_INTERFACE_NOT_FOUND,
                                           "interface", json_object_new_string(p.interface),
                                           NULL);

        return varlink_conn_replyb(c, "description", json_object_new_string(description), NULL);
}

static VarlinkMethod server_find_method(VarlinkServer *s, const char *name) {
        if (strncmp(name, "org.varlink.service.", 20) == 0) {
                if (streq(name + 20, "GetInfo"))
                        return builtin_get_info;
                if (streq(name + 20, "GetInterfaceDescription"))
                        return builtin_get_interface_description;
                return NULL;
        }
        for (size_t i = 0; i < s->n_methods; i++)
                if (streq(s->methods[i].name, name))
                        return s->methods[i].func;
        return NULL;
}

static VarlinkPlainMethod server_find_plain(VarlinkServer *s, const char *name, size_t size) {
        for (size_t i = 0; i < s->n_methods; i++)
                if (s->methods[i].plain && strncmp(s->methods[i].name, name, size) == 0 &&
                    s->methods[i].name[size] == '\0')
                        return s->methods[i].plain;
        return NULL;
}

/* A plain call to a method with a plain handler, read in place: before the message is
 * checked (then it must be ASCII, and the reader checks it) or after. Returns 1 if the
 * handler took the call, 0 if not (the general path takes it), < 0 when the connection
 * must be closed. */
static int conn_dispatch_plain(VarlinkConn *c, const char *data, size_t size, bool checked) {
        VarlinkPlainMethod func;
        VarlinkView view;
        int r;

        if (!(checked ? varlink_view_parse(data, size, &view) : varlink_view_parse_unchecked(data, size, &view)))
                return 0;
        func = server_find_plain(c->server, view.method, view.method_size);
        if (!func)
                return 0;

        c->pending = true;
        c->pending_flags = 0;
        r = func(c, &view, c->server->userdata);
        if (r == 0) {
                c->pending = false; /* declined, unanswered */
                return 0;
        }
        if (r < 0 && varlink_conn_has_pending_call(c))
                return log_debug_errno(r, "Method %.*s failed for %s: %m", (int) view.method_size, view.method,
                                       c->description);
        return 1;
}

/* Handles one message. Returns < 0 when the connection must be closed. */
static int conn_dispatch(VarlinkConn *c, const char *data, size_t size) {
        _cleanup_json_ json_object *m = NULL;
        json_object *method = NULL, *parameters = NULL;
        VarlinkCallFlags flags = 0;
        VarlinkMethod func;
        int r;

        /* Most calls are plain and ASCII: read and checked in one pass. The rest are
         * checked first; a plain call with other UTF-8 in it is read in place after that. */
        if (c->server->n_plain > 0) {
                r = conn_dispatch_plain(c, data, size, false);
                if (r != 0)
                        return MIN(r, 0);
        }
        r = varlink_message_check(data, size);
        if (r >= 0 && c->server->n_plain > 0) {
                r = conn_dispatch_plain(c, data, size, true);
                if (r != 0)
                        return MIN(r, 0);
        }
        if (r >= 0)
                r = varlink_message_parse_checked(data, size, &m);
        if (r < 0)
                return log_debug_errno(r, "%s sent a message that is not a JSON object, closing.", c->description);

        json_object_object_foreach(m, key, value) {
                if (streq(key, "method"))
                        method = value;
                else if (streq(key, "parameters"))
                        parameters = value;
                else if (streq(key, "more") || streq(key, "oneway")) {
                        if (value && !json_object_is_type(value, json_type_boolean))
                                return log_debug_errno(EBADMSG, "%s: '%s' is not a boolean.", c->description, key);
                        if (value && json_object_get_boolean(value))
                                flags |= streq(key, "more") ? VARLINK_CALL_MORE : VARLINK_CALL_ONEWAY;
                } else if (!streq(key, "upgrade"))
                        return log_debug_errno(EBADMSG, "%s: unknown message field '%s'.", c->description, key);
        }
        if (!method || !json_object_is_type(method, json_type_string))
                return log_debug_errno(EBADMSG, "%s sent a message without a method.", c->description);
        if (parameters && !json_object_is_type(parameters, json_type_object))
                return log_debug_errno(EBADMSG, "%s: parameters is not an object.", c->description);
        if ((flags & VARLINK_CALL_MORE) && (flags & VARLINK_CALL_ONEWAY))
                return log_debug_errno(EBADMSG, "%s: a call cannot be both 'more' and 'oneway'.", c->description);

        c->pending = true;
        c->pending_flags = flags;

        func = server_find_method(c->server, json_object_get_string(method));
        if (!func) {
                /* Answered, or the connection is closed if that failed. */
                (void) varlink_conn_errorb(c, VARLINK_ERROR_METHOD_NOT_FOUND,
                                           "method", json_object_get(method),
                                           NULL);
                return 0;
        }

        r = func(c, parameters, flags, c->server->userdata);
        if (r < 0 && varlink_conn_has_pending_call(c))
                return log_debug_errno(r, "Method %s failed for %s: %m", json_object_get_string(method),
                                       c->description);
        return 0;
}

/* After the input loop: an empty buffer over INPUT_KEEP is released, an incomplete message
 * that waits for the peer starts its clock, and the bytes held count in the server's
 * total. Returns < 0 when that closed the connection, being over the total. */
static int conn_track_input(VarlinkConn *c) {
        VarlinkServer *s = c->server;
        size_t n = varlink_buffer_size(&c->in);
        char more[48];

        if (n == 0) {
                if (c->in.allocated > INPUT_KEEP)
                        varlink_buffer_done(&c->in);
                c->message_start = 0;
        } else if (conn_blocked(c))
                c->message_start = 0; /* the rest waits for our answer, not for the peer */
        else if (c->message_start == 0)
                c->message_start = server_now(s);
        s->input_held = s->input_held - c->input_held + n;
        c->input_held = n;

        if (n == 0 || conn_blocked(c) || s->limits.max_input == 0 || s->input_held <= s->limits.max_input)
                return 0;
        if (server_log_allowed(s, &s->log_input, more))
                log_warning("%s: its incomplete message of %zu bytes takes the input held for all connections "
                            "over %zu bytes, closing it%s.",
                            c->description, n, s->limits.max_input, more);
        conn_disconnect(c);
        return -ENOBUFS;
}

static int conn_process_input(VarlinkConn *c) {
        _unused_ _cleanup_(conn_unrefp) VarlinkConn *ref = conn_ref(c);
        int r;

        while (!c->disconnected && !conn_blocked(c)) {
                const char *data;
                size_t size;

                r = varlink_buffer_next(&c->in, c->server->max_message, &data, &size);
                if (r == -EMSGSIZE) {
                        log_warning("%s sent a message over %zu bytes, closing.", c->description,
                                    c->server->max_message);
                        conn_disconnect(c);
                        return 0;
                }
                if (r == 0)
                        break;

                c->processing = true;
                r = conn_dispatch(c, data, size);
                c->processing = false;
                if (c->disconnected)
                        return 0;
                if (r < 0) {
                        conn_disconnect(c);
                        return 0;
                }
                varlink_buffer_consume(&c->in, size + 1);
                c->message_start = 0;
        }

        if (conn_track_input(c) < 0)
                return 0;
        if (conn_write(c) < 0)
                return 0;
        if (c->eof && !c->pending && !c->held_head && varlink_buffer_size(&c->out) == 0) {
                /* The peer is done and every answer is out. */
                conn_disconnect(c);
                return 0;
        }
        return conn_update_events(c);
}

static int conn_read(VarlinkConn *c) {
        ssize_t n;

        /* Read into the server's scratch space and keep only what came: a connection's
         * buffer is then at most twice what it holds or INPUT_KEEP, not READ_CHUNK bytes
         * for each byte a client drips. */
        n = recv(c->fd, c->server->scratch, READ_CHUNK, MSG_DONTWAIT);
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                return -errno;
        }
        if (n == 0) {
                c->eof = true;
                return 0;
        }
        if (varlink_buffer_append(&c->in, c->server->scratch, (size_t) n) < 0)
                return -ENOMEM;
        c->active = server_now(c->server);
        return 0;
}

static int conn_handle_io(VarlinkConn *c, uint32_t revents) {
        int r;

        if (revents & EPOLLOUT) {
                if (conn_write(c) < 0)
                        return 0;
                if (varlink_buffer_size(&c->out) == 0 && c->server->on_drained) {
                        c->server->on_drained(c, c->server->userdata);
                        if (c->disconnected)
                                return 0;
                }
        }

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (!conn_blocked(c) && !c->eof) {
                        r = conn_read(c);
                        if (r < 0) {
                                log_debug_errno(r, "Failed to read from %s: %m", c->description);
                                conn_disconnect(c);
                                return 0;
                        }
                } else if (revents & (EPOLLHUP | EPOLLERR)) {
                        /* Hung up while a call is pending: nobody is left to answer. */
                        conn_disconnect(c);
                        return 0;
                }
        }

        (void) conn_process_input(c);
        return 0;
}

static int on_server_epoll(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        VarlinkServer *s = userdata;
        struct epoll_event events[64];
        int n;

        n = epoll_wait(s->epoll_fd, events, ELEMENTSOF(events), 0);
        if (n < 0)
                return errno == EINTR ? 0 : log_error_errno(errno, "epoll_wait() failed: %m");

        /* Handling one connection may close another of this batch: keep them all alive
         * until the batch is done. */
        for (int i = 0; i < n; i++)
                conn_ref(events[i].data.ptr);
        for (int i = 0; i < n; i++) {
                VarlinkConn *c = events[i].data.ptr;

                if (!c->disconnected)
                        (void) conn_handle_io(c, events[i].events);
        }
        for (int i = 0; i < n; i++)
                conn_unref(events[i].data.ptr);
        /* More may be ready than fit in events: the source is level-triggered and fires again. */
        return 0;
}

static int on_server_flush(sd_event_source *source, void *userdata) {
        VarlinkServer *s = userdata;

        while (s->flushing) {
                VarlinkConn *c = s->flushing;

                LIST_REMOVE(flushing, s->flushing, c);
                c->in_flushing = false;
                (void) conn_process_input(c);
                conn_unref(c);
        }
        return 0;
}

static int on_conn_defer(sd_event_source *source, void *userdata) {
        (void) conn_process_input(userdata);
        return 0;
}

/* Idle: no call in flight, nothing buffered, and not long-lived. */
static bool conn_is_idle(VarlinkConn *c) {
        return !c->pending && !c->held_head && !c->long_lived && !c->processing &&
                varlink_buffer_size(&c->in) == 0;
}

/* How often the time-outs are checked: a quarter of the shorter one, within 10 ms…1 s.
 * 0: never, both are infinite. */
static uint64_t server_sweep_interval(VarlinkServer *s) {
        uint64_t t = MIN(s->limits.idle_timeout, s->limits.message_timeout);

        if (t == UINT64_MAX)
                return 0;
        return MIN(MAX(t / 4, 10 * USEC_PER_MSEC), USEC_PER_SEC);
}

static void server_arm_sweep(VarlinkServer *s) {
        uint64_t interval = server_sweep_interval(s);

        if (interval == 0 || s->n_connections == 0) {
                (void) sd_event_source_set_enabled(s->sweep, SD_EVENT_OFF);
                return;
        }
        if (sd_event_source_set_time_relative(s->sweep, interval) >= 0)
                (void) sd_event_source_set_enabled(s->sweep, SD_EVENT_ONESHOT);
}

/* Why c is to be closed at now, or NULL. */
static const char *conn_timed_out(VarlinkConn *c, uint64_t now) {
        const VarlinkServerLimits *l = &c->server->limits;

        if (c->message_start > 0 && !conn_blocked(c) && now >= usec_add(c->message_start, l->message_timeout))
                return "message";
        if (conn_is_idle(c) && now >= usec_add(c->active, l->idle_timeout))
                return "idle";
        return NULL;
}

static void conn_time_out(VarlinkConn *c, const char *why, uint64_t now) {
        VarlinkServer *s = c->server;
        char more[48];

        if (streq(why, "idle"))
                log_debug("%s has been idle for %llu s, closing.", c->description,
                          (unsigned long long) ((now - c->active) / USEC_PER_SEC));
        else if (server_log_allowed(s, &s->log_timeout, more))
                log_warning("%s has not sent a whole message within %llu ms of its first byte (%zu bytes so far), "
                            "closing it%s.",
                            c->description, (unsigned long long) ((now - c->message_start) / USEC_PER_MSEC),
                            varlink_buffer_size(&c->in), more);
        conn_disconnect(c);
}

static int on_sweep(sd_event_source *source, uint64_t usec, void *userdata) {
        VarlinkServer *s = userdata;
        uint64_t now = server_now(s);
        VarlinkConn **expired = NULL;
        size_t n = 0;

        /* Collected first: a disconnect handler may close other connections. */
        LIST_FOREACH(connections, c, s->connections)
                if (conn_timed_out(c, now)) {
                        VarlinkConn **e = reallocarray(expired, n + 1, sizeof(VarlinkConn *));
                        if (!e)
                                break; /* the rest next time */
                        expired = e;
                        expired[n++] = conn_ref(c);
                }
        for (size_t i = 0; i < n; i++) {
                const char *why = expired[i]->disconnected ? NULL : conn_timed_out(expired[i], now);

                if (why)
                        conn_time_out(expired[i], why, now);
                conn_unref(expired[i]);
        }
        free(expired);
        server_arm_sweep(s);
        return 0;
}

static int server_add_connection(VarlinkServer *s, int fd) {
        _cleanup_close_ int cfd = fd;
        VarlinkConn *c;
        socklen_t len = sizeof(struct ucred);
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        c->server = s;
        c->fd = TAKE_FD(cfd);

        if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &c->peer, &len) < 0 || len != sizeof(c->peer))
                c->peer = (struct ucred) {};
        if (c->peer.pid > 0)
                snprintf(c->description, sizeof(c->description), "pid %d (fd %d)", (int) c->peer.pid, c->fd);
        else
                snprintf(c->description, sizeof(c->description), "fd %d", c->fd);

        r = sd_event_add_defer(s->event, &c->defer, on_conn_defer, c);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
        if (r >= 0) {
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

                c->events = EPOLLIN;
                if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
                        r = -errno;
        }
        if (r < 0) {
                sd_event_source_disable_unref(c->defer);
                close(c->fd);
                free(c);
                return r;
        }

        LIST_PREPEND(connections, s->connections, c);
        s->n_connections++;
        c->active = server_now(s);
        if (s->n_connections == 1)
                server_arm_sweep(s);
        log_debug("New connection from %s.", c->description);
        return 0;
}

static void server_set_listening(VarlinkServer *s, int enabled) {
        for (size_t i = 0; i < s->n_listeners; i++)
                (void) sd_event_source_set_enabled(s->listeners[i], enabled);
}

/* Stops accepting: at the connection limit until a connection closes, after a failed
 * accept() (error) also until a short timer ends; the listening sockets would otherwise
 * stay readable and wake the loop at once, again and again. */
static void server_pause_accept(VarlinkServer *s, int error) {
        char more[48];

        server_set_listening(s, SD_EVENT_OFF);
        s->accept_paused = true;
        if (error != 0 && sd_event_source_set_time_relative(s->resume, ACCEPT_RETRY_USEC) >= 0)
                (void) sd_event_source_set_enabled(s->resume, SD_EVENT_ONESHOT);

        if (!server_log_allowed(s, &s->log_pause, more))
                return;
        if (error != 0)
                log_warning_errno(error, "Failed to accept a connection (%u open), accepting none for %llu ms "
                                  "or until one closes%s: %m",
                                  s->n_connections, (unsigned long long) (ACCEPT_RETRY_USEC / USEC_PER_MSEC), more);
        else
                log_warning("At the limit of %u connections, none of them idle: accepting none until one "
                            "closes%s.",
                            s->limits.max_connections, more);
}

static void server_resume_accept(VarlinkServer *s) {
        if (!s->accept_paused || s->closing)
                return;
        s->accept_paused = false;
        (void) sd_event_source_set_enabled(s->resume, SD_EVENT_OFF);
        server_set_listening(s, SD_EVENT_ON);
}

static int on_resume(sd_event_source *source, uint64_t usec, void *userdata) {
        server_resume_accept(userdata);
        return 0;
}

/* Whether the peer has sent bytes the loop has not read yet: it has spoken, it is only
 * not read yet (a busy loop, or one still accepting its batch). */
static bool conn_has_unread(VarlinkConn *c) {
        int n = 0;

        return ioctl(c->fd, FIONREAD, &n) == 0 && n > 0;
}

/* The connection idle longest, or NULL. */
static VarlinkConn *server_find_idlest(VarlinkServer *s, uint64_t now) {
        VarlinkConn *oldest = NULL;

        /* Not one accepted in this very iteration: it has not had the time to say anything. */
        LIST_FOREACH(connections, c, s->connections)
                if (conn_is_idle(c) && varlink_buffer_size(&c->out) == 0 && c->active < now &&
                    (!oldest || c->active < oldest->active))
                        oldest = c;
        return oldest;
}

/* At the connection limit (or out of descriptors) with a client waiting: closes the
 * connection idle longest, as nginx reuses keep-alive connections. false if none is idle. */
static bool server_evict_idle(VarlinkServer *s) {
        uint64_t now = server_now(s);
        char more[48];

        /* A few tries: one whose call waits unread in the socket is active, not idle. */
        for (unsigned i = 0; i < 8; i++) {
                VarlinkConn *oldest = server_find_idlest(s, now);

                if (!oldest)
                        return false;
                if (conn_has_unread(oldest)) {
                        oldest->active = now;
                        continue;
                }
                if (server_log_allowed(s, &s->log_evict, more))
                        log_notice("At the limit of %u connections: closing %s, idle for %llu ms, to make room "
                                   "for a new one%s.",
                                   s->n_connections, oldest->description,
                                   (unsigned long long) ((now - MIN(now, oldest->active)) / USEC_PER_MSEC), more);
                conn_disconnect(oldest);
                return true;
        }
        return false;
}

static int on_listen_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        VarlinkServer *s = userdata;

        /* Accept a bounded batch per wakeup, so a connection storm cannot starve the others. */
        for (unsigned i = 0; i < 64; i++) {
                if (s->limits.max_connections > 0 && s->n_connections >= s->limits.max_connections) {
                        /* Only the wakeup says that somebody waits: after an accept(), let the
                         * socket, still readable if so, wake us again. */
                        if (i > 0)
                                break;
                        if (!server_evict_idle(s)) {
                                server_pause_accept(s, 0);
                                break;
                        }
                }
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                int error = errno;

                                if (server_evict_idle(s))
                                        continue;
                                server_pause_accept(s, error);
                        } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_warning_errno(errno, "Failed to accept connection: %m");
                        break;
                }
                int r = server_add_connection(s, cfd);
                if (r < 0)
                        log_warning_errno(r, "Failed to set up connection: %m");
        }
        return 0;
}

int varlink_server_new(sd_event *event, const VarlinkServerInfo *info, void *userdata, VarlinkServer **ret) {
        VarlinkServer *s;

        assert(event);
        assert(ret);

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->epoll_fd = -EBADF;
        s->event = sd_event_ref(event);
        s->userdata = userdata;
        if (info)
                s->info = *info;
        s->max_message = VARLINK_DEFAULT_MAX_MESSAGE;
        s->scratch = malloc(READ_CHUNK);
        if (!s->scratch) {
                varlink_server_free(s);
                return -ENOMEM;
        }
        s->limits = VARLINK_SERVER_LIMITS_DEFAULT;
        s->log_pause = s->log_evict = s->log_input = s->log_timeout = RATELIMIT_INIT(LOG_INTERVAL_USEC, 1);

        s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (s->epoll_fd < 0) {
                int r = -errno;
                varlink_server_free(s);
                return r;
        }
        int r = sd_event_add_io(event, &s->epoll_source, s->epoll_fd, EPOLLIN, on_server_epoll, s);
        if (r >= 0)
                r = sd_event_add_time_relative(event, &s->sweep, CLOCK_MONOTONIC, USEC_PER_SEC, 0, on_sweep, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->sweep, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(event, &s->resume, CLOCK_MONOTONIC, ACCEPT_RETRY_USEC, 0,
                                               on_resume, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->resume, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_defer(event, &s->flush, on_server_flush, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->flush, SD_EVENT_OFF);
        if (r < 0) {
                varlink_server_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

VarlinkServer *varlink_server_free(VarlinkServer *s) {
        if (!s)
                return NULL;
        s->closing = true;
        while (s->connections)
                conn_disconnect(s->connections);
        sd_event_source_disable_unref(s->sweep);
        sd_event_source_disable_unref(s->resume);
        sd_event_source_disable_unref(s->flush);
        free(s->scratch);
        for (size_t i = 0; i < s->n_listeners; i++)
                sd_event_source_disable_unref(s->listeners[i]);
        free(s->listeners);
        for (size_t i = 0; i < s->n_interfaces; i++) {
                free(s->interfaces[i].name);
                free(s->interfaces[i].description);
        }
        free(s->interfaces);
        for (size_t i = 0; i < s->n_methods; i++)
                free(s->methods[i].name);
        free(s->methods);
        sd_event_source_disable_unref(s->epoll_source);
        if (s->epoll_fd >= 0)
                close(s->epoll_fd);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

int varlink_server_add_interface(VarlinkServer *s, const char *description) {
        const char *p = description;
        Interface *n;
        char *name = NULL;

        /* The name is on the first line that starts with "interface ". */
        while (p && *p) {
                if (strncmp(p, "interface ", 10) == 0) {
                        const char *b = p + 10;
                        name = strndup(b, strcspn(b, " \t\r\n"));
                        break;
                }
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        if (!name || !name[0]) {
                free(name);
                return -EINVAL;
        }

        n = reallocarray(s->interfaces, s->n_interfaces + 1, sizeof(Interface));
        if (!n) {
                free(name);
                return -ENOMEM;
        }
        s->interfaces = n;
        n[s->n_interfaces] = (Interface) { .name = name, .description = strdup(description) };
        if (!n[s->n_interfaces].description) {
                free(name);
                return -ENOMEM;
        }
        s->n_interfaces++;
        return 0;
}

int varlink_server_bind(VarlinkServer *s, const char *method, VarlinkMethod func) {
        Method *n;

        n = reallocarray(s->methods, s->n_methods + 1, sizeof(Method));
        if (!n)
                return -ENOMEM;
        s->methods = n;
        n[s->n_methods] = (Method) {
                .name = strdup(method),
                .func = func,
        };
        if (!n[s->n_methods].name)
                return -ENOMEM;
        s->n_methods++;
        return 0;
}

int varlink_server_bind_plain(VarlinkServer *s, const char *method, VarlinkPlainMethod func) {
        for (size_t i = 0; i < s->n_methods; i++)
                if (streq(s->methods[i].name, method)) {
                        if (!s->methods[i].plain)
                                s->n_plain++;
                        s->methods[i].plain = func;
                        return 0;
                }
        return -ENOENT;
}

void varlink_server_set_disconnect_handler(VarlinkServer *s, VarlinkConnHandler h) {
        s->on_disconnect = h;
}

void varlink_server_set_drained_handler(VarlinkServer *s, VarlinkConnHandler h) {
        s->on_drained = h;
}

void varlink_server_set_max_message_size(VarlinkServer *s, size_t max) {
        s->max_message = max;
}

void varlink_server_set_limits(VarlinkServer *s, const VarlinkServerLimits *limits) {
        s->limits = *limits;
        server_arm_sweep(s);
}

unsigned varlink_server_n_connections(VarlinkServer *s) {
        return s->n_connections;
}

size_t varlink_server_input_held(VarlinkServer *s) {
        return s->input_held;
}

int varlink_server_listen_fd(VarlinkServer *s, int fd) {
        sd_event_source **n, *source = NULL;
        int r;

        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        n = reallocarray(s->listeners, s->n_listeners + 1, sizeof(sd_event_source *));
        if (!n) {
                close(fd);
                return -ENOMEM;
        }
        s->listeners = n;

        r = sd_event_add_io(s->event, &source, fd, EPOLLIN, on_listen_io, s);
        if (r < 0) {
                close(fd);
                return r;
        }
        (void) sd_event_source_set_io_fd_own(source, true);
        s->listeners[s->n_listeners++] = source;
        return 0;
}

void varlink_server_flush_and_close(VarlinkServer *s, uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;

        /* Stop accepting first, so nobody new arrives while we drain. */
        s->closing = true;
        server_set_listening(s, SD_EVENT_OFF);

        for (;;) {
                bool busy = false;

                LIST_FOREACH(connections, c, s->connections) {
                        if (varlink_buffer_size(&c->out) == 0)
                                continue;
                        if (conn_flush(c) < 0)
                                c->out.start = c->out.end = 0; /* peer gone: drop what is left */
                        busy = busy || varlink_buffer_size(&c->out) > 0;
                }
                uint64_t now = now_usec();
                if (!busy || now >= deadline)
                        break;
                (void) poll(NULL, 0, (int) MIN((deadline - now) / USEC_PER_MSEC + 1, 10U));
        }

        while (s->connections)
                conn_disconnect(s->connections);
}
