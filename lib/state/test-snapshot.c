/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Snapshots: written in a forked child while the log goes on, loaded with the log after
 * them, and a crash at every step of writing one leaves a directory that loads right. */
#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "macro.h"
#include "snapshot.h"
#include "test-state-util.h"
#include "wal.h"

static const WalOptions always = { .sync_mode = WAL_SYNC_ALWAYS };

static char *snap_name(uint64_t seqnum) {
        char *s;
        ck_assert_int_ge(asprintf(&s, "snap-%016" PRIx64 ".snap", seqnum), 0);
        return s;
}

/* What a daemon does at start: the newest snapshot, then the log after it. */
static Wal *load(int dfd, const char *path, const WalOptions *opts, Model *m, uint64_t *ret_snapshot) {
        uint64_t seqnum;
        Wal *w = NULL;

        *m = (Model) {};
        ck_assert_int_eq(snapshot_load(dfd, path, model_apply, m, &seqnum), 0);
        ck_assert_int_eq(wal_open(dfd, path, seqnum, opts, model_apply, m, &w), 0);
        if (ret_snapshot)
                *ret_snapshot = seqnum;
        return w;
}

static void assert_loads(int dfd, const char *path, const Model *expected, uint64_t last_seqnum) {
        Model m;
        Wal *w;

        w = load(dfd, path, &always, &m, NULL);
        model_assert_values_eq(&m, expected);
        ck_assert_uint_eq(wal_last_seqnum(w), last_seqnum);
        wal_free(w);
}

