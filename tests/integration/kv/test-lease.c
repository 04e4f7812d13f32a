/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Delete, List, Watch and leases through libmrkv against a real server, and the lock on
 * a lease: a holder killed, stopped or cut off behind mrkv-faultproxy loses the lock to
 * a waiter within its ttl (plus a margin for a loaded machine), and a stopped holder that
 * wakes up finds its fencing token refused by a resource that checks tokens. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mrkv/lock.h>

#include "kv-harness.h"
#include "macro.h"

#define TTL_SEC 2
/* What a waiter may take beyond the ttl: the holder's last renewal, the server's expiry
 * check, the watch's notice and the acquiring Put, on a shared two-core machine. */
#define MARGIN_USEC (3 * USEC_PER_SEC)

/* The resource that checks tokens: a file with the highest token it has accepted; a
 * write with a lower one is refused, as a storage service fenced by lock tokens would.
 * flock(2) makes it safe for holders in different processes. */
static int fenced_write(const char *path, uint64_t token) {
        char buf[32] = {};
        uint64_t highest = 0;
        int fd, r = 0;

        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX) < 0) {
                r = -errno;
                goto finish;
        }
        if (pread(fd, buf, sizeof(buf) - 1, 0) > 0)
                highest = strtoull(buf, NULL, 10);
        if (token < highest) {
                r = -ESTALE;
                goto finish;
        }
        snprintf(buf, sizeof(buf), "%020" PRIu64, token);
        if (pwrite(fd, buf, strlen(buf), 0) != (ssize_t) strlen(buf))
                r = -EIO;
finish:
        close(fd);
        return r;
}

/* A holder in a process of its own, so that it can be killed and stopped. It acquires,
 * writes the resource, reports its token, and waits for a byte on go; then it waits for
 * its lock fd to say the lock is lost, and tries the resource again, which must refuse
 * it. Its exit status says which step failed. */
typedef struct Holder {
        pid_t pid;
        int report; /* read: the token */
        int go;     /* write: wake up and check */
} Holder;

enum {
        HOLDER_OK = 0,
        HOLDER_SETUP = 10,
        HOLDER_ACQUIRE,
        HOLDER_WRITE,
        HOLDER_NOT_LOST,
        HOLDER_STILL_HELD,
        HOLDER_NOT_REFUSED,
};

static void holder_run(const char *address, const char *resource, int report, int go) {
        mrkv_clerk *c = NULL;
        mrkv_lock *l = NULL;
        uint64_t token;
        char byte;
        int r;

        if (mrkv_clerk_new(address, &c) < 0 || mrkv_clerk_set_deadline(c, 5 * USEC_PER_SEC) < 0 ||
            mrkv_lock_new(c, "fenced", &l) < 0 || mrkv_lock_set_ttl(l, TTL_SEC * USEC_PER_SEC) < 0)
                _exit(HOLDER_SETUP);
        if (mrkv_lock_acquire(l) < 0)
                _exit(HOLDER_ACQUIRE);
        token = mrkv_lock_get_token(l);
        if (token == 0 || fenced_write(resource, token) < 0)
                _exit(HOLDER_WRITE);
        if (write(report, &token, sizeof(token)) != sizeof(token))
                _exit(HOLDER_SETUP);

        if (read(go, &byte, 1) != 1)
                _exit(HOLDER_SETUP);
        if (poll(&(struct pollfd) { .fd = mrkv_lock_get_fd(l), .events = POLLIN }, 1, 30 * 1000) != 1)
                _exit(HOLDER_NOT_LOST);
        if (mrkv_lock_is_held(l))
                _exit(HOLDER_STILL_HELD);
        if (fenced_write(resource, token) != -ESTALE)
                _exit(HOLDER_NOT_REFUSED);
        /* Lost, or (cut off) unable to tell the server anything: not released either way. */
        r = mrkv_lock_release(l);
        if (r != -ENOLCK && r != -ETIMEDOUT)
                _exit(HOLDER_STILL_HELD);
        mrkv_lock_free(l);
        mrkv_clerk_free(c);
        _exit(HOLDER_OK);
}

