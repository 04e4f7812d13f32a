/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* mrkv-kvserver's durability against the real server: killed with SIGKILL under load and
 * restarted, every acknowledged Put is there and the history across all restarts is
 * linearizable; the same during snapshots of many keys; a held lock survives a restart;
 * a torn or damaged log; a full disk. These tests count outcomes: none is timed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mrkv/lock.h>

#include "kv-harness.h"
#include "macro.h"
#include "record.h"

#define N_KILLS 20
#define N_KEYS 4
#define MAX_CLIENTS 8

typedef struct Shared {
        const char *address;
        volatile bool stop;
        uint64_t acked;         /* Puts answered OK, all clients (atomic) */
} Shared;

typedef struct Client {
        Shared *shared;
        int id;
        TestHistory history;
        unsigned ok, mismatch, maybe, timeout, nokey, gets;
        uint64_t max_latency_usec;
        unsigned seed;
} Client;

static void *client_run(void *userdata) {
        Client *cl = userdata;
        mrkv_clerk *c = test_clerk_new(cl->shared->address, false);

        /* Short attempts: a killed server's calls are resent soon after it is back. */
        ck_assert_int_eq(mrkv_clerk_set_attempt_timeout(c, 500 * USEC_PER_MSEC), 0);

        for (unsigned n = 0; !__atomic_load_n(&cl->shared->stop, __ATOMIC_RELAXED); n++) {
                char key[16], value[64];
                uint64_t version = 0;
                int64_t start;
                int r;

                snprintf(key, sizeof(key), "k%d", rand_r(&cl->seed) % N_KEYS);
                start = (int64_t) now_usec();
                r = test_get(c, &cl->history, cl->id, key, NULL, &version);
                ck_assert_msg(r == MRKV_OK || r == MRKV_ERR_NO_KEY, "client %d: get %s: %s", cl->id, key,
                              mrkv_result_to_string(r));
                cl->gets++;
                if (r == MRKV_ERR_NO_KEY)
                        version = 0;

                snprintf(value, sizeof(value), "c%d-%u", cl->id, n);
                r = test_put(c, &cl->history, cl->id, key, value, version);
                cl->max_latency_usec = MAX(cl->max_latency_usec, (uint64_t) ((int64_t) now_usec() - start));
                switch (r) {
                case MRKV_OK:
                        cl->ok++;
                        __atomic_add_fetch(&cl->shared->acked, 1, __ATOMIC_RELAXED);
                        break;
                case MRKV_ERR_VERSION:
                        cl->mismatch++;
                        break;
                case MRKV_ERR_NO_KEY:
                        cl->nokey++;
                        break;
                case MRKV_ERR_MAYBE:
                        cl->maybe++;
                        break;
                case -ETIMEDOUT:
                        cl->timeout++;
                        break;
                default:
                        ck_abort_msg("client %d: put %s: %s", cl->id, key, mrkv_result_to_string(r));
                }
        }
        mrkv_clerk_free(c);
        return NULL;
}

static void server_kill(TestDaemon *s) {
        int status;

        ck_assert_int_eq(kill(s->pid, SIGKILL), 0);
        /* Reaps it and closes its notification socket. */
        status = test_daemon_stop(s);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "wait status %#x", (unsigned) status);
}

/* Waits until n more Puts were acknowledged since *mark; false if the clients stalled. */
static bool wait_acked(Shared *sh, uint64_t *mark, uint64_t n) {
        uint64_t deadline = now_usec() + TEST_CALL_DEADLINE_USEC;

        while (__atomic_load_n(&sh->acked, __ATOMIC_RELAXED) < *mark + n) {
                if (now_usec() > deadline)
                        return false;
                (void) poll(NULL, 0, 1);
        }
        *mark = __atomic_load_n(&sh->acked, __ATOMIC_RELAXED);
        return true;
}

static bool snapshot_running(const char *state) {
        DIR *d = opendir(state);
        struct dirent *de;
        bool found = false;

        if (!d)
                return false;
        while ((de = readdir(d)))
                if (strncmp(de->d_name, ".snap-", 6) == 0) {
                        found = true;
                        break;
                }
        closedir(d);
        return found;
}

