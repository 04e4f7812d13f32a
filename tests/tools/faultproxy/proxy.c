/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

#include "list.h"
#include "log.h"
#include "macro.h"
#include "proxy.h"

#define READ_CHUNK (64U * 1024U)
/* Stop reading from a peer while this much of what it sent is still waiting for the other
 * peer, so a fast writer facing a slow reader cannot grow our memory without bound. */
#define PENDING_HIGH_WATER (1024U * 1024U)
/* How long to stop accepting when out of file descriptors, instead of spinning on the
 * listening socket that stays readable. */
#define ACCEPT_RETRY_USEC (100 * USEC_PER_MSEC)

/* The two ends of a pair; flows[e] carries what end e sends, to the other end. */
enum { END_CLIENT, END_SERVER, _END_MAX };

typedef struct Pair Pair;

typedef struct PairEnd {
        Pair *pair;
        int fd;
        sd_event_source *io;
        bool shut; /* we shut down our writing side towards this end */
} PairEnd;

struct Pair {
        Proxy *proxy;
        LIST_FIELDS(Pair, pairs);
        uint64_t id;
        PairEnd ends[_END_MAX];
        Flow flows[_END_MAX];
        sd_event_source *timer; /* releases held-back messages */
};

struct Proxy {
        sd_event *event;
        sd_event_source *listener, *accept_retry;
        bool listen_tcp;
        const Address *upstream;
        const FaultPolicy *policy;
        uint64_t seed;
        ProxyCounters counters;
        Pair *pairs;
        unsigned n_pairs;
};

static const char *const end_names[_END_MAX] = { "client", "server" };

static uint64_t proxy_now(Proxy *p) {
        uint64_t now;
        struct timespec ts;

        if (sd_event_now(p->event, CLOCK_MONOTONIC, &now) >= 0)
                return now;
        /* Before the loop first ran. */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static Pair *pair_free(Pair *pair) {
        Proxy *p;

        if (!pair)
                return NULL;
        p = pair->proxy;

        for (unsigned e = 0; e < _END_MAX; e++) {
                pair->ends[e].io = sd_event_source_disable_unref(pair->ends[e].io);
                closep(&pair->ends[e].fd);
                flow_done(&pair->flows[e]);
        }
        sd_event_source_disable_unref(pair->timer);

        LIST_REMOVE(pairs, p->pairs, pair);
        p->n_pairs--;

        log_debug("Connection %" PRIu64 " closed.", pair->id);
        free(pair);
        return NULL;
}

/* Writes what flows[e] holds for the other end. */
static int pair_flush(Pair *pair, unsigned e) {
        Flow *f = &pair->flows[e];
        PairEnd *to = &pair->ends[!e];

        while (varlink_buffer_size(&f->out) > 0) {
                ssize_t n = send(to->fd, f->out.data + f->out.start, varlink_buffer_size(&f->out),
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0; /* the kernel buffer is full: EPOLLOUT tells us when to go on */
                        return log_debug_errno(errno, "Connection %" PRIu64 ": failed to write to the %s: %m",
                                               pair->id, end_names[!e]);
                }
                varlink_buffer_consume(&f->out, (size_t) n);
        }

        /* End e closed and all it sent is delivered: pass the end of stream on, keeping the
         * other direction open for the answers still on their way. */
        if (flow_finished(f) && !to->shut) {
                if (shutdown(to->fd, SHUT_WR) < 0 && errno != ENOTCONN)
                        return log_debug_errno(errno, "Connection %" PRIu64 ": failed to shut down the %s: %m",
                                               pair->id, end_names[!e]);
                to->shut = true;
        }
        return 0;
}

static int pair_read(Pair *pair, unsigned e) {
        Proxy *p = pair->proxy;
        Flow *f = &pair->flows[e];
        ssize_t n;
        char *buf;
        int r;

        buf = varlink_buffer_reserve(&f->in, READ_CHUNK);
        if (!buf)
                return log_oom();
        n = recv(pair->ends[e].fd, buf, READ_CHUNK, MSG_DONTWAIT);
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                return log_debug_errno(errno, "Connection %" PRIu64 ": failed to read from the %s: %m", pair->id,
                                       end_names[e]);
        }
        if (n == 0) {
                size_t partial = flow_end_input(f);
                if (partial > 0)
                        log_debug("Connection %" PRIu64 ": the %s closed in the middle of a message, "
                                  "discarding %zu bytes.",
                                  pair->id, end_names[e], partial);
                return 0;
        }
        f->in.end += (size_t) n;

        r = flow_process(f, proxy_now(p));
        if (r == -EMSGSIZE) {
                p->counters.oversized++;
                return log_warning_errno(r, "Connection %" PRIu64 ": the %s sent a message over %zu bytes, "
                                            "closing both sides.",
                                         pair->id, end_names[e], f->max_message);
        }
        if (r < 0)
                return log_error_errno(r, "Connection %" PRIu64 ": failed to handle messages: %m", pair->id);
        return 0;
}

