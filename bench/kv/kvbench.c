/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkv-kvbench: a closed-loop load generator for mrkv-kvserver. One process, one epoll
 * loop, N connections, each with P calls in flight (P = 1 unless --pipeline): raw
 * framing, so that the client costs as little as possible and the server is what is
 * measured. Prints throughput and latency percentiles.
 *
 * The same load can be sent to two other servers, so that all three are measured by one
 * client: --redis speaks RESP to Redis (GET/SET), --etcd speaks HTTP/1.1 to etcd's JSON
 * gateway (a range for Get, a txn comparing the key's mod_revision for Put: the same
 * compare-and-set as mrkv's versioned Put). --startup-time starts a server and times it
 * until it answers a Get of a key it must have kept. */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "config.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "org.mrkv.KV.varlink.h"
#include "parse-util.h"

#define EXIT_USAGE 2
#define KEY_FORMAT "key:%012u"
#define KEY_SIZE 16 /* of KEY_FORMAT's keys, below 10^12 */
/* The keys are created over PREPARE_CONNECTIONS connections with PREPARE_WINDOW calls in
 * flight on each: a server that syncs every write before answering it, and answers one
 * call per connection at a time, can then share one sync among that many calls. */
#define PREPARE_CONNECTIONS 64U
#define PREPARE_WINDOW 16U
/* etcd refuses a txn of more operations than --max-txn-ops, 128 by default. */
#define ETCD_TXN_PUTS 128U
#define STARTUP_TIMEOUT_NSEC (120ULL * 1000000000ULL)
#define STOP_TIMEOUT_NSEC (30ULL * 1000000000ULL)
#define IO_TIMEOUT_MSEC 30000

typedef enum Op {
        OP_GET,
        OP_PUT,
} Op;

typedef enum Proto {
        PROTO_VARLINK,
        PROTO_REDIS,
        PROTO_ETCD,
} Proto;

static char *arg_address = NULL;
static unsigned arg_connections = 1;
static unsigned arg_pipeline = 1;
static double arg_duration = 5.0;
static double arg_warmup = 0.5;
static Op arg_op = OP_GET;
static unsigned arg_keyspace = 10000;
static size_t arg_value_size = 100;
static bool arg_csv = false;
static Proto arg_proto = PROTO_VARLINK;
static bool arg_startup_time = false;
static bool arg_prepare = true;
static char **arg_command = NULL;
static pid_t arg_server_pid = 0;

typedef struct Buffer {
        char *data;
        size_t start, size, allocated; /* data[start..size) is unread or unsent */
} Buffer;

typedef struct Call {
        unsigned key;
        unsigned slot;    /* which of the connection's P calls this is */
        uint64_t started; /* ns */
} Call;

typedef struct Conn {
        int fd;
        unsigned index;
        Call *calls; /* ring of the calls in flight, oldest first */
        unsigned head, n_calls;
        Buffer out, in;
        bool watching_out;
} Conn;

typedef struct Samples {
        uint32_t *v; /* latencies in ns, saturated */
        size_t n, allocated;
} Samples;

typedef struct Bench {
        Conn *conns;
        /* Per key: the version (mrkv) or mod_revision (etcd) a Put compares with. In put
         * mode each key is owned by one call slot of one connection. */
        uint64_t *versions;
        char *value;        /* arg_value_size letters */
        char *value_base64; /* the same for etcd */
        Buffer body;        /* etcd: a request body, before its header */
        Samples samples;
        uint64_t ops, errors;
        long long server_ticks; /* the server's CPU time when the clock started, or -1 */
        double server_cpu_us;   /* per operation, while measuring; < 0 if unknown */
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

/* User + system CPU time of a process (all its threads) in clock ticks, or -1. */
static long long process_cpu_ticks(pid_t pid) {
        _cleanup_fclose_ FILE *f = NULL;
        char path[64], line[1024], *p;
        unsigned long long utime, stime;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f || !fgets(line, sizeof(line), f))
                return -1;
        /* Fields 14 and 15; the command name (field 2, in parentheses) may hold spaces. */
        p = strrchr(line, ')');
        if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
                return -1;
        return (long long) (utime + stime);
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

/* Makes room for at least extra more bytes at the end, dropping what was consumed. */
static int buffer_reserve(Buffer *b, size_t extra) {
        if (b->start > 0 && (b->start == b->size || b->allocated - b->size < extra)) {
                memmove(b->data, b->data + b->start, b->size - b->start);
                b->size -= b->start;
                b->start = 0;
        }
        if (b->allocated - b->size < extra) {
                size_t want = MAX(b->allocated * 2, b->size + extra);
                char *p = realloc(b->data, want);

                if (!p)
                        return -ENOMEM;
                b->data = p;
                b->allocated = want;
        }
        return 0;
}

static int buffer_printf(Buffer *b, const char *format, ...) _printf_(2, 3);
static int buffer_printf(Buffer *b, const char *format, ...) {
        for (;;) {
                size_t room = b->allocated - b->size;
                va_list ap;
                int n;

                va_start(ap, format);
                n = vsnprintf(b->data ? b->data + b->size : NULL, room, format, ap);
                va_end(ap);
                if (n < 0)
                        return -EINVAL;
                if ((size_t) n < room) {
                        b->size += (size_t) n;
                        return 0;
                }
                if (buffer_reserve(b, (size_t) n + 1) < 0)
                        return -ENOMEM;
        }
}

static int buffer_append(Buffer *b, const void *p, size_t n) {
        if (buffer_reserve(b, n) < 0)
                return -ENOMEM;
        memcpy(b->data + b->size, p, n);
        b->size += n;
        return 0;
}

static void buffer_done(Buffer *b) {
        free(b->data);
        *b = (Buffer) {};
}

static void base64_encode(const char *in, size_t n, char *out) {
        static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *s = (const unsigned char *) in;
        size_t i;

        for (i = 0; i + 2 < n; i += 3) {
                *out++ = table[s[i] >> 2];
                *out++ = table[(s[i] & 3) << 4 | s[i + 1] >> 4];
                *out++ = table[(s[i + 1] & 15) << 2 | s[i + 2] >> 6];
                *out++ = table[s[i + 2] & 63];
        }
        if (i < n) {
                *out++ = table[s[i] >> 2];
                if (i + 1 < n) {
                        *out++ = table[(s[i] & 3) << 4 | s[i + 1] >> 4];
                        *out++ = table[(s[i + 1] & 15) << 2];
                } else {
                        *out++ = table[(s[i] & 3) << 4];
                        *out++ = '=';
                }
                *out++ = '=';
        }
        *out = '\0';
}

static void key_base64(unsigned key, char out[static 32]) {
        char k[32];

        snprintf(k, sizeof(k), KEY_FORMAT, key);
        base64_encode(k, strlen(k), out);
}

static void help(void) {
        printf("Usage: %s [OPTIONS...]\n"
               "       %s [OPTIONS...] --startup-time -- SERVER-COMMAND...\n\n"
               "Closed-loop load on mrkv-kvserver: every connection keeps P calls in flight,\n"
               "sending the next one as soon as a reply arrives.\n\n"
               "  -h --help              Show this help\n"
               "  -a --address=ADDRESS   Server address (default $%s or the default socket)\n"
               "  -c --connections=N     Connections (default %u)\n"
               "  -P --pipeline=P        Calls in flight per connection (default %u)\n"
               "  -d --duration=SECONDS  Measured time (default %.1f)\n"
               "  -w --warmup=SECONDS    Unmeasured time before it (default %.1f)\n"
               "  -t --op=get|put        Operation (default get)\n"
               "  -k --keys=N            Key space, created before the run (default %u)\n"
               "  -s --value-size=BYTES  Value size (default %zu)\n"
               "     --no-prepare        Assume the keys exist (Get only)\n"
               "     --redis             Talk RESP to a Redis server (GET/SET) instead\n"
               "     --etcd              Talk HTTP/1.1 to etcd's JSON gateway instead (range;\n"
               "                         txn comparing mod_revision, then put), tcp:HOST:PORT\n"
               "     --server-pid=PID    Report the CPU time of that process per operation\n"
               "     --startup-time      Start SERVER-COMMAND, print the time until it answers\n"
               "                         a Get of the first and the last key, stop it\n"
               "     --csv               One line: "
               "op,connections,ops,seconds,ops_per_sec,p50_us,p99_us,p999_us,max_us,errors,\n"
               "                         server_cpu_us_per_op (empty without --server-pid)\n"
               "                         (--startup-time: milliseconds)\n",
                program_invocation_short_name, program_invocation_short_name, MRKV_KV_ADDRESS_ENV,
                arg_connections, arg_pipeline, arg_duration, arg_warmup, arg_keyspace, arg_value_size);
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_CSV = 0x100, ARG_REDIS, ARG_ETCD, ARG_STARTUP_TIME, ARG_NO_PREPARE, ARG_SERVER_PID };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "address", required_argument, NULL, 'a' },
                { "connections", required_argument, NULL, 'c' },
                { "pipeline", required_argument, NULL, 'P' },
                { "duration", required_argument, NULL, 'd' },
                { "warmup", required_argument, NULL, 'w' },
                { "op", required_argument, NULL, 't' },
                { "keys", required_argument, NULL, 'k' },
                { "value-size", required_argument, NULL, 's' },
                { "csv", no_argument, NULL, ARG_CSV },
                { "redis", no_argument, NULL, ARG_REDIS },
                { "etcd", no_argument, NULL, ARG_ETCD },
                { "startup-time", no_argument, NULL, ARG_STARTUP_TIME },
                { "no-prepare", no_argument, NULL, ARG_NO_PREPARE },
                { "server-pid", required_argument, NULL, ARG_SERVER_PID },
                {},
        };
        unsigned v;
        int c;

        while ((c = getopt_long(argc, argv, "ha:c:P:d:w:t:k:s:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'a':
                        arg_address = optarg;
                        break;
                case 'c':
                case 'P':
                        if (parse_unsigned(optarg, 1, 100000, &v) < 0) {
                                log_error("Invalid %s: %s", c == 'c' ? "connection count" : "pipeline depth",
                                        optarg);
                                return -EINVAL;
                        }
                        *(c == 'c' ? &arg_connections : &arg_pipeline) = v;
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
                        arg_keyspace = v;
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
                        arg_proto = PROTO_REDIS;
                        break;
                case ARG_ETCD:
                        arg_proto = PROTO_ETCD;
                        break;
                case ARG_STARTUP_TIME:
                        arg_startup_time = true;
                        break;
                case ARG_NO_PREPARE:
                        arg_prepare = false;
                        break;
                case ARG_SERVER_PID:
                        if (parse_unsigned(optarg, 1, INT32_MAX, &v) < 0) {
                                log_error("Invalid process ID: %s", optarg);
                                return -EINVAL;
                        }
                        arg_server_pid = (pid_t) v;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        abort();
                }

        if (arg_startup_time) {
                if (optind >= argc) {
                        log_error("--startup-time needs the command that starts the server.");
                        return -EINVAL;
                }
                arg_command = argv + optind;
                return 1;
        }
        if (optind < argc) {
                log_error("Unexpected argument: %s", argv[optind]);
                return -EINVAL;
        }
        if (arg_op == OP_PUT && arg_keyspace / arg_pipeline < arg_connections) {
                log_error("Put needs at least one key per call in flight (--keys >= --connections x --pipeline).");
                return -EINVAL;
        }
        if (arg_op == OP_PUT && !arg_prepare) {
                log_error("Put needs the versions of the keys: --no-prepare is for Get only.");
                return -EINVAL;
        }
        return 1;
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

/* The size of a chunked body at the start of buf ("SIZE\r\nDATA\r\n"..., "0\r\n\r\n"),
 * 0 if incomplete. Trailers are not expected. */
static ssize_t http_chunked_size(const char *buf, size_t size) {
        size_t at = 0;

        for (;;) {
                const char *eol = memmem(buf + at, size - at, "\r\n", 2);
                unsigned long long n;
                char *e;

                if (!eol)
                        return size - at > 64 ? -EBADMSG : 0;
                n = strtoull(buf + at, &e, 16);
                if (e == buf + at || (e != eol && *e != ';') || n > 64 * 1024 * 1024)
                        return -EBADMSG;
                at = (size_t) (eol - buf) + 2 + (size_t) n + 2;
                if (size < at)
                        return 0;
                if (memcmp(buf + at - 2, "\r\n", 2) != 0)
                        return -EBADMSG;
                if (n == 0)
                        return (ssize_t) at;
        }
}

/* The size of the complete HTTP/1.1 response at the start of buf, headers and body; 0 if
 * incomplete. etcd's gateway sends a Content-Length for small bodies, chunks for large. */
static ssize_t http_reply_size(const char *buf, size_t size) {
        const char *end = memmem(buf, size, "\r\n\r\n", 4), *line, *eol;
        static const char cl[] = "Content-Length:", te[] = "Transfer-Encoding: chunked";
        size_t header_size;

        if (!end)
                return size > 65536 ? -EBADMSG : 0;
        header_size = (size_t) (end - buf) + 4;
        for (line = buf; line < end; line = eol + 2) {
                eol = memmem(line, (size_t) (end + 2 - line), "\r\n", 2);
                if ((size_t) (eol - line) > sizeof(cl) - 1 && strncasecmp(line, cl, sizeof(cl) - 1) == 0) {
                        char *e;
                        unsigned long long n = strtoull(line + sizeof(cl) - 1, &e, 10);

                        if (e != eol || n > 64 * 1024 * 1024)
                                return -EBADMSG;
                        return size >= header_size + n ? (ssize_t) (header_size + n) : 0;
                }
                if ((size_t) (eol - line) == sizeof(te) - 1 && strncasecmp(line, te, sizeof(te) - 1) == 0) {
                        ssize_t k = http_chunked_size(buf + header_size, size - header_size);

                        return k <= 0 ? k : (ssize_t) header_size + k;
                }
        }
        return -EBADMSG;
}

/* The size of the complete reply at the start of buf, with its terminator; 0 if incomplete. */
static ssize_t reply_size(const char *buf, size_t size) {
        const char *nul;

        if (size == 0)
                return 0; /* buf may be NULL: nothing was read yet */
        switch (arg_proto) {
        case PROTO_REDIS:
                return resp_reply_size(buf, size);
        case PROTO_ETCD:
                return http_reply_size(buf, size);
        default:
                /* A Varlink message ends with a NUL. */
                nul = memchr(buf, '\0', size);
                return nul ? nul - buf + 1 : 0;
        }
}

/* The body of an HTTP response of size bytes, if its status is 200. A chunked body is
 * returned as it is, with its chunk headers: the fields looked for are in the first chunk. */
static const char *http_ok_body(const char *reply, size_t size, size_t *ret_size) {
        const char *end = memmem(reply, size, "\r\n\r\n", 4);

        if (!end || size < 12 || memcmp(reply + 8, " 200", 4) != 0)
                return NULL;
        *ret_size = size - (size_t) (end + 4 - reply);
        return end + 4;
}

/* etcd's gateway writes int64 fields as strings: "revision":"42". The header's, the
 * first in a txn's reply, is the revision the txn created, i.e. the put key's mod_revision. */
static int etcd_revision(const char *body, size_t size, uint64_t *ret) {
        static const char field[] = "\"revision\":\"";
        const char *p = memmem(body, size, field, sizeof(field) - 1);
        char *e;

        if (!p)
                return -EBADMSG;
        p += sizeof(field) - 1;
        *ret = strtoull(p, &e, 10);
        return e > p && e < body + size && *e == '"' ? 0 : -EBADMSG;
}

static int etcd_append_request(Bench *b, Buffer *out, const char *path) {
        int r;

        r = buffer_printf(out,
                "POST %s HTTP/1.1\r\nHost: kvbench\r\nContent-Type: application/json\r\n"
                "Content-Length: %zu\r\n\r\n",
                path, b->body.size);
        if (r < 0)
                return r;
        return buffer_append(out, b->body.data, b->body.size);
}

/* Appends the request of one operation on key to out. */
static int format_call(Bench *b, Buffer *out, Op op, unsigned key) {
        char k64[32];
        int r;

        switch (arg_proto) {
        case PROTO_REDIS:
                if (op == OP_PUT)
                        return buffer_printf(out, "*3\r\n$3\r\nSET\r\n$%d\r\n" KEY_FORMAT "\r\n$%zu\r\n%s\r\n",
                                KEY_SIZE, key, arg_value_size, b->value);
                return buffer_printf(out, "*2\r\n$3\r\nGET\r\n$%d\r\n" KEY_FORMAT "\r\n", KEY_SIZE, key);

        case PROTO_ETCD:
                key_base64(key, k64);
                b->body.size = b->body.start = 0;
                if (op == OP_PUT)
                        r = buffer_printf(&b->body,
                                "{\"compare\":[{\"key\":\"%s\",\"target\":\"MOD\",\"result\":\"EQUAL\","
                                "\"mod_revision\":\"%" PRIu64 "\"}],"
                                "\"success\":[{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\"}}]}",
                                k64, b->versions[key], k64, b->value_base64);
                else
                        r = buffer_printf(&b->body, "{\"key\":\"%s\"}", k64);
                if (r < 0)
                        return r;
                return etcd_append_request(b, out, op == OP_PUT ? "/v3/kv/txn" : "/v3/kv/range");

        default:
                if (op == OP_PUT)
                        r = buffer_printf(out,
                                "{\"method\":\"org.mrkv.KV.Put\",\"parameters\":{\"key\":\"" KEY_FORMAT
                                "\",\"value\":\"%s\",\"version\":%" PRIu64 "}}",
                                key, b->value, b->versions[key]);
                else
                        r = buffer_printf(out,
                                "{\"method\":\"org.mrkv.KV.Get\",\"parameters\":{\"key\":\"" KEY_FORMAT "\"}}",
                                key);
                if (r < 0)
                        return r;
                /* A Varlink message ends with a NUL. */
                return buffer_append(out, "", 1);
        }
}

/* Whether reply (a whole frame) reports success; for a Put, learns the key's new version. */
static bool reply_ok(Bench *b, Op op, unsigned key, const char *reply, size_t size) {
        static const char ok[] = "{\"parameters\":";
        const char *body;
        size_t body_size;

        switch (arg_proto) {
        case PROTO_REDIS:
                /* A GET is answered with a bulk string ("$-1" for a missing key), a SET with "+OK". */
                return op == OP_PUT ? reply[0] == '+' : reply[0] == '$' && reply[1] != '-';

        case PROTO_ETCD:
                body = http_ok_body(reply, size, &body_size);
                if (!body)
                        return false;
                if (op == OP_GET)
                        return memmem(body, body_size, "\"kvs\":[", 7) != NULL;
                /* A failed compare leaves "succeeded" out (false is the default). */
                return memmem(body, body_size, "\"succeeded\":true", 16) &&
                        etcd_revision(body, body_size, &b->versions[key]) >= 0;

        default:
                /* The server writes "parameters" first for a success and "error" first for
                 * an error; checking the prefix is enough to tell them apart. */
                if (size < sizeof(ok) - 1 || memcmp(reply, ok, sizeof(ok) - 1) != 0)
                        return false;
                if (op == OP_PUT)
                        b->versions[key]++;
                return true;
        }
}

/* Sends all of buf over a blocking socket. */
static int send_all(int fd, Buffer *buf) {
        while (buf->start < buf->size) {
                ssize_t n = send(fd, buf->data + buf->start, buf->size - buf->start, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                buf->start += (size_t) n;
        }
        buf->start = buf->size = 0;
        return 0;
}

/* Reads the next whole reply from a blocking socket into in; returns its size. */
static ssize_t recv_reply(int fd, Buffer *in) {
        for (;;) {
                ssize_t k = reply_size(in->data + in->start, in->size - in->start), n;

                if (k != 0)
                        return k;
                if (buffer_reserve(in, 65536) < 0)
                        return -ENOMEM;
                n = recv(fd, in->data + in->size, in->allocated - in->size, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -ECONNRESET;
                in->size += (size_t) n;
        }
}

typedef int (*FormatFunc)(Bench *b, unsigned i, Buffer *out);
typedef int (*ReplyFunc)(Bench *b, unsigned i, const char *reply, size_t size);

/* Sends n requests over n_fds blocking sockets, window per socket at a time, and hands
 * each reply to handle, in order. Request i of a round goes to socket i / window. */
static int exchange(Bench *b, const int *fds, unsigned n_fds, unsigned n, unsigned window, FormatFunc format,
                    ReplyFunc handle) {
        Buffer out = {}, in = {};
        int r = 0;

        for (unsigned done = 0; done < n && r >= 0;) {
                unsigned round = MIN(window * n_fds, n - done);

                for (unsigned k = 0; k * window < round && r >= 0; k++) {
                        for (unsigned i = k * window; i < MIN((k + 1) * window, round) && r >= 0; i++)
                                r = format(b, done + i, &out);
                        if (r >= 0)
                                r = send_all(fds[k], &out);
                }
                for (unsigned i = 0; i < round && r >= 0; i++) {
                        ssize_t size = recv_reply(fds[i / window], &in);

                        if (size < 0) {
                                r = (int) size;
                                break;
                        }
                        r = handle(b, done + i, in.data + in.start, (size_t) size);
                        in.start += (size_t) size;
                        /* The next reply comes from another socket: nothing may be left. */
                        if (r >= 0 && (i + 1) % window == 0 && in.start != in.size)
                                r = -EBADMSG;
                        if ((i + 1) % window == 0)
                                in.start = in.size = 0;
                }
                done += round;
        }
        buffer_done(&out);
        buffer_done(&in);
        return r;
}

/* mrkv: a Get of every key, then a Put with version 0 of those that do not exist. */
static unsigned *prepare_missing = NULL;
static unsigned prepare_n_missing = 0;

static int format_get(Bench *b, unsigned i, Buffer *out) {
        return format_call(b, out, OP_GET, i);
}

static int handle_mrkv_get(Bench *b, unsigned i, const char *reply, size_t size) {
        _cleanup_(json_object_putp) json_object *m = json_tokener_parse(reply);
        json_object *p, *v;
        const char *error;

        if (!m || reply[size - 1] != '\0')
                return log_error_errno(EBADMSG, "Get of key %u: not a JSON reply.", i);
        if (json_object_object_get_ex(m, "error", &v)) {
                error = json_object_get_string(v);
                if (!error || !streq(error, KV_ERROR_NO_KEY))
                        return log_error_errno(EBADMSG, "Get of key %u failed: %s", i, error ?: "(null)");
                prepare_missing[prepare_n_missing++] = i;
                return 0;
        }
        if (!json_object_object_get_ex(m, "parameters", &p) || !json_object_object_get_ex(p, "version", &v) ||
            !json_object_is_type(v, json_type_int))
                return log_error_errno(EBADMSG, "Get of key %u: reply without a version.", i);
        b->versions[i] = json_object_get_uint64(v);
        return 0;
}

static int format_create(Bench *b, unsigned i, Buffer *out) {
        b->versions[prepare_missing[i]] = 0;
        return format_call(b, out, OP_PUT, prepare_missing[i]);
}

static int handle_create(Bench *b, unsigned i, const char *reply, size_t size) {
        unsigned key = prepare_missing[i];

        if (!reply_ok(b, OP_PUT, key, reply, size))
                return log_error_errno(EBADMSG, "Creating key %u failed: %.*s", key, (int) MIN(size, 200U), reply);
        return 0;
}

static int format_redis_set(Bench *b, unsigned i, Buffer *out) {
        return format_call(b, out, OP_PUT, i);
}

/* etcd: ETCD_TXN_PUTS keys per txn, which all get the txn's revision. */
static int format_etcd_batch(Bench *b, unsigned i, Buffer *out) {
        unsigned first = i * ETCD_TXN_PUTS, last = MIN(first + ETCD_TXN_PUTS, arg_keyspace);
        char k64[32];
        int r;

        b->body.size = b->body.start = 0;
        r = buffer_printf(&b->body, "{\"success\":[");
        for (unsigned k = first; k < last && r >= 0; k++) {
                key_base64(k, k64);
                r = buffer_printf(&b->body, "%s{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\"}}",
                        k == first ? "" : ",", k64, b->value_base64);
        }
        if (r >= 0)
                r = buffer_printf(&b->body, "]}");
        if (r < 0)
                return r;
        return etcd_append_request(b, out, "/v3/kv/txn");
}

static int handle_etcd_batch(Bench *b, unsigned i, const char *reply, size_t size) {
        unsigned first = i * ETCD_TXN_PUTS, last = MIN(first + ETCD_TXN_PUTS, arg_keyspace);
        const char *body;
        size_t body_size;
        uint64_t revision;

        body = http_ok_body(reply, size, &body_size);
        if (!body || etcd_revision(body, body_size, &revision) < 0)
                return log_error_errno(EBADMSG, "Creating keys in etcd failed: %.*s", (int) MIN(size, 400U), reply);
        for (unsigned k = first; k < last; k++)
                b->versions[k] = revision;
        return 0;
}

static int handle_set(Bench *b, unsigned i, const char *reply, size_t size) {
        if (!reply_ok(b, OP_PUT, i, reply, size))
                return log_error_errno(EBADMSG, "SET of key %u failed: %.*s", i, (int) MIN(size, 200U), reply);
        return 0;
}

/* Creates every key (and, for a versioned Put, learns its version) before the clock
 * starts. */
static int prepare_keys(Bench *b, const Address *address) {
        int fds[PREPARE_CONNECTIONS];
        unsigned n_fds = 0;
        int r = 0;

        for (; n_fds < PREPARE_CONNECTIONS; n_fds++) {
                fds[n_fds] = address_connect(address, false);
                if (fds[n_fds] < 0) {
                        r = log_error_errno(fds[n_fds], "Failed to connect to %s: %m", address->string);
                        goto finish;
                }
        }

        switch (arg_proto) {
        case PROTO_REDIS:
                r = exchange(b, fds, n_fds, arg_keyspace, PREPARE_WINDOW, format_redis_set, handle_set);
                break;
        case PROTO_ETCD:
                r = exchange(b, fds, n_fds, (arg_keyspace + ETCD_TXN_PUTS - 1) / ETCD_TXN_PUTS, 1,
                        format_etcd_batch, handle_etcd_batch);
                break;
        default:
                prepare_missing = calloc(arg_keyspace, sizeof(unsigned));
                if (!prepare_missing) {
                        r = log_oom();
                        goto finish;
                }
                prepare_n_missing = 0;
                r = exchange(b, fds, n_fds, arg_keyspace, PREPARE_WINDOW, format_get, handle_mrkv_get);
                if (r >= 0)
                        r = exchange(b, fds, n_fds, prepare_n_missing, PREPARE_WINDOW, format_create,
                                handle_create);
                prepare_missing = mfree(prepare_missing);
        }
        if (r < 0)
                log_error_errno(r, "Failed to create the keys on %s: %m", address->string);

finish:
        for (unsigned i = 0; i < n_fds; i++)
                close(fds[i]);
        return r < 0 ? r : 0;
}

static unsigned conn_pick_key(Bench *b, Conn *c, unsigned slot) {
        if (arg_op == OP_PUT) {
                /* Call slot s of connection i owns the keys v, v + V, v + 2V, ... with
                 * v = i * P + s and V = N * P: it alone changes them, so it always knows
                 * their version and every Put succeeds, also with P calls in flight. */
                unsigned v = c->index * arg_pipeline + slot, stride = arg_connections * arg_pipeline;
                unsigned owned = (arg_keyspace - v + stride - 1) / stride;

                return v + (rng_next(&b->rng) % owned) * stride;
        }
        return rng_next(&b->rng) % arg_keyspace;
}

/* Queues a call for slot at the end of the connection's output. */
static int conn_queue_call(Bench *b, Conn *c, unsigned slot) {
        Call *call;
        int r;

        assert(c->n_calls < arg_pipeline);
        call = &c->calls[(c->head + c->n_calls) % arg_pipeline];
        call->slot = slot;
        call->key = conn_pick_key(b, c, slot);
        r = format_call(b, &c->out, arg_op, call->key);
        if (r < 0)
                return r;
        call->started = now_ns();
        c->n_calls++;
        return 0;
}

/* Writes what it can of the queued output; watches for room when some is left. */
static int conn_flush(Conn *c, int epfd) {
        bool left;

        while (c->out.start < c->out.size) {
                ssize_t n = send(c->fd, c->out.data + c->out.start, c->out.size - c->out.start, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EAGAIN)
                                break;
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                c->out.start += (size_t) n;
        }
        left = c->out.start < c->out.size;
        if (!left)
                c->out.start = c->out.size = 0;
        if (left != c->watching_out) {
                struct epoll_event ev = { .events = EPOLLIN | (left ? EPOLLOUT : 0), .data.ptr = c };

                if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                        return -errno;
                c->watching_out = left;
        }
        return 0;
}

static int conn_handle_reply(Bench *b, Conn *c, const char *reply, size_t size) {
        uint64_t done = now_ns();
        Call call;

        if (c->n_calls == 0)
                return -EBADMSG; /* a reply to no call */
        call = c->calls[c->head];
        c->head = (c->head + 1) % arg_pipeline;
        c->n_calls--;

        if (!reply_ok(b, arg_op, call.key, reply, size)) {
                b->errors++;
                if (b->errors <= 5)
                        log_warning("Error reply: %.*s", (int) MIN(size, (size_t) 300), reply);
                if (arg_op == OP_PUT)
                        return -EBADMSG; /* our versions are wrong: the numbers would be too */
        }

        if (b->measuring) {
                b->ops++;
                if (samples_add(&b->samples, done - call.started) < 0)
                        return -ENOMEM;
        }
        return conn_queue_call(b, c, call.slot);
}

static int conn_read(Bench *b, Conn *c, int epfd) {
        int r;

        for (;;) {
                ssize_t n, k;

                r = buffer_reserve(&c->in, 16384);
                if (r < 0)
                        return r;
                n = recv(c->fd, c->in.data + c->in.size, c->in.allocated - c->in.size, 0);
                if (n < 0) {
                        if (errno == EAGAIN)
                                break;
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -ECONNRESET;
                c->in.size += (size_t) n;

                while ((k = reply_size(c->in.data + c->in.start, c->in.size - c->in.start)) > 0) {
                        r = conn_handle_reply(b, c, c->in.data + c->in.start, (size_t) k);
                        if (r < 0)
                                return r;
                        c->in.start += (size_t) k;
                }
                if (k < 0)
                        return (int) k;
        }
        /* Every call answered in this read is replaced by a new one: send them at once. */
        return conn_flush(c, epfd);
}

static void start_measuring(Bench *b) {
        b->measuring = true;
        b->server_ticks = arg_server_pid > 0 ? process_cpu_ticks(arg_server_pid) : -1;
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
                c->calls = calloc(arg_pipeline, sizeof(Call));
                if (!c->calls)
                        return log_oom();
                c->fd = address_connect(address, true);
                if (c->fd < 0)
                        return log_error_errno(c->fd, "Failed to connect to %s: %m", address->string);
                if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
                        return log_error_errno(errno, "Failed to watch a connection: %m");
        }

        start = now_ns();
        if (arg_warmup <= 0) {
                start_measuring(b);
                measure_start = start;
        }
        end = start + (uint64_t) ((arg_warmup + arg_duration) * 1e9);

        for (unsigned i = 0; i < arg_connections; i++) {
                Conn *c = &b->conns[i];

                for (unsigned s = 0; s < arg_pipeline; s++) {
                        r = conn_queue_call(b, c, s);
                        if (r < 0)
                                return log_error_errno(r, "Failed to format a call: %m");
                }
                r = conn_flush(c, epfd);
                if (r < 0)
                        return log_error_errno(r, "Failed to send a call: %m");
        }

        for (;;) {
                uint64_t now = now_ns();
                int n;

                if (now >= end)
                        break;
                if (!b->measuring && now >= start + (uint64_t) (arg_warmup * 1e9)) {
                        start_measuring(b);
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
                                r = conn_flush(c, epfd);
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
        if (b->server_ticks >= 0 && b->ops > 0) {
                long long t = process_cpu_ticks(arg_server_pid);

                if (t >= b->server_ticks)
                        b->server_cpu_us = (double) (t - b->server_ticks) * 1e6 / (double) sysconf(_SC_CLK_TCK) /
                                (double) b->ops;
        }
        return 0;
}

/* One Get of key over a fresh connection: 1 when it succeeded, 0 when the server is not
 * there yet or not ready (no socket, refused, Redis' -LOADING, a missing key). */
static int startup_probe(Bench *b, const Address *address, unsigned key) {
        _cleanup_close_ int fd = -EBADF;
        Buffer out = {}, in = {};
        struct pollfd p;
        int r;

        fd = address_connect(address, false);
        if (fd == -ENOENT || fd == -ECONNREFUSED || fd == -EAGAIN)
                return 0;
        if (fd < 0)
                return fd;

        r = format_call(b, &out, OP_GET, key);
        if (r >= 0)
                r = send_all(fd, &out);
        /* A server that accepted the connection answers, or closes it if it failed. */
        p = (struct pollfd) { .fd = fd, .events = POLLIN };
        if (r >= 0 && poll(&p, 1, IO_TIMEOUT_MSEC) == 0)
                r = -ETIMEDOUT;
        if (r >= 0) {
                ssize_t k = recv_reply(fd, &in);

                r = k == -ECONNRESET ? 0 : k < 0 ? (int) k : reply_ok(b, OP_GET, key, in.data + in.start, (size_t) k);
        }
        buffer_done(&out);
        buffer_done(&in);
        return r;
}

/* Starts the server and polls it (every 100 us) until it answers a Get of the first and
 * of the last key: the time from exec to a server that has its data. */
static int startup_time(Bench *b, const Address *address) {
        uint64_t start, elapsed = 0;
        pid_t pid;
        int r = 0, status;

        start = now_ns();
        pid = fork();
        if (pid < 0)
                return log_error_errno(errno, "Failed to fork: %m");
        if (pid == 0) {
                execvp(arg_command[0], arg_command);
                log_error_errno(errno, "Failed to execute %s: %m", arg_command[0]);
                _exit(127);
        }

        for (;;) {
                struct timespec pause = { .tv_nsec = 100 * 1000 };

                if (waitpid(pid, &status, WNOHANG) == pid) {
                        log_error("%s exited before it answered (status %d).", arg_command[0], status);
                        return -ECHILD;
                }
                r = startup_probe(b, address, 0);
                if (r > 0)
                        r = startup_probe(b, address, arg_keyspace - 1);
                if (r < 0) {
                        log_error_errno(r, "Get from %s failed: %m", address->string);
                        break;
                }
                if (r > 0) {
                        elapsed = now_ns() - start;
                        break;
                }
                if (now_ns() - start > STARTUP_TIMEOUT_NSEC) {
                        r = log_error_errno(ETIMEDOUT, "%s did not answer a Get of keys 0 and %u in time.",
                                address->string, arg_keyspace - 1);
                        break;
                }
                nanosleep(&pause, NULL);
        }

        /* Stopped as a service manager would: SIGTERM, SIGKILL if that is not enough. */
        (void) kill(pid, SIGTERM);
        for (uint64_t deadline = now_ns() + STOP_TIMEOUT_NSEC; waitpid(pid, &status, WNOHANG) != pid;) {
                struct timespec pause = { .tv_nsec = 10 * 1000 * 1000 };

                if (now_ns() > deadline) {
                        log_warning("%s did not stop on SIGTERM, killing it.", arg_command[0]);
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, &status, 0);
                        break;
                }
                nanosleep(&pause, NULL);
        }
        if (r < 0)
                return r;

        if (arg_csv)
                printf("%.1f\n", (double) elapsed / 1e6);
        else
                printf("%s answered a Get of keys 0 and %u %.1f ms after it was started\n", arg_command[0],
                        arg_keyspace - 1, (double) elapsed / 1e6);
        return 0;
}

static int run(int argc, char *argv[]) {
        _cleanup_free_ char *default_address = NULL;
        Address address = {};
        Bench b = { .rng = 0x9e3779b9U, .server_ticks = -1, .server_cpu_us = -1 };
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
        b.value_base64 = malloc((arg_value_size + 2) / 3 * 4 + 1);
        if (!b.conns || !b.versions || !b.value || !b.value_base64) {
                r = log_oom();
                goto finish;
        }
        for (size_t i = 0; i < arg_value_size; i++)
                b.value[i] = (char) ('a' + i % 26);
        b.value[arg_value_size] = '\0';
        base64_encode(b.value, arg_value_size, b.value_base64);
        for (unsigned i = 0; i < arg_connections; i++)
                b.conns[i].fd = -EBADF;

        if (arg_startup_time) {
                r = startup_time(&b, &address);
                goto finish;
        }

        if (arg_prepare) {
                r = prepare_keys(&b, &address);
                if (r < 0)
                        goto finish;
        }

        r = run_load(&b, &address, &seconds);
        if (r < 0)
                goto finish;

        qsort(b.samples.v, b.samples.n, sizeof(uint32_t), cmp_u32);
        if (arg_csv) {
                printf("%s,%u,%" PRIu64 ",%.3f,%.0f,%.1f,%.1f,%.1f,%.1f,%" PRIu64 ",",
                        arg_op == OP_GET ? "get" : "put", arg_connections, b.ops, seconds,
                        (double) b.ops / seconds, percentile_us(&b.samples, 50),
                        percentile_us(&b.samples, 99), percentile_us(&b.samples, 99.9),
                        percentile_us(&b.samples, 100), b.errors);
                if (b.server_cpu_us >= 0)
                        printf("%.2f", b.server_cpu_us);
                printf("\n");
        } else
                printf("%s, %u connections x %u in flight, %zu-byte values, %u keys: %" PRIu64 " calls in %.2f s\n"
                       "  %.0f ops/s   latency p50 %.1f us   p99 %.1f us   p99.9 %.1f us   max %.1f us"
                       "   errors %" PRIu64 "\n",
                        arg_op == OP_GET ? "Get" : "Put", arg_connections, arg_pipeline, arg_value_size,
                        arg_keyspace, b.ops, seconds, (double) b.ops / seconds, percentile_us(&b.samples, 50),
                        percentile_us(&b.samples, 99), percentile_us(&b.samples, 99.9),
                        percentile_us(&b.samples, 100), b.errors);
        if (!arg_csv && b.server_cpu_us >= 0)
                printf("  server CPU %.2f us per operation\n", b.server_cpu_us);
        r = b.errors > 0 ? -EBADMSG : 0;

finish:
        for (unsigned i = 0; b.conns && i < arg_connections; i++) {
                closep(&b.conns[i].fd);
                buffer_done(&b.conns[i].in);
                buffer_done(&b.conns[i].out);
                free(b.conns[i].calls);
        }
        free(b.conns);
        free(b.versions);
        free(b.value);
        free(b.value_base64);
        buffer_done(&b.body);
        free(b.samples.v);
        address_done(&address);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main(int argc, char *argv[]) {
        return run(argc, argv);
}