/* Polls until a snapshot writer has its temporary file, or n Puts went by. */
static bool wait_snapshot(Shared *sh, const char *state, uint64_t n) {
        uint64_t mark = __atomic_load_n(&sh->acked, __ATOMIC_RELAXED);
        uint64_t deadline = now_usec() + TEST_CALL_DEADLINE_USEC;

        while (!snapshot_running(state)) {
                if (__atomic_load_n(&sh->acked, __ATOMIC_RELAXED) >= mark + n || now_usec() > deadline)
                        return false;
                (void) poll(NULL, 0, 1);
        }
        return true;
}

/* Loads n keys "p<i>" = "preloaded-<i>" with a few clerks. */
typedef struct Loader {
        const char *address;
        unsigned from, to;
} Loader;

static void *loader_run(void *userdata) {
        Loader *l = userdata;
        mrkv_clerk *c = test_clerk_new(l->address, false);

        for (unsigned i = l->from; i < l->to; i++) {
                char key[32], value[128];

                snprintf(key, sizeof(key), "p%u", i);
                snprintf(value, sizeof(value), "preloaded-%u-%080u", i, i);
                ck_assert_int_eq(mrkv_clerk_put(c, key, value, 0), MRKV_OK);
        }
        mrkv_clerk_free(c);
        return NULL;
}

static void preload(const char *dir, unsigned n) {
        pthread_t threads[4];
        Loader loaders[4];
        TestDaemon s;

        test_kvserver_start_with(dir, (const char *const[]) { "--sync=none", NULL }, NULL, &s);
        for (unsigned i = 0; i < 4; i++) {
                loaders[i] = (Loader) { .address = s.address, .from = n * i / 4, .to = n * (i + 1) / 4 };
                ck_assert_int_eq(pthread_create(&threads[i], NULL, loader_run, &loaders[i]), 0);
        }
        for (unsigned i = 0; i < 4; i++)
                ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
        /* SIGTERM syncs the log, whatever the mode. */
        test_kvserver_stop(&s);
}

static void check_preloaded(mrkv_clerk *c, unsigned n) {
        unsigned seed = 7;

        for (unsigned j = 0; j < 200 && n > 0; j++) {
                unsigned i = j == 0 ? n - 1 : (unsigned) rand_r(&seed) % n;
                char key[32], want[128], *value = NULL;
                uint64_t version = 0;

                snprintf(key, sizeof(key), "p%u", i);
                snprintf(want, sizeof(want), "preloaded-%u-%080u", i, i);
                ck_assert_int_eq(mrkv_clerk_get(c, key, &value, &version), MRKV_OK);
                ck_assert_str_eq(value, want);
                ck_assert_uint_eq(version, 1);
                free(value);
        }
}

/* Clients doing Get-then-conditional-Put while the server is killed and restarted
 * N_KILLS times; with preloaded keys and a small snapshot threshold, the kills land
 * while snapshots are written. */
