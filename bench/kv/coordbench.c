/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkv-coordbench: what the coordination calls cost, through libmrkv.
 *
 *   --watchers N [--changes M]   N watches of one key in one epoll loop; M Puts of the key,
 *                                one at a time, each waited for until every watcher has
 *                                seen it. Prints p50/p99 of the time from the Put's send
 *                                and from its acknowledgement to each watcher's reply.
 *   --list [--page-size P]       Lists every key of the server, P per page; prints the
 *                                keys, the time, keys/s and the slowest page.
 *   --lock-handover [--crash]    A holder process takes lock L (ttl --ttl), a waiter here
 *                                waits for it; the holder releases and exits (or is killed
 *                                with SIGKILL): prints the time from then to the waiter's
 *                                acquisition, --changes times. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mrkv/kv.h>
#include <mrkv/lock.h>

#include "time-util.h"

static const char *address;
static unsigned n_watchers, n_changes = 200, page_size;
static uint64_t ttl_usec = 2 * USEC_PER_SEC;
static enum { MODE_NONE, MODE_WATCH, MODE_LIST, MODE_LOCK } mode;
static int crash;

static void die(const char *what, int r) {
        fprintf(stderr, "mrkv-coordbench: %s: %s\n", what, mrkv_result_to_string(r));
        exit(EXIT_FAILURE);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static uint64_t percentile(uint64_t *v, size_t n, double p) {
        size_t i = (size_t) (p * (double) (n - 1) + 0.5);
        return n == 0 ? 0 : v[i];
}

static void raise_nofile(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

static void bench_watch(void) {
        mrkv_clerk *c;
        mrkv_watch **w;
        uint64_t *from_send, *from_ack, version = 0;
        size_t n = 0;
        int ep, r;

        raise_nofile();
        if ((r = mrkv_clerk_new(address, &c)) < 0)
                die("clerk", r);
        r = mrkv_clerk_put(c, "bench-watch", "0", 0);
        if (r != MRKV_OK && r != MRKV_ERR_VERSION)
                die("put", r);
        if ((r = mrkv_clerk_get(c, "bench-watch", NULL, &version)) != MRKV_OK)
                die("get", r);

        w = calloc(n_watchers, sizeof(*w));
        from_send = calloc((size_t) n_watchers * n_changes, sizeof(uint64_t));
        from_ack = calloc((size_t) n_watchers * n_changes, sizeof(uint64_t));
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (!w || !from_send || !from_ack || ep < 0)
                die("setup", -ENOMEM);
        for (unsigned i = 0; i < n_watchers; i++) {
                const mrkv_entry *e;

                if ((r = mrkv_watch_new(c, "bench-watch", version, &w[i])) < 0)
                        die("watch", r);
                if (epoll_ctl(ep, EPOLL_CTL_ADD, mrkv_watch_get_fd(w[i]),
                              &(struct epoll_event) { .events = EPOLLIN, .data.u32 = i }) < 0)
                        die("epoll", -errno);
                if ((r = mrkv_watch_process(w[i], &e)) < 0)
                        die("watch", r);
        }
        /* Every watch registered: a round trip after them all. */
        (void) mrkv_clerk_get(c, "bench-watch", NULL, NULL);

        for (unsigned k = 0; k < n_changes; k++) {
                char value[32];
                uint64_t sent, acked, deadline;
                unsigned got = 0;

                snprintf(value, sizeof(value), "%u", k + 1);
                sent = now_usec();
                if ((r = mrkv_clerk_put(c, "bench-watch", value, version)) != MRKV_OK)
                        die("put", r);
                acked = now_usec();
                version++;
                deadline = acked + 10 * USEC_PER_SEC;

                while (got < n_watchers) {
                        struct epoll_event ev[256];
                        int m = epoll_wait(ep, ev, 256, 1000);

                        if (now_usec() > deadline) {
                                fprintf(stderr, "mrkv-coordbench: change %u: %u of %u watchers in 10 s\n", k, got,
                                        n_watchers);
                                exit(EXIT_FAILURE);
                        }
                        for (int j = 0; j < m; j++) {
                                mrkv_watch *x = w[ev[j].data.u32];
                                const mrkv_entry *e;

                                while ((r = mrkv_watch_process(x, &e)) > 0) {
                                        uint64_t t = now_usec();
                                        if (e->version != version)
                                                continue;
                                        from_send[n] = t - sent;
                                        from_ack[n] = t > acked ? t - acked : 0;
                                        n++;
                                        got++;
                                }
                                if (r < 0)
                                        die("watch", r);
                        }
                }
        }

        qsort(from_send, n, sizeof(uint64_t), cmp_u64);
        qsort(from_ack, n, sizeof(uint64_t), cmp_u64);
        printf("watchers=%u changes=%u notifications=%zu from_send_p50_us=%" PRIu64 " from_send_p99_us=%" PRIu64
               " from_ack_p50_us=%" PRIu64 " from_ack_p99_us=%" PRIu64 "\n",
               n_watchers, n_changes, n, percentile(from_send, n, 0.5), percentile(from_send, n, 0.99),
               percentile(from_ack, n, 0.5), percentile(from_ack, n, 0.99));
        for (unsigned i = 0; i < n_watchers; i++)
                mrkv_watch_free(w[i]);
        free(w);
        free(from_send);
        free(from_ack);
        close(ep);
        mrkv_clerk_free(c);
}

static void bench_list(void) {
        uint64_t start, last, slowest = 0, keys = 0;
        const mrkv_entry *e;
        mrkv_clerk *c;
        mrkv_list *l;
        int r;

        if ((r = mrkv_clerk_new(address, &c)) < 0 || (r = mrkv_list_new(c, NULL, NULL, 0, &l)) < 0 ||
            (r = mrkv_list_set_page_size(l, page_size)) < 0)
                die("setup", r);
        start = last = now_usec();
        while ((r = mrkv_list_next(l, &e)) > 0) {
                keys++;
                /* A page boundary shows as a gap: the call for the next page. */
                uint64_t t = now_usec();
                if (t - last > slowest)
                        slowest = t - last;
                last = t;
        }
        if (r < 0)
                die("list", r);
        double s = (double) (now_usec() - start) / USEC_PER_SEC;
        printf("page_size=%u keys=%" PRIu64 " seconds=%.3f keys_per_s=%.0f slowest_page_ms=%.1f\n", page_size, keys, s,
               (double) keys / s, (double) slowest / USEC_PER_MSEC);
        mrkv_list_free(l);
        mrkv_clerk_free(c);
}

/* The holder: takes the lock, says so on fd, waits for a byte, then releases and exits
 * (the parent kills it instead under --crash). */
static void holder(int ready, int go) {
        mrkv_clerk *c;
        mrkv_lock *l;
        char byte;
        int r;

        if ((r = mrkv_clerk_new(address, &c)) < 0 || (r = mrkv_lock_new(c, "bench-lock", &l)) < 0 ||
            (r = mrkv_lock_set_ttl(l, ttl_usec)) < 0 || (r = mrkv_lock_acquire(l)) < 0)
                _exit(EXIT_FAILURE);
        if (write(ready, "x", 1) != 1 || read(go, &byte, 1) != 1)
                _exit(EXIT_FAILURE);
        _exit(mrkv_lock_release(l) < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}

static void bench_lock(void) {
        uint64_t *t = calloc(n_changes, sizeof(uint64_t));
        mrkv_clerk *c;
        mrkv_lock *l;
        int r = -ENOMEM;

        if (!t || (r = mrkv_clerk_new(address, &c)) < 0 || (r = mrkv_lock_new(c, "bench-lock", &l)) < 0 ||
            (r = mrkv_lock_set_ttl(l, ttl_usec)) < 0)
                die("setup", r);

        for (unsigned k = 0; k < n_changes; k++) {
                int ready[2], go[2], status;
                uint64_t end;
                char byte;
                pid_t pid;

                if (pipe(ready) < 0 || pipe(go) < 0)
                        die("pipe", -errno);
                pid = fork();
                if (pid < 0)
                        die("fork", -errno);
                if (pid == 0)
                        holder(ready[1], go[0]);
                if (read(ready[0], &byte, 1) != 1)
                        die("holder", -EIO);

                /* From the moment the holder is told to release (or is killed) to
                 * ours: its release call, the server's notice to our watch and our
                 * acquiring Put; after a crash, the rest of its lease's ttl. */
                end = now_usec();
                if (crash)
                        kill(pid, SIGKILL);
                else if (write(go[1], "x", 1) != 1)
                        die("holder", -EIO);
                if ((r = mrkv_lock_acquire(l)) < 0)
                        die("acquire", r);
                t[k] = now_usec() - end;
                waitpid(pid, &status, 0);
                if ((r = mrkv_lock_release(l)) < 0)
                        die("release", r);
                close(ready[0]);
                close(ready[1]);
                close(go[0]);
                close(go[1]);
        }
        qsort(t, n_changes, sizeof(uint64_t), cmp_u64);
        printf("handover=%s ttl_s=%.0f runs=%u p50_ms=%.1f max_ms=%.1f\n", crash ? "crash" : "exit",
               (double) ttl_usec / USEC_PER_SEC, n_changes, (double) percentile(t, n_changes, 0.5) / USEC_PER_MSEC,
               (double) t[n_changes - 1] / USEC_PER_MSEC);
        mrkv_lock_free(l);
        mrkv_clerk_free(c);
        free(t);
}

int main(int argc, char *argv[]) {
        enum { ARG_LIST = 0x100, ARG_LOCK, ARG_CRASH, ARG_TTL, ARG_PAGE };
        static const struct option options[] = {
                { "address", required_argument, NULL, 'a' },
                { "watchers", required_argument, NULL, 'n' },
                { "changes", required_argument, NULL, 'm' },
                { "list", no_argument, NULL, ARG_LIST },
                { "page-size", required_argument, NULL, ARG_PAGE },
                { "lock-handover", no_argument, NULL, ARG_LOCK },
                { "crash", no_argument, NULL, ARG_CRASH },
                { "ttl", required_argument, NULL, ARG_TTL },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "a:n:m:", options, NULL)) >= 0)
                switch (c) {
                case 'a':
                        address = optarg;
                        break;
                case 'n':
                        n_watchers = (unsigned) strtoul(optarg, NULL, 10);
                        mode = MODE_WATCH;
                        break;
                case 'm':
                        n_changes = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case ARG_LIST:
                        mode = MODE_LIST;
                        break;
                case ARG_PAGE:
                        page_size = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case ARG_LOCK:
                        mode = MODE_LOCK;
                        break;
                case ARG_CRASH:
                        crash = 1;
                        break;
                case ARG_TTL:
                        ttl_usec = strtoull(optarg, NULL, 10) * USEC_PER_SEC;
                        break;
                default:
                        return 2;
                }
        if (mode == MODE_NONE || n_changes == 0 || (mode == MODE_WATCH && n_watchers == 0) || ttl_usec == 0) {
                fprintf(stderr, "usage: mrkv-coordbench [-a ADDRESS] --watchers N [--changes M] | --list "
                                "[--page-size P] | --lock-handover [--crash] [--ttl SEC] [--changes M]\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        if (mode == MODE_WATCH)
                bench_watch();
        else if (mode == MODE_LIST)
                bench_list();
        else
                bench_lock();
        return 0;
}