static bool pair_wants_read(Pair *pair, unsigned e) {
        const Flow *f = &pair->flows[e];
        return !f->eof && flow_pending_bytes(f) < PENDING_HIGH_WATER;
}

static int pair_update_io(Pair *pair, unsigned e) {
        PairEnd *end = &pair->ends[e];
        uint32_t events = 0;
        int r;

        if (pair_wants_read(pair, e))
                events |= EPOLLIN;
        if (varlink_buffer_size(&pair->flows[!e].out) > 0)
                events |= EPOLLOUT;

        /* With nothing to wait for, turn the source off: a peer that hung up keeps
         * reporting EPOLLHUP whatever we ask for, and we would spin. */
        if (events == 0)
                return sd_event_source_set_enabled(end->io, SD_EVENT_OFF);
        r = sd_event_source_set_io_events(end->io, events);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(end->io, SD_EVENT_ON);
}

static int on_pair_timer(sd_event_source *s, uint64_t usec, void *userdata);

static int pair_arm_timer(Pair *pair) {
        uint64_t next = MIN(flow_next_release(&pair->flows[END_CLIENT]),
                            flow_next_release(&pair->flows[END_SERVER]));
        int r;

        if (next == UINT64_MAX)
                return pair->timer ? sd_event_source_set_enabled(pair->timer, SD_EVENT_OFF) : 0;
        if (!pair->timer)
                /* An accuracy of 1 µs: the default (250 ms) would swamp the delays we inject. */
                return sd_event_add_time(pair->proxy->event, &pair->timer, CLOCK_MONOTONIC, next, 1, on_pair_timer,
                                         pair);
        r = sd_event_source_set_time(pair->timer, next);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(pair->timer, SD_EVENT_ONESHOT);
}

/* Moves everything along after an event. Returns 1 when the pair is done (both directions
 * ended and delivered), < 0 when it must be closed, else 0. */
static int pair_step(Pair *pair) {
        uint64_t now = proxy_now(pair->proxy);
        int r;

        for (unsigned e = 0; e < _END_MAX; e++) {
                r = flow_release(&pair->flows[e], now);
                if (r < 0)
                        return log_oom();
                r = pair_flush(pair, e);
                if (r < 0)
                        return r;
        }

        if (pair->ends[END_CLIENT].shut && pair->ends[END_SERVER].shut)
                return 1;

        r = pair_arm_timer(pair);
        if (r < 0)
                return log_error_errno(r, "Connection %" PRIu64 ": failed to arm timer: %m", pair->id);
        for (unsigned e = 0; e < _END_MAX; e++) {
                r = pair_update_io(pair, e);
                if (r < 0)
                        return log_error_errno(r, "Connection %" PRIu64 ": failed to update I/O events: %m",
                                               pair->id);
        }
        return 0;
}

static int on_pair_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Pair *pair = userdata;

        if (pair_step(pair) != 0)
                pair_free(pair);
        return 0;
}

static int on_pair_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        PairEnd *end = userdata;
        Pair *pair = end->pair;
        unsigned e = end == &pair->ends[END_CLIENT] ? END_CLIENT : END_SERVER;
        int r;

        /* On a hang-up or error, try both: a write or read then reports what happened. */
        if (revents & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
                r = pair_flush(pair, !e);
                if (r < 0)
                        goto close;
        }
        if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && pair_wants_read(pair, e)) {
                r = pair_read(pair, e);
                if (r < 0)
                        goto close;
        }

        if (pair_step(pair) == 0)
                return 0;
close:
        pair_free(pair);
        return 0;
}

static int pair_new(Proxy *p, int client_fd, int server_fd) {
        Pair *pair;
        int r;

        pair = calloc(1, sizeof(*pair));
        if (!pair) {
                close(client_fd);
                close(server_fd);
                return -ENOMEM;
        }
        pair->proxy = p;
        pair->id = p->counters.connections;
        pair->ends[END_CLIENT] = (PairEnd) { .pair = pair, .fd = client_fd };
        pair->ends[END_SERVER] = (PairEnd) { .pair = pair, .fd = server_fd };
        /* Two random streams per connection: its faults follow from the seed and its number. */
        flow_init(&pair->flows[END_CLIENT], FLOW_REQUESTS, p->policy, &p->counters.requests,
                  VARLINK_DEFAULT_MAX_MESSAGE, p->seed, 2 * pair->id);
        flow_init(&pair->flows[END_SERVER], FLOW_REPLIES, p->policy, &p->counters.replies,
                  VARLINK_DEFAULT_MAX_MESSAGE, p->seed, 2 * pair->id + 1);

        LIST_PREPEND(pairs, p->pairs, pair);
        p->n_pairs++;
        p->counters.connections++;

        for (unsigned e = 0; e < _END_MAX; e++) {
                r = sd_event_add_io(p->event, &pair->ends[e].io, pair->ends[e].fd, EPOLLIN, on_pair_io,
                                    &pair->ends[e]);
                if (r < 0) {
                        pair_free(pair);
                        return r;
                }
        }
        log_debug("Connection %" PRIu64 " opened.", pair->id);
        return 0;
}