static void run_crash(const char *name, unsigned n_clients, unsigned n_preload, const char *snapshot_log_size,
                      bool during_snapshot) {
        char *dir = test_dir_new(), *state = NULL, *path = NULL, *address, opt[64];
        const char *extra[] = { opt, NULL };
        Client clients[MAX_CLIENTS] = {};
        pthread_t threads[MAX_CLIENTS];
        TestHistory final = {};
        TestHistory all[MAX_CLIENTS + 1];
        Shared sh = {};
        unsigned seed = 1, kills_in_snapshot = 0;
        uint64_t mark = 0, max_latency_usec = 0;
        unsigned ok = 0, mismatch = 0, maybe = 0, timeout = 0, nokey = 0, gets = 0;
        uint64_t versions = 0;
        TestDaemon s;
        mrkv_clerk *c;

        if (getenv("MRKV_TEST_SEED"))
                seed += (unsigned) strtoul(getenv("MRKV_TEST_SEED"), NULL, 10);
        ck_assert_int_ge(asprintf(&state, "%s/state", dir), 0);
        snprintf(opt, sizeof(opt), "--snapshot-log-size=%s", snapshot_log_size);

        if (n_preload > 0)
                preload(dir, n_preload);

        test_kvserver_start_with(dir, extra, NULL, &s);
        sh.address = address = strdup(s.address); /* each start has the same */
        ck_assert_ptr_nonnull(address);
        for (unsigned i = 0; i < n_clients; i++) {
                clients[i] = (Client) { .shared = &sh, .id = (int) i, .seed = seed * 1000 + i };
                ck_assert_int_eq(pthread_create(&threads[i], NULL, client_run, &clients[i]), 0);
        }

        for (unsigned k = 0; k < N_KILLS; k++) {
                /* A random moment, counted in acknowledged Puts rather than in time. */
                ck_assert_msg(wait_acked(&sh, &mark, 1 + (unsigned) rand_r(&seed) % 100),
                              "no Put was acknowledged for %" PRIu64 " s after restart %u",
                              TEST_CALL_DEADLINE_USEC / USEC_PER_SEC, k);
                if (during_snapshot && wait_snapshot(&sh, state, 2000)) {
                        /* Somewhere in the snapshot: at once, or a few Puts later. */
                        uint64_t m = mark;

                        if (rand_r(&seed) % 2)
                                (void) wait_acked(&sh, &m, (unsigned) rand_r(&seed) % 5);
                        kills_in_snapshot += snapshot_running(state);
                }
                server_kill(&s);
                test_kvserver_start_with(dir, extra, NULL, &s);
        }

        ck_assert(wait_acked(&sh, &mark, 10));
        __atomic_store_n(&sh.stop, true, __ATOMIC_RELAXED);
        for (unsigned i = 0; i < n_clients; i++)
                ck_assert_int_eq(pthread_join(threads[i], NULL), 0);

        /* The final state, read after everything ended. */
        c = test_clerk_new(s.address, false);
        for (unsigned i = 0; i < N_KEYS; i++) {
                char key[16];
                uint64_t version = 0;
                int r;

                snprintf(key, sizeof(key), "k%u", i);
                r = test_get(c, &final, (int) n_clients, key, NULL, &version);
                ck_assert(r == MRKV_OK || r == MRKV_ERR_NO_KEY);
                versions += r == MRKV_OK ? version : 0;
        }
        check_preloaded(c, n_preload);
        mrkv_clerk_free(c);
        test_kvserver_stop(&s);

        for (unsigned i = 0; i < n_clients; i++) {
                ok += clients[i].ok;
                mismatch += clients[i].mismatch;
                maybe += clients[i].maybe;
                timeout += clients[i].timeout;
                nokey += clients[i].nokey;
                gets += clients[i].gets;
                max_latency_usec = MAX(max_latency_usec, clients[i].max_latency_usec);
                all[i] = clients[i].history;
        }
        all[n_clients] = final;

        fprintf(stderr,
                "%s: %u kills (%u during a snapshot), %u clients: %u gets, puts %u ok, %u version mismatch, "
                "%u no key, %u maybe, %u timed out; final versions sum %" PRIu64
                " (ok <= it <= ok + maybe + timed out); max Get+Put latency %.1f ms\n",
                name, N_KILLS, kills_in_snapshot, n_clients, gets, ok, mismatch, nokey, maybe, timeout, versions,
                (double) max_latency_usec / 1e3);

        /* Every version step is one applied Put: all acknowledged ones, and of the others
         * only those whose outcome the client did not learn. */
        ck_assert_uint_ge(versions, ok);
        ck_assert_uint_le(versions, (uint64_t) ok + maybe + timeout);

        ck_assert_int_ge(asprintf(&path, "%s/history.jsonl", dir), 0);
        test_history_write(all, n_clients + 1, path);
        test_assert_linearizable(path);

        for (unsigned i = 0; i <= n_clients; i++)
                test_history_done(&all[i]);
        free(path);
        free(address);
        free(state);
        free(dir);
}

START_TEST(test_crash_restart) {
        /* Snapshots too, now and then: 64 KiB of log is a few hundred Puts. */
        run_crash("crash", 6, 0, "64K", false);
}
END_TEST

START_TEST(test_crash_during_snapshot) {
        /* 100,000 keys of about 100 bytes: a snapshot takes a while, and one starts every
         * 256 KiB of log. */
        run_crash("snapshot", 4, 100000, "256K", true);
}
END_TEST