static uint64_t holder_start(Holder *h, const char *address, const char *resource) {
        int report[2], go[2];
        uint64_t token = 0;

        ck_assert_int_eq(pipe2(report, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(go, O_CLOEXEC), 0);
        fflush(NULL);
        h->pid = fork();
        ck_assert_int_ge(h->pid, 0);
        if (h->pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                close(report[0]);
                close(go[1]);
                holder_run(address, resource, report[1], go[0]);
        }
        close(report[1]);
        close(go[0]);
        h->report = report[0];
        h->go = go[1];

        ck_assert_msg(poll(&(struct pollfd) { .fd = h->report, .events = POLLIN }, 1, 30 * 1000) == 1,
                      "the holder did not acquire the lock");
        ck_assert_int_eq(read(h->report, &token, sizeof(token)), sizeof(token));
        ck_assert_uint_gt(token, 0);
        return token;
}

/* Wakes the holder up and asserts that it found its lock lost and its token refused. */
static void holder_check(Holder *h) {
        int status;

        ck_assert_int_eq(write(h->go, "x", 1), 1);
        ck_assert_int_eq(waitpid(h->pid, &status, 0), h->pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == HOLDER_OK, "holder: wait status %#x",
                      (unsigned) status);
        h->pid = 0;
}

static void holder_done(Holder *h) {
        if (h->pid > 0) {
                kill(h->pid, SIGKILL);
                waitpid(h->pid, NULL, 0);
        }
        close(h->report);
        close(h->go);
}

/* Another client takes the lock within ttl + margin of the holder's end, with a higher
 * token, which the resource accepts. */
static void take_over(const char *address, const char *resource, uint64_t old_token) {
        mrkv_clerk *c = test_clerk_new(address, false);
        uint64_t start = now_usec();
        mrkv_lock *l;

        ck_assert_int_eq(mrkv_lock_new(c, "fenced", &l), 0);
        ck_assert_int_eq(mrkv_lock_set_ttl(l, TTL_SEC * USEC_PER_SEC), 0);
        ck_assert_int_eq(mrkv_lock_set_wait_timeout(l, TTL_SEC * USEC_PER_SEC + MARGIN_USEC), 0);
        ck_assert_int_eq(mrkv_lock_acquire(l), 0);
        fprintf(stderr, "taken over after %.2f s (ttl %d s)\n", (double) (now_usec() - start) / USEC_PER_SEC, TTL_SEC);
        ck_assert_uint_gt(mrkv_lock_get_token(l), old_token);
        ck_assert_int_eq(mrkv_lock_is_held(l), 1);
        ck_assert_int_eq(fenced_write(resource, mrkv_lock_get_token(l)), 0);
        ck_assert_int_eq(fenced_write(resource, old_token), -ESTALE);
        ck_assert_int_eq(mrkv_lock_release(l), 0);
        mrkv_lock_free(l);
        mrkv_clerk_free(c);
}

static char *path_in(const char *dir, const char *name) {
        char *p = NULL;

        ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
        return p;
}

START_TEST(test_holder_killed) {
        char *dir = test_dir_new(), *resource = path_in(dir, "resource");
        Holder h = {};
        TestDaemon s;
        uint64_t token;

        test_kvserver_start(dir, &s);
        token = holder_start(&h, s.address, resource);
        ck_assert_int_eq(kill(h.pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(h.pid, NULL, 0), h.pid);
        h.pid = 0;
        take_over(s.address, resource, token);
        holder_done(&h);
        test_kvserver_stop(&s);
        free(resource);
        free(dir);
}
END_TEST

START_TEST(test_holder_stopped) {
        char *dir = test_dir_new(), *resource = path_in(dir, "resource");
        Holder h = {};
        TestDaemon s;
        uint64_t token;

        test_kvserver_start(dir, &s);
        token = holder_start(&h, s.address, resource);
        ck_assert_int_eq(kill(h.pid, SIGSTOP), 0);
        take_over(s.address, resource, token);
        ck_assert_int_eq(kill(h.pid, SIGCONT), 0);
        holder_check(&h);
        holder_done(&h);
        test_kvserver_stop(&s);
        free(resource);
        free(dir);
}
END_TEST

/* The holder talks through a proxy; then the proxy is replaced by one that drops every
 * message both ways, so the holder's renewals never arrive and it hears nothing. */
START_TEST(test_holder_cut_off) {
        static const char *const clean[] = { "--drop-request", "0", "--drop-reply", "0", "--delay-max", "0", NULL };
        static const char *const cut[] = { "--drop-request", "100", "--drop-reply", "100", NULL };
        char *dir = test_dir_new(), *resource = path_in(dir, "resource");
        Holder h = {};
        TestDaemon s;
        TestProxy p;
        uint64_t token;

        test_kvserver_start(dir, &s);
        test_proxy_start_with(dir, s.address, 1, clean, &p);
        token = holder_start(&h, p.address, resource);
        test_proxy_stop(&p);
        test_proxy_start_with(dir, s.address, 1, cut, &p);
        take_over(s.address, resource, token);
        holder_check(&h);
        holder_done(&h);
        test_proxy_stop(&p);
        test_kvserver_stop(&s);
        free(resource);
        free(dir);
}
END_TEST

static bool key_missing(void *userdata) {
        mrkv_clerk *c = userdata;

        return mrkv_clerk_get(c, "leased", NULL, NULL) == MRKV_ERR_NO_KEY;
}

/* Grant, attach, renew, revoke; a keepalive object keeps a lease past its ttl; a lease
 * left alone ends, and its key with it. */
START_TEST(test_leases) {
        char *dir = test_dir_new();
        mrkv_keepalive *k = NULL;
        mrkv_clerk *c;
        uint64_t lease = 0, ttl = 0, version = 0, end;
        TestDaemon s;

        test_kvserver_start(dir, &s);
        c = test_clerk_new(s.address, false);

        ck_assert_int_eq(mrkv_clerk_lease_grant(c, TTL_SEC, &lease, &ttl), MRKV_OK);
        ck_assert_uint_gt(lease, 0);
        ck_assert_uint_eq(ttl, TTL_SEC);
        ck_assert_int_eq(mrkv_clerk_put_with_lease(c, "leased", "v", 0, lease), MRKV_OK);
        ck_assert_int_eq(mrkv_clerk_put_with_lease(c, "other", "v", 0, lease + 1000), MRKV_ERR_NO_LEASE);
        ck_assert_int_eq(mrkv_clerk_lease_keepalive(c, lease, &ttl), MRKV_OK);
        ck_assert_int_eq(mrkv_clerk_lease_revoke(c, lease), MRKV_OK);
        ck_assert_int_eq(mrkv_clerk_get(c, "leased", NULL, NULL), MRKV_ERR_NO_KEY);
        ck_assert_int_eq(mrkv_clerk_lease_keepalive(c, lease, &ttl), MRKV_ERR_NO_LEASE);
        ck_assert_int_eq(mrkv_clerk_lease_revoke(c, lease), MRKV_ERR_NO_LEASE);

        /* Kept alive from an event loop for twice its ttl. */
        ck_assert_int_eq(mrkv_clerk_lease_grant(c, TTL_SEC, &lease, &ttl), MRKV_OK);
        ck_assert_int_eq(mrkv_clerk_put_with_lease(c, "leased", "v", 0, lease), MRKV_OK);
        ck_assert_int_eq(mrkv_keepalive_new(c, lease, ttl, &k), 0);
        end = now_usec() + 2 * TTL_SEC * USEC_PER_SEC;
        while (now_usec() < end) {
                ck_assert_int_eq(mrkv_keepalive_process(k), 0);
                ck_assert_int_ge(poll(&(struct pollfd) { .fd = mrkv_keepalive_get_fd(k), .events = POLLIN }, 1, 100), 0);
        }
        ck_assert_int_eq(mrkv_clerk_get(c, "leased", NULL, &version), MRKV_OK);
        ck_assert_int_eq(mrkv_keepalive_is_lost(k), 0);
        ck_assert_uint_gt(mrkv_keepalive_get_expiry(k), now_usec());
        k = mrkv_keepalive_free(k);

        /* Left alone, it ends: the key goes, and a new one starts above its versions. */
        ck_assert(test_wait_until(TTL_SEC * USEC_PER_SEC + MARGIN_USEC, key_missing, c));
        ck_assert_int_eq(mrkv_clerk_put(c, "leased", "again", 0), MRKV_OK);
        {
                uint64_t again = 0;
                ck_assert_int_eq(mrkv_clerk_get(c, "leased", NULL, &again), MRKV_OK);
                ck_assert_uint_gt(again, version + 1);
        }

        /* The same from a thread. */
        ck_assert_int_eq(mrkv_clerk_lease_grant(c, TTL_SEC, &lease, &ttl), MRKV_OK);
        ck_assert_int_eq(mrkv_keepalive_new(c, lease, ttl, &k), 0);
        ck_assert_int_eq(mrkv_keepalive_start_thread(k), 0);
        ck_assert_int_eq(mrkv_keepalive_start_thread(k), -EBUSY);
        ck_assert_int_eq(mrkv_clerk_lease_revoke(c, lease), MRKV_OK);
        k = mrkv_keepalive_free(k);

        ck_assert_int_eq(mrkv_clerk_lease_grant(c, 0, &lease, &ttl), -EINVAL);
        mrkv_clerk_free(c);
        test_kvserver_stop(&s);
        free(dir);
}
END_TEST

/* Delete is conditional, and a key deleted and created again starts above every version
 * it had; List pages through keys in order. */
START_TEST(test_delete_and_list) {
        char *dir = test_dir_new();
        const mrkv_entry *e;
        mrkv_list *l;
        mrkv_clerk *c;
        TestDaemon s;
        uint64_t version = 0;
        char key[32], last[32] = "";
        unsigned n = 0;
        int r;

        test_kvserver_start(dir, &s);
        c = test_clerk_new(s.address, false);

        ck_assert_int_eq(mrkv_clerk_delete(c, "d", 0), MRKV_ERR_NO_KEY);
        ck_assert_int_eq(mrkv_clerk_put(c, "d", "1", 0), MRKV_OK);
        ck_assert_int_eq(mrkv_clerk_put(c, "d", "2", 1), MRKV_OK);
        ck_assert_int_eq(mrkv_clerk_delete(c, "d", 1), MRKV_ERR_VERSION);
        ck_assert_int_eq(mrkv_clerk_delete(c, "d", 2), MRKV_OK);
        ck_assert_int_eq(mrkv_clerk_get(c, "d", NULL, NULL), MRKV_ERR_NO_KEY);
        ck_assert_int_eq(mrkv_clerk_put(c, "d", "3", 0), MRKV_OK);
        ck_assert_int_eq(mrkv_clerk_get(c, "d", NULL, &version), MRKV_OK);
        ck_assert_uint_gt(version, 3);

        for (unsigned i = 0; i < 2500; i++) {
                snprintf(key, sizeof(key), "l/%05u", i);
                ck_assert_int_eq(mrkv_clerk_put(c, key, key + 2, 0), MRKV_OK);
        }
        ck_assert_int_eq(mrkv_clerk_put(c, "m", "outside", 0), MRKV_OK);

        ck_assert_int_eq(mrkv_list_new(c, "l/", NULL, MRKV_LIST_VALUES, &l), 0);
        ck_assert_int_eq(mrkv_list_set_page_size(l, 100), 0);
        while ((r = mrkv_list_next(l, &e)) > 0) {
                snprintf(key, sizeof(key), "l/%05u", n);
                ck_assert_str_eq(e->key, key);
                ck_assert_str_eq(e->value, key + 2);
                /* Created above the deletion of d, as d was. */
                ck_assert_uint_eq(e->version, version);
                ck_assert_int_gt(strcmp(e->key, last), 0);
                snprintf(last, sizeof(last), "%s", e->key);
                n++;
        }
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(n, 2500);
        ck_assert_int_eq(mrkv_list_next(l, &e), 0);
        mrkv_list_free(l);

        /* From a start key, without values. */
        ck_assert_int_eq(mrkv_list_new(c, "l/", "l/02497", 0, &l), 0);
        ck_assert_int_eq(mrkv_list_next(l, &e), 1);
        ck_assert_str_eq(e->key, "l/02498");
        ck_assert_ptr_null(e->value);
        ck_assert_int_eq(mrkv_list_next(l, &e), 1);
        ck_assert_int_eq(mrkv_list_next(l, &e), 0);
        mrkv_list_free(l);
        ck_assert_int_eq(mrkv_list_new(c, NULL, NULL, 0x80, &l), -EINVAL);

        mrkv_clerk_free(c);
        test_kvserver_stop(&s);
        free(dir);
}
END_TEST

#define N_WATCHERS 8
#define N_CHANGES 300

typedef struct Change {
        uint64_t version;
        bool deleted;
        char value[16];
} Change;

typedef struct Writer {
        const char *address;
        Change changes[N_CHANGES];
} Writer;

/* Random puts and deletes of one key, each change recorded as the watchers must see it. */
static void *writer_run(void *userdata) {
        Writer *w = userdata;
        mrkv_clerk *c = test_clerk_new(w->address, false);
        uint64_t version = 0, seed = 7;
        bool exists = false;

        for (unsigned i = 0; i < N_CHANGES; i++) {
                Change *ch = &w->changes[i];

                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                if (exists && (seed >> 60) < 4) {
                        ck_assert_int_eq(mrkv_clerk_delete(c, "w", version), MRKV_OK);
                        *ch = (Change) { .version = version + 1, .deleted = true };
                        exists = false;
                        continue;
                }
                snprintf(ch->value, sizeof(ch->value), "v%u", i);
                ck_assert_int_eq(mrkv_clerk_put(c, "w", ch->value, exists ? version : 0), MRKV_OK);
                ck_assert_int_eq(mrkv_clerk_get(c, "w", NULL, &version), MRKV_OK);
                ch->version = version;
                exists = true;
        }
        mrkv_clerk_free(c);
        return NULL;
}

/* Watchers in one event loop see every change of the key, in order, each once; a prefix
 * watcher too. */
START_TEST(test_watch_sees_every_change) {
        char *dir = test_dir_new();
        mrkv_watch *watches[N_WATCHERS + 1];
        static Change got[N_WATCHERS + 1][N_CHANGES];
        unsigned seen[N_WATCHERS + 1] = {};
        Writer w = {};
        pthread_t t;
        mrkv_clerk *c;
        TestDaemon s;
        uint64_t deadline;
        bool done = false;

        test_kvserver_start(dir, &s);
        c = test_clerk_new(s.address, false);
        for (unsigned i = 0; i < N_WATCHERS; i++)
                ck_assert_int_eq(mrkv_watch_new(c, "w", 0, &watches[i]), 0);
        ck_assert_int_eq(mrkv_watch_new_prefix(c, "w", 0, &watches[N_WATCHERS]), 0);
        /* Connect and send each Watch before the first change. */
        for (unsigned i = 0; i <= N_WATCHERS; i++) {
                const mrkv_entry *e;
                ck_assert_int_eq(mrkv_watch_process(watches[i], &e), 0);
        }
        /* The server reads a connection's call when it polls it; a round trip on another
         * connection after that has gone through one more turn of its loop. */
        ck_assert_int_eq(mrkv_clerk_put(c, "x", "sync", 0), MRKV_OK);
        ck_assert_int_eq(mrkv_clerk_get(c, "x", NULL, NULL), MRKV_OK);

        w.address = s.address;
        ck_assert_int_eq(pthread_create(&t, NULL, writer_run, &w), 0);

        deadline = now_usec() + 60 * USEC_PER_SEC;
        while (!done) {
                struct pollfd p[N_WATCHERS + 1];

                ck_assert_msg(now_usec() < deadline, "watchers did not see every change in time");
                for (unsigned i = 0; i <= N_WATCHERS; i++)
                        p[i] = (struct pollfd) { .fd = mrkv_watch_get_fd(watches[i]), .events = POLLIN };
                ck_assert_int_ge(poll(p, N_WATCHERS + 1, 1000), 0);

                done = true;
                for (unsigned i = 0; i <= N_WATCHERS; i++) {
                        const mrkv_entry *e;
                        int r;

                        while ((r = mrkv_watch_process(watches[i], &e)) > 0) {
                                ck_assert_msg(seen[i] < N_CHANGES, "watcher %u: more changes than made", i);
                                ck_assert_str_eq(e->key, "w");
                                ck_assert(e->deleted ? !e->value : !!e->value);
                                got[i][seen[i]++] = (Change) { .version = e->version, .deleted = e->deleted };
                                if (e->value)
                                        snprintf(got[i][seen[i] - 1].value, sizeof(got[i][0].value), "%s", e->value);
                        }
                        ck_assert_int_eq(r, 0);
                        if (seen[i] < N_CHANGES)
                                done = false;
                }
        }
        ck_assert_int_eq(pthread_join(t, NULL), 0);

        for (unsigned i = 0; i <= N_WATCHERS; i++) {
                for (unsigned j = 0; j < N_CHANGES; j++) {
                        const Change *a = &w.changes[j], *b = &got[i][j];
                        ck_assert_msg(a->version == b->version && a->deleted == b->deleted &&
                                              streq(a->value, b->value),
                                      "watcher %u, change %u: made %" PRIu64 " %s %s, seen %" PRIu64 " %s %s", i, j,
                                      a->version, a->deleted ? "deleted" : "put", a->value, b->version,
                                      b->deleted ? "deleted" : "put", b->value);
                }
                mrkv_watch_free(watches[i]);
        }

        /* A watch started after a version gets what it missed at once: here the last state. */
        {
                mrkv_watch *late;
                const mrkv_entry *e;

                ck_assert_int_eq(mrkv_watch_new(c, "w", 1, &late), 0);
                ck_assert_int_eq(mrkv_watch_next(late, 10 * USEC_PER_SEC, &e), 1);
                ck_assert_uint_eq(e->version, w.changes[N_CHANGES - 1].version);
                ck_assert_uint_eq(e->deleted, w.changes[N_CHANGES - 1].deleted);
                ck_assert_int_eq(mrkv_watch_next(late, 100 * USEC_PER_MSEC, &e), 0);
                mrkv_watch_free(late);
        }
        mrkv_clerk_free(c);
        test_kvserver_stop(&s);
        free(dir);
}
END_TEST

#define MANY_WATCHERS 1000
#define MANY_CHANGES 5

/* 1,000 watchers of one key, each with its own connection, all see every change. */
START_TEST(test_many_watchers) {
        char *dir = test_dir_new();
        static mrkv_watch *watches[MANY_WATCHERS];
        static unsigned seen[MANY_WATCHERS];
        struct rlimit rl;
        mrkv_clerk *c;
        TestDaemon s;
        uint64_t version = 0, deadline;
        unsigned done = 0;
        int ep;

        /* A watch holds three descriptors: its socket, an epoll set and a timer. */
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        if (rl.rlim_max < 4 * MANY_WATCHERS) {
                fprintf(stderr, "RLIMIT_NOFILE hard limit %llu: fewer watchers would not test this; skipped\n",
                        (unsigned long long) rl.rlim_max);
                free(dir);
                return;
        }
        rl.rlim_cur = rl.rlim_max;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);

        test_kvserver_start(dir, &s);
        c = test_clerk_new(s.address, false);
        ck_assert_int_eq(mrkv_clerk_put(c, "many", "0", 0), MRKV_OK);
        ck_assert_int_eq(mrkv_clerk_get(c, "many", NULL, &version), MRKV_OK);

        ep = epoll_create1(EPOLL_CLOEXEC);
        ck_assert_int_ge(ep, 0);
        for (unsigned i = 0; i < MANY_WATCHERS; i++) {
                const mrkv_entry *e;

                /* From the version before: the server answers the key's state at once, which
                 * shows the watch is registered before the first Put. A watch still unread by
                 * the server would rightly get only the newest state, not every change. */
                ck_assert_int_eq(mrkv_watch_new(c, "many", version - 1, &watches[i]), 0);
                ck_assert_int_eq(mrkv_watch_next(watches[i], 30 * USEC_PER_SEC, &e), 1);
                ck_assert_uint_eq(e->version, version);
                ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_ADD, mrkv_watch_get_fd(watches[i]),
                                           &(struct epoll_event) { .events = EPOLLIN, .data.u32 = i }),
                                 0);
                ck_assert_int_eq(mrkv_watch_process(watches[i], &e), 0);
        }
        for (unsigned k = 1; k <= MANY_CHANGES; k++)
                ck_assert_int_eq(mrkv_clerk_put(c, "many", "v", version + k - 1), MRKV_OK);

        deadline = now_usec() + 60 * USEC_PER_SEC;
        while (done < MANY_WATCHERS) {
                struct epoll_event ev[128];
                int n;

                ck_assert_msg(now_usec() < deadline, "%u of %u watchers saw every change in time", done,
                              MANY_WATCHERS);
                n = epoll_wait(ep, ev, 128, 1000);
                ck_assert_int_ge(n, 0);
                for (int j = 0; j < n; j++) {
                        unsigned i = ev[j].data.u32;
                        const mrkv_entry *e;
                        int r;

                        while ((r = mrkv_watch_process(watches[i], &e)) > 0) {
                                ck_assert_uint_lt(seen[i], MANY_CHANGES);
                                ck_assert_uint_eq(e->version, version + ++seen[i]);
                                if (seen[i] == MANY_CHANGES)
                                        done++;
                        }
                        ck_assert_int_eq(r, 0);
                }
        }
        for (unsigned i = 0; i < MANY_WATCHERS; i++)
                mrkv_watch_free(watches[i]);
        close(ep);
        mrkv_clerk_free(c);
        test_kvserver_stop(&s);
        free(dir);
}
END_TEST

int main(void) {
        Suite *s = suite_create("lease");
        TCase *tc = tcase_create("lease");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_delete_and_list);
        tcase_add_test(tc, test_leases);
        tcase_add_test(tc, test_watch_sees_every_change);
        tcase_add_test(tc, test_many_watchers);
        tcase_add_test(tc, test_holder_killed);
        tcase_add_test(tc, test_holder_stopped);
        tcase_add_test(tc, test_holder_cut_off);
        suite_add_tcase(s, tc);

        return test_run_suite(s);
}