static int on_accept_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Proxy *p = userdata;
        (void) sd_event_source_set_enabled(p->listener, SD_EVENT_ON);
        return 0;
}

static void proxy_pause_accepting(Proxy *p) {
        uint64_t when = proxy_now(p) + ACCEPT_RETRY_USEC;
        int r;

        if (p->accept_retry) {
                r = sd_event_source_set_time(p->accept_retry, when);
                if (r >= 0)
                        r = sd_event_source_set_enabled(p->accept_retry, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time(p->event, &p->accept_retry, CLOCK_MONOTONIC, when, USEC_PER_MSEC,
                                      on_accept_retry, p);
        /* Without the timer we would never resume, so keep accepting (and spinning) instead. */
        if (r >= 0)
                (void) sd_event_source_set_enabled(p->listener, SD_EVENT_OFF);
}

static int on_listen_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Proxy *p = userdata;

        /* A bounded batch per wakeup, so that a burst of connections cannot starve the
         * timers of the open ones. */
        for (unsigned i = 0; i < 64; i++) {
                int cfd, sfd, r;

                cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        r = errno;
                        if (r == EINTR || r == ECONNABORTED)
                                continue;
                        if (r == EAGAIN)
                                break;
                        log_warning_errno(r, "Failed to accept a connection: %m");
                        if (r == EMFILE || r == ENFILE || r == ENOBUFS || r == ENOMEM)
                                proxy_pause_accepting(p);
                        break;
                }
                if (p->listen_tcp)
                        (void) setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));

                /* A blocking connect, as address_connect() does: immediate for local sockets,
                 * which is what this test tool is for. */
                sfd = address_connect(p->upstream, true);
                if (sfd < 0) {
                        p->counters.upstream_failures++;
                        log_warning_errno(sfd, "Failed to connect to %s, closing the client: %m",
                                          p->upstream->string);
                        close(cfd);
                        continue;
                }

                r = pair_new(p, cfd, sfd);
                if (r < 0)
                        log_error_errno(r, "Failed to set up a connection: %m");
        }
        return 0;
}

int proxy_new(sd_event *event, int listen_fd, const Address *upstream, const FaultPolicy *policy, uint64_t seed,
              Proxy **ret) {
        _cleanup_close_ int fd = listen_fd;
        _cleanup_(proxy_freep) Proxy *p = NULL;
        struct sockaddr_storage sa;
        socklen_t len = sizeof(sa);
        int r;

        assert(event);
        assert(upstream);
        assert(policy);
        assert(ret);

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(event);
        p->upstream = upstream;
        p->policy = policy;
        p->seed = seed;

        if (getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                return -errno;
        p->listen_tcp = sa.ss_family == AF_INET || sa.ss_family == AF_INET6;
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
                return -errno;

        r = sd_event_add_io(event, &p->listener, fd, EPOLLIN, on_listen_io, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_io_fd_own(p->listener, true);
        TAKE_FD(fd);

        *ret = TAKE_PTR(p);
        return 0;
}

Proxy *proxy_free(Proxy *p) {
        if (!p)
                return NULL;
        while (p->pairs)
                pair_free(p->pairs);
        sd_event_source_disable_unref(p->listener);
        sd_event_source_disable_unref(p->accept_retry);
        sd_event_unref(p->event);
        free(p);
        return NULL;
}

void proxy_log_counters(Proxy *p) {
        const ProxyCounters *c = &p->counters;

        log_info("Counters: requests_forwarded=%" PRIu64 " requests_dropped=%" PRIu64 " replies_forwarded=%" PRIu64
                 " replies_dropped=%" PRIu64 " connections=%" PRIu64 " open=%u upstream_failures=%" PRIu64
                 " oversized=%" PRIu64,
                 c->requests.forwarded, c->requests.dropped, c->replies.forwarded, c->replies.dropped,
                 c->connections, p->n_pairs, c->upstream_failures, c->oversized);
}