/* The snapshot callback: one record per key that has a value. */
static int write_model(SnapshotWriter *sw, void *userdata) {
        const Model *m = userdata;

        for (uint32_t k = 0; k < MODEL_KEYS; k++) {
                uint8_t payload[8];
                Model scratch;
                int r;

                if (m->value[k] == 0)
                        continue;
                model_set(&scratch, k, m->value[k], payload);
                r = snapshot_writer_add(sw, MODEL_SET, payload, sizeof(payload));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Waits for the writer to exit, leaving it to snapshot_finish() to reap: through its
 * pidfd, or where pidfd_open() is missing (kernels before 5.3, valgrind 3.19) with
 * waitid(WNOWAIT), as a SIGCHLD handler would. */
static void wait_child(Snapshot *s) {
        struct pollfd p = { .fd = snapshot_get_pidfd(s), .events = POLLIN };
        siginfo_t si = {};

        if (p.fd >= 0) {
                ck_assert_int_eq(poll(&p, 1, 30000), 1);
                return;
        }
        ck_assert_int_eq(waitid(P_PID, (id_t) snapshot_get_pid(s), &si, WEXITED | WNOWAIT), 0);
        ck_assert_int_eq(si.si_pid, snapshot_get_pid(s));
}

static uint64_t counted;

static void count_records(uint64_t records, void *userdata) {
        const Model *m = userdata;

        ck_assert_uint_eq(m->records, 0);
        counted = records;
}

START_TEST(test_snapshot_then_records) {
        _cleanup_free_ char *path = test_dir_new(), *name = snap_name(30);
        uint64_t seqnum;
        Model m, loaded;
        Wal *w;
        int dfd = test_dir_open(path);

        w = load(dfd, path, &always, &m, &seqnum);
        ck_assert_uint_eq(seqnum, 0);
        model_append(w, &m, 30);
        ck_assert_int_eq(wal_sync(w), 0);
        ck_assert_uint_eq(test_count_files(dfd, "log-", ".wal"), 1);

        ck_assert_int_eq(snapshot_write(dfd, path, w, write_model, &m), 0);
        ck_assert(test_file_exists(dfd, name));
        /* The segment it covers went; the one started for the records after it stays. */
        ck_assert_uint_eq(test_count_files(dfd, "log-", ".wal"), 1);
        ck_assert(test_file_exists(dfd, "log-000000000000001f.wal"));

        model_append(w, &m, 10);
        ck_assert_int_eq(wal_sync(w), 0);
        wal_free(w);

        w = load(dfd, path, &always, &loaded, &seqnum);
        ck_assert_uint_eq(seqnum, 30);
        ck_assert_uint_eq(loaded.records, 30 + 10); /* 30 keys in the snapshot, 10 records */
        model_assert_values_eq(&loaded, &m);
        ck_assert_uint_eq(wal_last_seqnum(w), 40);
        wal_free(w);

        /* The snapshot alone is the state of record 30. */
        loaded = (Model) {};
        ck_assert_int_eq(snapshot_load(dfd, path, model_apply, &loaded, &seqnum), 0);
        ck_assert_uint_eq(seqnum, 30);
        ck_assert_uint_eq(loaded.value[0], 1000);
        ck_assert_uint_eq(loaded.value[29], 1029);
        for (unsigned k = 30; k < 40; k++)
                ck_assert_uint_eq(loaded.value[k], 0);

        /* Counted: told the 30 records before the first of them. */
        loaded = (Model) {};
        counted = UINT64_MAX;
        ck_assert_int_eq(snapshot_load_counted(dfd, path, count_records, model_apply, &loaded, &seqnum), 0);
        ck_assert_uint_eq(counted, 30);
        ck_assert_uint_eq(loaded.records, 30);
        close(dfd);
}
END_TEST

START_TEST(test_fork_snapshot) {
        _cleanup_free_ char *path = test_dir_new(), *name30 = snap_name(30), *name50 = snap_name(50);
        Snapshot *s = NULL;
        Model m, at_fork, loaded;
        uint64_t seqnum;
        Wal *w;
        int dfd = test_dir_open(path);

        w = load(dfd, path, &always, &m, NULL);
        model_append(w, &m, 30);
        ck_assert_int_eq(wal_commit(w), 0);

        ck_assert_int_eq(snapshot_start(dfd, path, w, write_model, &m, NULL, &s), 0);
        ck_assert_uint_eq(snapshot_get_seqnum(s), 30);
        ck_assert_int_gt(snapshot_get_pid(s), 0);
        at_fork = m;

        /* The parent goes on while the child writes what it saw at the fork. */
        model_append(w, &m, 20);
        ck_assert_int_eq(wal_commit(w), 0);
        wait_child(s);
        ck_assert_int_eq(snapshot_finish(s, w), 0);
        ck_assert_int_eq(snapshot_finish(s, w), -ECHILD);
        s = snapshot_free(s);
        ck_assert(test_file_exists(dfd, name30));
        ck_assert_uint_eq(test_count_files(dfd, "log-", ".wal"), 1);
        ck_assert_uint_eq(test_count_files(dfd, ".", ".tmp"), 0);

        loaded = (Model) {};
        ck_assert_int_eq(snapshot_load(dfd, path, model_apply, &loaded, &seqnum), 0);
        ck_assert_uint_eq(seqnum, 30);
        model_assert_values_eq(&loaded, &at_fork);

        /* A second one replaces the first. */
        ck_assert_int_eq(snapshot_start(dfd, path, w, write_model, &m, NULL, &s), 0);
        wait_child(s);
        ck_assert_int_eq(snapshot_finish(s, w), 0);
        s = snapshot_free(s);
        ck_assert(!test_file_exists(dfd, name30));
        ck_assert(test_file_exists(dfd, name50));
        ck_assert_int_eq(wal_sync(w), 0);
        wal_free(w);

        assert_loads(dfd, path, &m, 50);
        close(dfd);
}
END_TEST

/* Crashes. The child's hook stops it at a step; "the parent crashed" is a load without
 * snapshot_finish(). */

typedef struct Crash {
        SnapshotStep step;
        int pipe_to_parent;     /* the writer blocked in the middle: -1 for a step */
        int pipe_from_parent;
        const Model *m;
} Crash;

static void crash_at_step(SnapshotStep step, void *userdata) {
        const Crash *c = userdata;

        if (c->pipe_to_parent < 0 && step == c->step)
                raise(SIGKILL);
}

static int write_model_and_hang(SnapshotWriter *sw, void *userdata) {
        const Crash *c = userdata;
        char x;
        int r;

        r = write_model(sw, (void *) c->m);
        if (r < 0 || c->pipe_to_parent < 0)
                return r;
        /* Half way: tell the parent, wait to be killed. */
        (void) !write(c->pipe_to_parent, "x", 1);
        (void) !read(c->pipe_from_parent, &x, 1);
        return -EIO;
}

/* 30 records, a snapshot of record 30 stopped as c says, 5 more records. */
static void crash_run(Crash *c, bool finish, bool expect_snapshot) {
        _cleanup_free_ char *path = test_dir_new(), *name = snap_name(30);
        SnapshotOptions opts = { .step_hook = crash_at_step, .step_userdata = c };
        Snapshot *s = NULL;
        uint64_t seqnum;
        Model m;
        Wal *w;
        int dfd = test_dir_open(path);

        w = load(dfd, path, &always, &m, NULL);
        model_append(w, &m, 30);
        ck_assert_int_eq(wal_sync(w), 0);
        c->m = &m;

        ck_assert_int_eq(snapshot_start(dfd, path, w, write_model_and_hang, c, &opts, &s), 0);
        model_append(w, &m, 5);
        ck_assert_int_eq(wal_sync(w), 0);

        wait_child(s);

        if (finish) {
                /* The parent lives: it learns of the failure and cleans up. */
                ck_assert_int_lt(snapshot_finish(s, w), 0);
                ck_assert_uint_eq(test_count_files(dfd, ".", ".tmp"), 0);
                ck_assert_uint_eq(test_count_files(dfd, "log-", ".wal"), 2);
        }
        /* Else the parent crashed too, now: nothing more happens to the directory. */
        w = wal_free(w);

        assert_loads(dfd, path, &m, 35);
        ck_assert_int_eq(test_file_exists(dfd, name), expect_snapshot);
        ck_assert_uint_eq(test_count_files(dfd, ".", ".tmp"), 0);
        if (expect_snapshot) {
                /* The load removed the segment the snapshot covers. */
                ck_assert_uint_eq(test_count_files(dfd, "log-", ".wal"), 2);
                ck_assert(!test_file_exists(dfd, "log-0000000000000001.wal"));
                ck_assert_int_eq(snapshot_load(dfd, path, model_apply, &m, &seqnum), 0);
                ck_assert_uint_eq(seqnum, 30);
        }
        snapshot_free(s);
        close(dfd);
}

START_TEST(test_crash_child_killed_while_writing) {
        int to_parent[2], from_parent[2];
        Crash c;
        char x;
        _cleanup_free_ char *path = test_dir_new(), *name = snap_name(30);
        Snapshot *s = NULL;
        Model m;
        Wal *w;
        int dfd = test_dir_open(path);

        ck_assert_int_eq(pipe2(to_parent, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(from_parent, O_CLOEXEC), 0);
        c = (Crash) { .pipe_to_parent = to_parent[1], .pipe_from_parent = from_parent[0] };

        w = load(dfd, path, &always, &m, NULL);
        model_append(w, &m, 30);
        ck_assert_int_eq(wal_sync(w), 0);
        c.m = &m;
        ck_assert_int_eq(snapshot_start(dfd, path, w, write_model_and_hang, &c, NULL, &s), 0);
        model_append(w, &m, 5);
        ck_assert_int_eq(wal_sync(w), 0);

        /* The writer is half way: its temporary file is there, incomplete. */
        ck_assert_int_eq(read(to_parent[0], &x, 1), 1);
        ck_assert_int_eq(snapshot_finish(s, w), -EAGAIN);
        ck_assert_uint_eq(test_count_files(dfd, ".snap-", ".tmp"), 1);
        ck_assert_int_eq(kill(snapshot_get_pid(s), SIGKILL), 0);
        wait_child(s);

        /* Both crashed: the directory loads as before the snapshot. */
        wal_free(w);
        assert_loads(dfd, path, &m, 35);
        ck_assert(!test_file_exists(dfd, name));
        ck_assert_uint_eq(test_count_files(dfd, ".", ".tmp"), 0);

        /* And a parent that lives hears of it. */
        ck_assert_int_eq(snapshot_finish(s, NULL), -EIO);
        snapshot_free(s);

        /* snapshot_free() of a running writer kills it. */
        w = load(dfd, path, &always, &m, NULL);
        c.m = &m;
        ck_assert_int_eq(snapshot_start(dfd, path, w, write_model_and_hang, &c, NULL, &s), 0);
        ck_assert_int_eq(read(to_parent[0], &x, 1), 1);
        s = snapshot_free(s);
        ck_assert_uint_eq(test_count_files(dfd, ".", ".tmp"), 0);
        ck_assert_uint_eq(test_count_files(dfd, "snap-", ".snap"), 0);
        wal_free(w);
        assert_loads(dfd, path, &m, 35);

        close(to_parent[0]);
        close(to_parent[1]);
        close(from_parent[0]);
        close(from_parent[1]);
        close(dfd);
}
END_TEST

START_TEST(test_crash_before_rename) {
        Crash c = { .step = SNAPSHOT_STEP_WRITTEN, .pipe_to_parent = -1, .pipe_from_parent = -1 };

        crash_run(&c, false, false);
        crash_run(&c, true, false);
}
END_TEST

START_TEST(test_crash_before_segment_removal) {
        Crash c = { .step = SNAPSHOT_STEP_RENAMED, .pipe_to_parent = -1, .pipe_from_parent = -1 };

        /* The child renamed and synced, then died: the snapshot is complete. */
        crash_run(&c, false, true);
}
END_TEST

START_TEST(test_crash_after_child_success) {
        _cleanup_free_ char *path = test_dir_new(), *name = snap_name(30);
        Snapshot *s = NULL;
        Model m;
        Wal *w;
        int dfd = test_dir_open(path);

        w = load(dfd, path, &always, &m, NULL);
        model_append(w, &m, 30);
        ck_assert_int_eq(snapshot_start(dfd, path, w, write_model, &m, NULL, &s), 0);
        model_append(w, &m, 5);
        ck_assert_int_eq(wal_sync(w), 0);
        wait_child(s);

        /* The parent dies before snapshot_finish(): covered segment still there. */
        ck_assert(test_file_exists(dfd, name));
        ck_assert(test_file_exists(dfd, "log-0000000000000001.wal"));
        wal_free(w);
        assert_loads(dfd, path, &m, 35);
        ck_assert(!test_file_exists(dfd, "log-0000000000000001.wal"));
        snapshot_free(s);
        close(dfd);
}
END_TEST

static int write_fail;

static ssize_t failing_write(int fd, const void *buf, size_t size, void *userdata) {
        ssize_t n;

        if (write_fail)
                return -ENOSPC;
        n = write(fd, buf, size);
        return n < 0 ? -errno : n;
}

START_TEST(test_failed_log_snapshot) {
        _cleanup_free_ char *path = test_dir_new();
        WalIO io = { .write = failing_write };
        WalOptions opts = { .sync_mode = WAL_SYNC_ALWAYS, .io = &io };
        Snapshot *s = NULL;
        uint64_t durable;
        Model m;
        Wal *w;
        int dfd = test_dir_open(path);

        w = load(dfd, path, &opts, &m, NULL);
        model_append(w, &m, 10);
        ck_assert_int_eq(wal_sync(w), 0);

        write_fail = 1;
        model_append(w, &m, 5);
        ck_assert_int_eq(wal_commit(w), -ENOSPC);
        ck_assert_int_eq(wal_append(w, MODEL_SET, "12345678", 8, NULL), -ENOSPC);

        /* Space again; only a snapshot of the state in memory brings the log back. */
        write_fail = 0;
        ck_assert_int_eq(wal_commit(w), -ENOSPC);
        ck_assert_int_eq(snapshot_start(dfd, path, w, write_model, &m, NULL, &s), 0);
        ck_assert_uint_eq(snapshot_get_seqnum(s), 15);
        wait_child(s);
        ck_assert_int_eq(snapshot_finish(s, w), 0);
        snapshot_free(s);
        ck_assert_int_eq(wal_error(w), 0);
        ck_assert_int_eq(wal_process(w, &durable), 0);
        ck_assert_uint_eq(durable, 15);

        model_append(w, &m, 3);
        ck_assert_int_eq(wal_commit(w), 0);
        ck_assert_int_eq(wal_sync(w), 0);
        wal_free(w);

        assert_loads(dfd, path, &m, 18);
        close(dfd);
}
END_TEST

START_TEST(test_damaged_snapshot) {
        _cleanup_free_ char *path = test_dir_new(), *name10 = snap_name(10), *name20 = snap_name(20);
        _cleanup_free_ uint8_t *data = NULL;
        Crash c = { .step = SNAPSHOT_STEP_RENAMED, .pipe_to_parent = -1, .pipe_from_parent = -1 };
        SnapshotOptions opts = { .step_hook = crash_at_step, .step_userdata = &c };
        Snapshot *s = NULL;
        uint64_t seqnum;
        Model m, loaded;
        size_t size;
        Wal *w;
        int dfd = test_dir_open(path);

        w = load(dfd, path, &always, &m, NULL);
        model_append(w, &m, 10);
        ck_assert_int_eq(snapshot_write(dfd, path, w, write_model, &m), 0);
        model_append(w, &m, 10);
        c.m = &m;
        /* Snapshot 20 renamed into place, the parent gone before removing anything. */
        ck_assert_int_eq(snapshot_start(dfd, path, w, write_model_and_hang, &c, &opts, &s), 0);
        ck_assert_int_eq(wal_sync(w), 0);
        wait_child(s);
        s = snapshot_free(s);
        wal_free(w);
        ck_assert(test_file_exists(dfd, name10));
        ck_assert(test_file_exists(dfd, name20));

        /* Snapshot 20 damaged: snapshot 10 and the log after it still make the state. */
        test_file_read(dfd, name20, &data, &size);
        data[size / 2] ^= 0x04;
        test_file_write(dfd, name20, data, size);
        w = load(dfd, path, &always, &loaded, &seqnum);
        ck_assert_uint_eq(seqnum, 10);
        model_assert_values_eq(&loaded, &m);
        ck_assert_uint_eq(wal_last_seqnum(w), 20);
        wal_free(w);

        /* Without its end marker, a snapshot is incomplete. */
        test_file_write(dfd, name20, data, size);
        data[size / 2] ^= 0x04;
        test_file_write(dfd, name20, data, size - 1);
        ck_assert_int_eq(snapshot_load(dfd, path, model_apply, &loaded, &seqnum), 0);
        ck_assert_uint_eq(seqnum, 10);

        /* No complete snapshot at all: refused. */
        ck_assert_int_eq(unlinkat(dfd, name10, 0), 0);
        ck_assert_int_eq(snapshot_load(dfd, path, model_apply, &loaded, &seqnum), -EBADMSG);

        /* Whole again. */
        test_file_write(dfd, name20, data, size);
        ck_assert_int_eq(snapshot_load(dfd, path, model_apply, &loaded, &seqnum), 0);
        ck_assert_uint_eq(seqnum, 20);
        close(dfd);
}
END_TEST

static Suite *snapshot_suite(void) {
        Suite *s = suite_create("snapshot");
        TCase *tc = tcase_create("snapshot");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_snapshot_then_records);
        tcase_add_test(tc, test_fork_snapshot);
        tcase_add_test(tc, test_crash_child_killed_while_writing);
        tcase_add_test(tc, test_crash_before_rename);
        tcase_add_test(tc, test_crash_before_segment_removal);
        tcase_add_test(tc, test_crash_after_child_success);
        tcase_add_test(tc, test_failed_log_snapshot);
        tcase_add_test(tc, test_damaged_snapshot);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run(snapshot_suite());
}
