/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkv-walbench: appends and syncs per second of the write-ahead log (lib/state/wal.h)
 * as a single-threaded server would drive it, for 1, 16 and 50 clients, in each sync
 * mode. Prints numbers, judges nothing.
 *
 * Each client has one request in flight. The loop appends one record for each client
 * that is ready, commits once (one write(2) for the batch), and then:
 *   always      waits on the log's eventfd; a client is ready again once its record is
 *               durable. Clients acknowledged by one sync append while the next one runs,
 *               so a sync covers the batch that gathered during the previous one;
 *   interval:MS and none   acknowledges at once: every client is ready again. */
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>

#include "log.h"
#include "macro.h"
#include "time-util.h"
#include "wal.h"

#define CLIENTS_MAX 1024

static double arg_duration = 2.0;
static size_t arg_size = 100;
static const char *arg_dir = NULL;
static char *arg_modes = NULL;
static char *arg_clients = NULL;

typedef struct Result {
        uint64_t ops;
        uint64_t syncs;
        uint64_t writes;
        double seconds;
} Result;

static int run(const char *dir, WalSyncMode mode, uint64_t interval, unsigned clients, Result *ret) {
        uint64_t pending[CLIENTS_MAX]; /* the seqnum a client waits for; 0: ready */
        WalOptions opts = { .sync_mode = mode, .sync_interval_usec = interval };
        uint8_t *payload;
        uint64_t start, end, durable = 0, segments = 1, ops = 0;
        WalStats st;
        Wal *w = NULL;
        int dfd, r;

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return log_error_errno(errno, "Failed to open %s: %m", dir);
        r = wal_open(dfd, dir, 0, &opts, NULL, NULL, &w);
        close(dfd);
        if (r < 0)
                return r;

        payload = malloc(arg_size ?: 1);
        if (!payload) {
                wal_free(w);
                return -ENOMEM;
        }
        memset(payload, 'v', arg_size);
        memset(pending, 0, sizeof(pending));

        start = now_usec();
        end = start + (uint64_t) (arg_duration * USEC_PER_SEC);
        for (;;) {
                bool appended = false;
                uint64_t now = now_usec();

                if (now >= end)
                        break;

                for (unsigned c = 0; c < clients; c++) {
                        if (pending[c] != 0)
                                continue;
                        r = wal_append(w, 1, payload, arg_size, &pending[c]);
                        if (r < 0)
                                goto finish;
                        appended = true;
                }
                if (appended) {
                        r = wal_commit(w);
                        if (r < 0)
                                goto finish;
                }

                if (mode != WAL_SYNC_ALWAYS) {
                        ops += clients;
                        memset(pending, 0, sizeof(pending));
                } else {
                        struct pollfd p = { .fd = wal_get_event_fd(w), .events = POLLIN };

                        if (poll(&p, 1, 100) < 0) {
                                r = -errno;
                                goto finish;
                        }
                        r = wal_process(w, &durable);
                        if (r < 0)
                                goto finish;
                        for (unsigned c = 0; c < clients; c++)
                                if (pending[c] != 0 && pending[c] <= durable) {
                                        pending[c] = 0;
                                        ops++;
                                }
                }

                /* Keep the disk use flat: pretend a snapshot removes the old segments. */
                wal_get_stats(w, &st);
                if (st.segments > segments + 1) {
                        (void) wal_rotate_after_snapshot(w, wal_last_seqnum(w) - 1);
                        segments = st.segments;
                }
        }
        r = 0;

finish:
        end = now_usec();
        wal_get_stats(w, &st);
        *ret = (Result) {
                .ops = ops,
                .syncs = st.syncs,
                .writes = st.writes,
                .seconds = (double) (end - start) / USEC_PER_SEC,
        };
        free(payload);
        wal_free(w);
        return r;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 ? -1 : 0;
}

