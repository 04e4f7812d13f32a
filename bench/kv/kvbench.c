/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkv-kvbench: a closed-loop load generator for mrkv-kvserver. One process, one epoll
 * loop, N connections, each with exactly one call in flight: raw Varlink framing, so
 * that the client costs as little as possible and the server is what is measured.
 * Prints throughput and latency percentiles. With --redis it sends the same load as
 * GET/SET in RESP to a Redis server instead, so that both servers can be measured by
 * one client (redis-benchmark starts its clock differently). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "address.h"
#include "config.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "org.mrkv.KV.varlink.h"
#include "parse-util.h"
#include "varlink-client.h"

#define EXIT_USAGE 2
#define KEY_FORMAT "key:%012u"
#define CALL_TIMEOUT_USEC (10 * USEC_PER_SEC)

typedef enum Op {
        OP_GET,
        OP_PUT,
} Op;

static char *arg_address = NULL;
static unsigned arg_connections = 1;
static double arg_duration = 5.0;
static double arg_warmup = 0.5;
static Op arg_op = OP_GET;
static unsigned arg_keyspace = 10000;
static size_t arg_value_size = 100;
static bool arg_csv = false;
static bool arg_redis = false;

typedef struct Conn {
        int fd;
        unsigned index;
        unsigned key;     /* the key of the call in flight */
        uint64_t started; /* ns */
        char *out;
        size_t out_size, out_sent, out_allocated;
        char *in;
        size_t in_size, in_allocated;
} Conn;

typedef struct Samples {
        uint32_t *v; /* latencies in ns, saturated */
        size_t n, allocated;
} Samples;

typedef struct Bench {
        Conn *conns;
        uint64_t *versions; /* per key; each key is owned by one connection in put mode */
        char *value;
        Samples samples;
        uint64_t ops, errors;
        bool measuring;
        uint32_t rng;
} Bench;

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

/* xorshift32: cheap and good enough to spread keys. */
static uint32_t rng_next(uint32_t *state) {
        uint32_t x = *state;

        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return *state = x;
}

static int samples_add(Samples *s, uint64_t ns) {
        if (s->n == s->allocated) {
                size_t n = MAX(s->allocated * 2, (size_t) 65536);
                uint32_t *v = reallocarray(s->v, n, sizeof(uint32_t));

                if (!v)
                        return -ENOMEM;
                s->v = v;
                s->allocated = n;
        }
        s->v[s->n++] = (uint32_t) MIN(ns, (uint64_t) UINT32_MAX);
        return 0;
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

        return x < y ? -1 : x > y;
}

static double percentile_us(const Samples *s, double p) {
        size_t i;

        if (s->n == 0)
                return 0;
        i = (size_t) (p / 100.0 * (double) (s->n - 1) + 0.5);
        return (double) s->v[MIN(i, s->n - 1)] / 1000.0;
}