/* A lock held across a kill and restart of the server stays held by its holder. */
START_TEST(test_lock_across_restart) {
        char *dir = test_dir_new();
        mrkv_clerk *ca, *cb;
        mrkv_lock *a, *b;
        TestDaemon s;

        test_kvserver_start(dir, &s);
        ca = test_clerk_new(s.address, false);
        cb = test_clerk_new(s.address, false);
        ck_assert_int_eq(mrkv_lock_new(ca, "l", &a), 0);
        ck_assert_int_eq(mrkv_lock_new(cb, "l", &b), 0);
        ck_assert_int_eq(mrkv_lock_acquire(a), 0);

        server_kill(&s);
        test_kvserver_start(dir, &s);

        /* The second client finds the lock held and gives up after its wait. */
        ck_assert_int_eq(mrkv_lock_set_wait_timeout(b, 300 * USEC_PER_MSEC), 0);
        ck_assert_int_eq(mrkv_lock_acquire(b), -ETIMEDOUT);
        /* The holder releases what it holds: not -ENOLCK, the key still names it. */
        ck_assert_int_eq(mrkv_lock_release(a), 0);
        ck_assert_int_eq(mrkv_lock_acquire(b), 0);
        ck_assert_int_eq(mrkv_lock_release(b), 0);

        mrkv_lock_free(a);
        mrkv_lock_free(b);
        mrkv_clerk_free(ca);
        mrkv_clerk_free(cb);
        test_kvserver_stop(&s);
        free(dir);
}
END_TEST

/* Log files: the one segment with records (each start begins a new one). */
static char *largest_segment(const char *state) {
        DIR *d = opendir(state);
        struct dirent *de;
        char *best = NULL;
        off_t best_size = -1;

        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d))) {
                struct stat st;
                char *p = NULL;

                if (strncmp(de->d_name, "log-", 4) != 0 || !strstr(de->d_name, ".wal") ||
                    strstr(de->d_name, ".cut"))
                        continue;
                ck_assert_int_ge(asprintf(&p, "%s/%s", state, de->d_name), 0);
                ck_assert_int_eq(stat(p, &st), 0);
                if (st.st_size > best_size) {
                        free(best);
                        best = p;
                        best_size = st.st_size;
                } else
                        free(p);
        }
        closedir(d);
        ck_assert_ptr_nonnull(best);
        return best;
}

static int run_server_once(const char *dir, const char *option, char **ret_output) {
        char *listen = NULL, *state = NULL;
        int status;

        ck_assert_int_ge(asprintf(&listen, "unix:%s/once.sock", dir), 0);
        ck_assert_int_ge(asprintf(&state, "%s/state", dir), 0);
        char *argv[] = { (char *) test_program("MRKV_TEST_KVSERVER"), (char *) "--listen", listen,
                         (char *) "--state-directory", state, (char *) option, NULL };
        status = test_run(argv, &(TestSpawn) { .stderr_to_stdout = true }, ret_output);
        free(listen);
        free(state);
        return status;
}

#define N_TORN_KEYS 50

static void put_keys(const char *address, unsigned n) {
        mrkv_clerk *c = test_clerk_new(address, false);

        for (unsigned i = 0; i < n; i++) {
                char key[16];

                snprintf(key, sizeof(key), "t%02u", i);
                ck_assert_int_eq(mrkv_clerk_put(c, key, "some value", 0), MRKV_OK);
        }
        mrkv_clerk_free(c);
}

/* How many of the keys t00, t01, ... the server has, and that they are a prefix. */
static unsigned count_prefix(const char *address, unsigned n) {
        mrkv_clerk *c = test_clerk_new(address, false);
        unsigned found = 0;

        for (unsigned i = 0; i < n; i++) {
                char key[16];
                int r;

                snprintf(key, sizeof(key), "t%02u", i);
                r = mrkv_clerk_get(c, key, NULL, NULL);
                ck_assert(r == MRKV_OK || r == MRKV_ERR_NO_KEY);
                if (r == MRKV_OK) {
                        ck_assert_uint_eq(found, i); /* no gap */
                        found++;
                }
        }
        mrkv_clerk_free(c);
        return found;
}

/* Where the segment's records end: the zero-filled space ahead of them (--sync=always)
 * begins there. */