static void help(void) {
        printf("mrkv-walbench [OPTIONS]\n\n"
               "Appends and syncs per second of the mrkv write-ahead log.\n\n"
               "  -h --help             Show this help\n"
               "  -d --directory=DIR    Where to write (default: a new directory in $TMPDIR or /var/tmp)\n"
               "  -t --duration=SEC     Seconds per case (default 2)\n"
               "  -s --size=BYTES       Payload bytes per record (default 100)\n"
               "  -m --modes=LIST       Sync modes (default always,interval:10,none)\n"
               "  -c --clients=LIST     Clients (default 1,16,50)\n");
}

static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "directory", required_argument, NULL, 'd' },
                { "duration", required_argument, NULL, 't' },
                { "size", required_argument, NULL, 's' },
                { "modes", required_argument, NULL, 'm' },
                { "clients", required_argument, NULL, 'c' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "hd:t:s:m:c:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'd':
                        arg_dir = optarg;
                        break;
                case 't':
                        arg_duration = strtod(optarg, NULL);
                        if (arg_duration <= 0)
                                return log_error_errno(EINVAL, "Invalid --duration: %s", optarg);
                        break;
                case 's':
                        arg_size = (size_t) strtoul(optarg, NULL, 10);
                        if (arg_size > RECORD_PAYLOAD_MAX)
                                return log_error_errno(EINVAL, "Invalid --size: %s", optarg);
                        break;
                case 'm':
                        arg_modes = optarg;
                        break;
                case 'c':
                        arg_clients = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        return 1;
}

int main(int argc, char *argv[]) {
        char modes_default[] = "always,interval:10,none", clients_default[] = "1,16,50";
        char tmpl[PATH_MAX], *dir, *save_mode = NULL;
        int r;

        log_set_ident("mrkv-walbench");
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        if (arg_dir)
                snprintf(tmpl, sizeof(tmpl), "%s/mrkv-walbench-XXXXXX", arg_dir);
        else
                snprintf(tmpl, sizeof(tmpl), "%s/mrkv-walbench-XXXXXX", getenv("TMPDIR") ?: "/var/tmp");
        dir = mkdtemp(tmpl);
        if (!dir) {
                log_error_errno(errno, "Failed to create a directory %s: %m", tmpl);
                return EXIT_FAILURE;
        }

        printf("# %s, %zu-byte records, %.1f s per case\n", dir, arg_size, arg_duration);
        printf("%-12s %8s %12s %10s %14s %12s\n", "mode", "clients", "appends/s", "syncs/s", "records/sync",
               "writes/s");
        for (char *m = strtok_r(arg_modes ?: modes_default, ",", &save_mode); m; m = strtok_r(NULL, ",", &save_mode)) {
                char clients_buf[256], *save_clients = NULL;
                WalSyncMode mode;
                uint64_t interval;

                if (wal_sync_mode_from_string(m, &mode, &interval) < 0) {
                        log_error("Invalid sync mode: %s", m);
                        r = -EINVAL;
                        break;
                }
                snprintf(clients_buf, sizeof(clients_buf), "%s", arg_clients ?: clients_default);
                for (char *c = strtok_r(clients_buf, ",", &save_clients); c; c = strtok_r(NULL, ",", &save_clients)) {
                        char sub[PATH_MAX];
                        unsigned n = (unsigned) strtoul(c, NULL, 10);
                        Result res = {};

                        if (n == 0 || n > CLIENTS_MAX) {
                                log_error("Invalid number of clients: %s", c);
                                r = -EINVAL;
                                break;
                        }
                        snprintf(sub, sizeof(sub), "%s/%s-%u", dir, m, n);
                        if (mkdir(sub, 0700) < 0) {
                                r = log_error_errno(errno, "Failed to create %s: %m", sub);
                                break;
                        }
                        r = run(sub, mode, interval, n, &res);
                        if (r < 0) {
                                log_error_errno(r, "The %s case with %u clients failed: %m", m, n);
                                break;
                        }
                        printf("%-12s %8u %12.0f %10.1f %14.1f %12.0f\n", m, n, res.ops / res.seconds,
                               res.syncs / res.seconds, res.syncs > 0 ? (double) res.ops / res.syncs : 0.0,
                               res.writes / res.seconds);
                        fflush(stdout);
                }
                if (r < 0)
                        break;
        }

        (void) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