static void help(void) {
        printf("Usage: %s [OPTIONS...]\n\n"
               "Closed-loop load on mrkv-kvserver: every connection sends a call, waits for\n"
               "its reply, and sends the next.\n\n"
               "  -h --help              Show this help\n"
               "  -a --address=ADDRESS   Server address (default $%s or the default socket)\n"
               "  -c --connections=N     Connections (default %u)\n"
               "  -d --duration=SECONDS  Measured time (default %.1f)\n"
               "  -w --warmup=SECONDS    Unmeasured time before it (default %.1f)\n"
               "  -t --op=get|put        Operation (default get)\n"
               "  -k --keys=N            Key space, created before the run (default %u)\n"
               "  -s --value-size=BYTES  Value size (default %zu)\n"
               "     --redis             Talk RESP to a Redis server (GET/SET) instead\n"
               "     --csv               One line: "
               "op,connections,ops,seconds,ops_per_sec,p50_us,p99_us,p999_us,max_us,errors\n",
                program_invocation_short_name, MRKV_KV_ADDRESS_ENV, arg_connections, arg_duration,
                arg_warmup, arg_keyspace, arg_value_size);
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_CSV = 0x100, ARG_REDIS };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "address", required_argument, NULL, 'a' },
                { "connections", required_argument, NULL, 'c' },
                { "duration", required_argument, NULL, 'd' },
                { "warmup", required_argument, NULL, 'w' },
                { "op", required_argument, NULL, 't' },
                { "keys", required_argument, NULL, 'k' },
                { "value-size", required_argument, NULL, 's' },
                { "csv", no_argument, NULL, ARG_CSV },
                { "redis", no_argument, NULL, ARG_REDIS },
                {},
        };
        unsigned v;
        int c;

        while ((c = getopt_long(argc, argv, "ha:c:d:w:t:k:s:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'a':
                        arg_address = optarg;
                        break;
                case 'c':
                        if (parse_unsigned(optarg, 1, 100000, &v) < 0) {
                                log_error("Invalid connection count: %s", optarg);
                                return -EINVAL;
                        }
                        arg_connections = (unsigned) v;
                        break;
                case 'd':
                case 'w': {
                        uint64_t usec;

                        /* At most a day; a warm-up may be 0, a duration not. */
                        if (parse_seconds(optarg, &usec) < 0 || usec > 86400 * USEC_PER_SEC ||
                            (c == 'd' && usec == 0)) {
                                log_error("Invalid number of seconds: %s", optarg);
                                return -EINVAL;
                        }
                        *(c == 'd' ? &arg_duration : &arg_warmup) = (double) usec / USEC_PER_SEC;
                        break;
                }
                case 't':
                        if (streq(optarg, "get"))
                                arg_op = OP_GET;
                        else if (streq(optarg, "put"))
                                arg_op = OP_PUT;
                        else {
                                log_error("Unknown operation (get or put): %s", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'k':
                        if (parse_unsigned(optarg, 1, UINT32_MAX, &v) < 0) {
                                log_error("Invalid key count: %s", optarg);
                                return -EINVAL;
                        }
                        arg_keyspace = (unsigned) v;
                        break;
                case 's':
                        if (parse_unsigned(optarg, 0, 64 * 1024 * 1024, &v) < 0) {
                                log_error("Invalid value size: %s", optarg);
                                return -EINVAL;
                        }
                        arg_value_size = (size_t) v;
                        break;
                case ARG_CSV:
                        arg_csv = true;
                        break;
                case ARG_REDIS:
                        arg_redis = true;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        abort();
                }

        if (optind < argc) {
                log_error("Unexpected argument: %s", argv[optind]);
                return -EINVAL;
        }
        if (arg_op == OP_PUT && arg_keyspace < arg_connections) {
                log_error("Put needs at least one key per connection (--keys >= --connections).");
                return -EINVAL;
        }
        return 1;
}

/* Creates every key that does not exist yet and learns the version of each, over one
 * ordinary blocking client, before the clock starts. */
static int prepare_keys(Bench *b, const char *address) {
        _cleanup_(json_object_putp) json_object *value = NULL;
        VarlinkClient *client = NULL;
        char key[32];
        int r;

        r = varlink_client_connect(address, &client);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to %s: %m", address);

        value = json_object_new_string_len(b->value, (int) arg_value_size);
        if (!value) {
                r = log_oom();
                goto finish;
        }

        for (unsigned k = 0; k < arg_keyspace; k++) {
                _cleanup_(json_object_putp) json_object *params = NULL, *reply = NULL;
                json_object *version; /* borrowed from reply */
                const char *error;

                snprintf(key, sizeof(key), KEY_FORMAT, k);
                if (json_build_object(&params, "key", json_object_new_string(key), NULL) < 0) {
                        r = log_oom();
                        goto finish;
                }
                r = varlink_client_call(
                        client, "org.mrkv.KV.Get", params, CALL_TIMEOUT_USEC, &reply, &error);
                if (r < 0) {
                        log_error_errno(r, "Get of %s failed: %m", key);
                        goto finish;
                }
                if (!error) {
                        if (!json_object_object_get_ex(reply, "version", &version) ||
                                !json_object_is_type(version, json_type_int)) {
                                r = log_error_errno(EBADMSG, "Get of %s: reply without a version.", key);
                                goto finish;
                        }
                        b->versions[k] = json_object_get_uint64(version);
                        continue;
                }
                if (!streq(error, KV_ERROR_NO_KEY)) {
                        r = log_error_errno(EBADMSG, "Get of %s failed: %s", key, error);
                        goto finish;
                }

                json_object_put(reply);
                reply = NULL;
                if (json_object_add(params, "value", json_object_get(value)) < 0 ||
                    json_object_add(params, "version", json_object_new_uint64(0)) < 0) {
                        r = log_oom();
                        goto finish;
                }
                r = varlink_client_call(
                        client, "org.mrkv.KV.Put", params, CALL_TIMEOUT_USEC, &reply, &error);
                if (r < 0) {
                        log_error_errno(r, "Put of %s failed: %m", key);
                        goto finish;
                }
                if (error) {
                        r = log_error_errno(EBADMSG, "Put of %s failed: %s", key, error);
                        goto finish;
                }
                b->versions[k] = 1;
        }
        r = 0;

finish:
        varlink_client_free(client);
        return r;
}

/* Returns the size of the complete RESP reply at the start of buf, 0 if incomplete,
 * -EBADMSG if it is not one we expect (simple string, error, integer, bulk string). */
static ssize_t resp_reply_size(const char *buf, size_t size) {
        const char *eol = size > 0 ? memmem(buf, size, "\r\n", 2) : NULL;
        long long len;
        char *end;

        if (!eol)
                return 0;
        switch (buf[0]) {
        case '+':
        case '-':
        case ':':
                return eol - buf + 2;
        case '$':
                len = strtoll(buf + 1, &end, 10);
                if (end != eol || len < -1)
                        return -EBADMSG;
                if (len == -1)
                        return eol - buf + 2;
                if (size < (size_t) (eol - buf) + 2 + (size_t) len + 2)
                        return 0;
                return eol - buf + 2 + len + 2;
        default:
                return -EBADMSG;
        }
}

/* SETs every key over one blocking connection, so that GETs find them. */
static int prepare_redis_keys(Bench *b, const Address *address) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *out = NULL;
        char in[4096];

        fd = address_connect(address, false);
        if (fd < 0)
                return log_error_errno(fd, "Failed to connect to %s: %m", address->string);
        out = malloc(arg_value_size + 256);
        if (!out)
                return log_oom();

        for (unsigned k = 0; k < arg_keyspace; k++) {
                int n = snprintf(out, arg_value_size + 256,
                        "*3\r\n$3\r\nSET\r\n$16\r\n" KEY_FORMAT "\r\n$%zu\r\n%s\r\n", k, arg_value_size,
                        b->value);
                size_t got = 0;

                if (send(fd, out, (size_t) n, MSG_NOSIGNAL) != n)
                        return log_error_errno(errno ?: EIO, "Failed to send SET: %m");
                for (;;) {
                        ssize_t r = recv(fd, in + got, sizeof(in) - got, 0);

                        if (r <= 0)
                                return log_error_errno(
                                        r < 0 ? errno : ECONNRESET, "Failed to read SET reply: %m");
                        got += (size_t) r;
                        r = resp_reply_size(in, got);
                        if (r < 0 || (r > 0 && in[0] != '+'))
                                return log_error_errno(EBADMSG, "SET failed: %.*s", (int) got, in);
                        if (r > 0)
                                break;
                }
        }
        return 0;
}

static int conn_format_call(Bench *b, Conn *c) {
        unsigned key;
        size_t need;
        int n;

        if (arg_op == OP_PUT) {
                /* Connection i owns the keys i, i + N, i + 2N, ...: it alone changes
                 * them, so it always knows their version and every Put succeeds. */
                unsigned owned = (arg_keyspace - c->index + arg_connections - 1) / arg_connections;
                key = c->index + (rng_next(&b->rng) % owned) * arg_connections;
        } else
                key = rng_next(&b->rng) % arg_keyspace;
        c->key = key;

        need = 256 + arg_value_size;
        if (c->out_allocated < need) {
                char *p = realloc(c->out, need);

                if (!p)
                        return -ENOMEM;
                c->out = p;
                c->out_allocated = need;
        }

        if (arg_redis && arg_op == OP_PUT)
                n = snprintf(c->out, c->out_allocated,
                        "*3\r\n$3\r\nSET\r\n$16\r\n" KEY_FORMAT "\r\n$%zu\r\n%s\r\n", key, arg_value_size,
                        b->value);
        else if (arg_redis)
                n = snprintf(c->out, c->out_allocated, "*2\r\n$3\r\nGET\r\n$16\r\n" KEY_FORMAT "\r\n", key);
        else if (arg_op == OP_PUT)
                n = snprintf(c->out, c->out_allocated,
                        "{\"method\":\"org.mrkv.KV.Put\",\"parameters\":{\"key\":\"" KEY_FORMAT
                        "\",\"value\":\"%s\",\"version\":%" PRIu64 "}}",
                        key, b->value, b->versions[key]);
        else
                n = snprintf(c->out, c->out_allocated,
                        "{\"method\":\"org.mrkv.KV.Get\",\"parameters\":{\"key\":\"" KEY_FORMAT "\"}}", key);
        if (n < 0 || (size_t) n >= c->out_allocated)
                return -ENOBUFS;

        /* A Varlink message ends with a NUL. */
        c->out_size = (size_t) n + !arg_redis;
        c->out_sent = 0;
        return 0;
}

/* Writes what is left of the call; 1 when all of it is out. */
static int conn_write(Conn *c) {
        while (c->out_sent < c->out_size) {
                ssize_t n = send(c->fd, c->out + c->out_sent, c->out_size - c->out_sent, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        return -errno;
                }
                c->out_sent += (size_t) n;
        }
        return 1;
}

static int conn_start_call(Bench *b, Conn *c, int epfd) {
        int r;

        r = conn_format_call(b, c);
        if (r < 0)
                return r;
        c->started = now_ns();
        r = conn_write(c);
        if (r < 0)
                return r;
        if (r == 0) {
                /* Rare (a large value): finish writing when the socket has room. */
                struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };

                if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                        return -errno;
        }
        return 0;
}

static int conn_handle_reply(Bench *b, Conn *c, const char *reply, size_t size) {
        uint64_t done = now_ns();
        static const char ok[] = "{\"parameters\":";

        /* The server writes "parameters" first for a success and "error" first for an
         * error; checking the prefix is enough to tell them apart. Redis answers a GET
         * with a bulk string ("$-1" for a missing key) and a SET with "+OK". */
        bool success = arg_redis ? (arg_op == OP_PUT ? reply[0] == '+' : reply[0] == '$' && reply[1] != '-')
                                 : size >= sizeof(ok) - 1 && memcmp(reply, ok, sizeof(ok) - 1) == 0;
        if (success) {
                if (arg_op == OP_PUT)
                        b->versions[c->key]++;
        } else {
                b->errors++;
                if (b->errors <= 5)
                        log_warning("Error reply: %.*s", (int) MIN(size, (size_t) 200), reply);
                if (arg_op == OP_PUT)
                        return -EBADMSG; /* our versions are wrong: the numbers would be too */
        }

        if (b->measuring) {
                b->ops++;
                if (samples_add(&b->samples, done - c->started) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int conn_read(Bench *b, Conn *c, int epfd) {
        for (;;) {
                ssize_t n;
                char *nul;

                if (c->in_allocated - c->in_size < 4096) {
                        size_t want = MAX(c->in_allocated * 2, (size_t) 65536);
                        char *p = realloc(c->in, want);

                        if (!p)
                                return -ENOMEM;
                        c->in = p;
                        c->in_allocated = want;
                }

                n = recv(c->fd, c->in + c->in_size, c->in_allocated - c->in_size, 0);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        return -errno;
                }
                if (n == 0)
                        return -ECONNRESET;
                c->in_size += (size_t) n;

                size_t reply_size;
                if (arg_redis) {
                        ssize_t k = resp_reply_size(c->in, c->in_size);
                        if (k < 0)
                                return (int) k;
                        if (k == 0)
                                continue;
                        reply_size = (size_t) k;
                        if (reply_size != c->in_size)
                                return -EBADMSG; /* one call in flight: nothing may follow its reply */
                } else {
                        nul = memchr(c->in, '\0', c->in_size);
                        if (!nul)
                                continue;
                        reply_size = (size_t) (nul - c->in);
                        if (reply_size + 1 != c->in_size)
                                return -EBADMSG;
                }

                int r = conn_handle_reply(b, c, c->in, reply_size);
                c->in_size = 0;
                if (r < 0)
                        return r;
                return conn_start_call(b, c, epfd);
        }
}

static int run_load(Bench *b, const Address *address, double *ret_seconds) {
        struct epoll_event events[256];
        uint64_t start, measure_start = 0, end;
        _cleanup_close_ int epfd = -EBADF;
        int r;

        epfd = epoll_create1(EPOLL_CLOEXEC);
        if (epfd < 0)
                return log_error_errno(errno, "Failed to create epoll instance: %m");

        for (unsigned i = 0; i < arg_connections; i++) {
                Conn *c = &b->conns[i];
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

                c->index = i;
                c->fd = address_connect(address, true);
                if (c->fd < 0)
                        return log_error_errno(c->fd, "Failed to connect to %s: %m", address->string);
                if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
                        return log_error_errno(errno, "Failed to watch a connection: %m");
        }

        start = now_ns();
        b->measuring = arg_warmup <= 0;
        if (b->measuring)
                measure_start = start;
        end = start + (uint64_t) ((arg_warmup + arg_duration) * 1e9);

        for (unsigned i = 0; i < arg_connections; i++) {
                r = conn_start_call(b, &b->conns[i], epfd);
                if (r < 0)
                        return log_error_errno(r, "Failed to send a call: %m");
        }

        for (;;) {
                uint64_t now = now_ns();
                int n;

                if (now >= end)
                        break;
                if (!b->measuring && now >= start + (uint64_t) (arg_warmup * 1e9)) {
                        b->measuring = true;
                        measure_start = now;
                }

                n = epoll_wait(epfd, events, ELEMENTSOF(events), 100);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(errno, "epoll_wait() failed: %m");
                }
                for (int i = 0; i < n; i++) {
                        Conn *c = events[i].data.ptr;

                        if (events[i].events & EPOLLOUT) {
                                r = conn_write(c);
                                if (r > 0) {
                                        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

                                        if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                                                r = -errno;
                                }
                                if (r < 0)
                                        return log_error_errno(r, "Failed to write to the server: %m");
                        }
                        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                                r = conn_read(b, c, epfd);
                                if (r < 0)
                                        return log_error_errno(r, "Connection %u failed: %m", c->index);
                        }
                }
        }

        *ret_seconds = (double) (now_ns() - measure_start) / 1e9;
        return 0;
}

static int run(int argc, char *argv[]) {
        _cleanup_free_ char *default_address = NULL;
        Address address = {};
        Bench b = { .rng = 0x9e3779b9U };
        double seconds = 0;
        int r;

        log_set_ident(program_invocation_short_name);

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;

        if (!arg_address) {
                r = address_default(MRKV_KV_ADDRESS_ENV, MRKV_KV_SOCKET, &default_address);
                if (r < 0) {
                        log_error_errno(r, "Failed to determine the default address: %m");
                        return EXIT_FAILURE;
                }
                arg_address = default_address;
        }
        r = address_parse(arg_address, &address);
        if (r < 0) {
                log_error_errno(r, "Invalid address '%s': %m", arg_address);
                return EXIT_USAGE;
        }

        /* Many connections need many descriptors. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }

        b.conns = calloc(arg_connections, sizeof(Conn));
        b.versions = calloc(arg_keyspace, sizeof(uint64_t));
        b.value = malloc(arg_value_size + 1);
        if (!b.conns || !b.versions || !b.value) {
                r = log_oom();
                goto finish;
        }
        for (size_t i = 0; i < arg_value_size; i++)
                b.value[i] = (char) ('a' + i % 26);
        b.value[arg_value_size] = '\0';
        for (unsigned i = 0; i < arg_connections; i++)
                b.conns[i].fd = -EBADF;

        r = arg_redis ? prepare_redis_keys(&b, &address) : prepare_keys(&b, arg_address);
        if (r < 0)
                goto finish;

        r = run_load(&b, &address, &seconds);
        if (r < 0)
                goto finish;

        qsort(b.samples.v, b.samples.n, sizeof(uint32_t), cmp_u32);
        if (arg_csv)
                printf("%s,%u,%" PRIu64 ",%.3f,%.0f,%.1f,%.1f,%.1f,%.1f,%" PRIu64 "\n",
                        arg_op == OP_GET ? "get" : "put", arg_connections, b.ops, seconds,
                        (double) b.ops / seconds, percentile_us(&b.samples, 50),
                        percentile_us(&b.samples, 99), percentile_us(&b.samples, 99.9),
                        percentile_us(&b.samples, 100), b.errors);
        else
                printf("%s, %u connections, %zu-byte values, %u keys: %" PRIu64 " calls in %.2f s\n"
                       "  %.0f ops/s   latency p50 %.1f us   p99 %.1f us   p99.9 %.1f us   max %.1f us"
                       "   errors %" PRIu64 "\n",
                        arg_op == OP_GET ? "Get" : "Put", arg_connections, arg_value_size, arg_keyspace,
                        b.ops, seconds, (double) b.ops / seconds, percentile_us(&b.samples, 50),
                        percentile_us(&b.samples, 99), percentile_us(&b.samples, 99.9),
                        percentile_us(&b.samples, 100), b.errors);
        r = b.errors > 0 ? -EBADMSG : 0;

finish:
        for (unsigned i = 0; b.conns && i < arg_connections; i++) {
                closep(&b.conns[i].fd);
                free(b.conns[i].in);
                free(b.conns[i].out);
        }
        free(b.conns);
        free(b.versions);
        free(b.value);
        free(b.samples.v);
        address_done(&address);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main(int argc, char *argv[]) {
        return run(argc, argv);
}