static off_t segment_records_end(const char *segment) {
        _cleanup_close_ int fd = open(segment, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ uint8_t *data = NULL;
        struct stat st;
        size_t end = RECORD_FILE_HEADER_SIZE;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fstat(fd, &st), 0);
        data = malloc((size_t) st.st_size);
        ck_assert_ptr_nonnull(data);
        ck_assert_int_eq(pread(fd, data, (size_t) st.st_size, 0), st.st_size);
        for (int64_t n; (n = record_parse(data + end, (size_t) st.st_size - end, 0, NULL)) > 0;)
                end += (size_t) n;
        return (off_t) end;
}

START_TEST(test_torn_and_damaged_log) {
        char *dir = test_dir_new(), *state = NULL, *segment, *out = NULL;
        TestDaemon s;
        off_t end;
        int status, fd;
        char byte;

        ck_assert_int_ge(asprintf(&state, "%s/state", dir), 0);
        test_kvserver_start(dir, &s);
        put_keys(s.address, N_TORN_KEYS);
        server_kill(&s);

        /* Cut inside the last record: the records before it load, with a warning. */
        segment = largest_segment(state);
        end = segment_records_end(segment);
        ck_assert_int_eq(truncate(segment, end - 3), 0);
        status = run_server_once(dir, "--check", &out);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "--check of a torn tail: %#x: %s", status, out);
        ck_assert_ptr_nonnull(strstr(out, "torn tail"));
        free(out);

        test_kvserver_start(dir, &s);
        ck_assert_uint_eq(count_prefix(s.address, N_TORN_KEYS), N_TORN_KEYS - 1);
        server_kill(&s);

        /* A flipped byte in the middle of the segment: valid records follow, so it is
         * damage, and the server refuses to start, naming the file and the offset. */
        end = segment_records_end(segment);
        fd = open(segment, O_RDWR | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pread(fd, &byte, 1, end / 2), 1);
        byte ^= 0x20;
        ck_assert_int_eq(pwrite(fd, &byte, 1, end / 2), 1);
        close(fd);

        status = run_server_once(dir, NULL, &out);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "started on a damaged log: %s", out);
        ck_assert_msg(strstr(out, strrchr(segment, '/') + 1) && strstr(out, "byte offset"), "%s", out);
        fprintf(stderr, "damaged log, server's message:\n%s", out);
        free(out);

        status = run_server_once(dir, "--check", &out);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "--check of a damaged log: %#x: %s", status, out);
        ck_assert_ptr_nonnull(strstr(out, "damaged at byte offset"));
        free(out);

        status = run_server_once(dir, "--repair", &out);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "--repair: %#x: %s", status, out);
        ck_assert_ptr_nonnull(strstr(out, ".cut-"));
        fprintf(stderr, "--repair:\n%s", out);
        free(out);

        status = run_server_once(dir, "--check", &out);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "--check after --repair: %#x: %s", status, out);
        free(out);

        /* The prefix before the damage is back; nothing after it. */
        test_kvserver_start(dir, &s);
        unsigned n = count_prefix(s.address, N_TORN_KEYS);
        fprintf(stderr, "after --repair: %u of %u keys\n", n, N_TORN_KEYS - 1);
        ck_assert_uint_gt(n, 0);
        ck_assert_uint_lt(n, N_TORN_KEYS - 1);
        test_kvserver_stop(&s);

        free(segment);
        free(state);
        free(dir);
}
END_TEST

/* A second server on the same state directory is refused, naming the first. */
START_TEST(test_second_server_refused) {
        char *dir = test_dir_new(), *out = NULL, pid[32];
        TestDaemon s;
        int status;

        test_kvserver_start(dir, &s);
        status = run_server_once(dir, NULL, &out);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "second server started: %s", out);
        snprintf(pid, sizeof(pid), "pid %d", (int) s.pid);
        ck_assert_msg(strstr(out, "in use") && strstr(out, pid), "%s", out);
        free(out);
        test_kvserver_stop(&s);
        free(dir);
}
END_TEST

int main(void) {
        Suite *s = suite_create("durable");
        TCase *tc = tcase_create("durable");

        tcase_set_timeout(tc, 300);
        tcase_add_test(tc, test_second_server_refused);
        tcase_add_test(tc, test_lock_across_restart);
        tcase_add_test(tc, test_torn_and_damaged_log);
        tcase_add_test(tc, test_crash_restart);
        tcase_add_test(tc, test_crash_during_snapshot);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
