/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <endian.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "log.h"
#include "macro.h"
#include "snapshot.h"
#include "state-dir.h"
#include "strv.h"

#define SNAPSHOT_PREFIX "snap-"
#define SNAPSHOT_SUFFIX ".snap"
#define WRITER_BUFFER (256U << 10)

struct SnapshotWriter {
        int fd;
        uint64_t seqnum;        /* of the last record written */
        uint8_t *buf;
        size_t size;
        int error;
};

struct Snapshot {
        int dir_fd;
        char *dir_path;
        char *name;
        char *tmp;
        uint64_t seqnum;
        pid_t pid;
        int pidfd;
};

static char *snapshot_name(uint64_t seqnum) {
        char *s;

        if (asprintf(&s, SNAPSHOT_PREFIX "%016" PRIx64 SNAPSHOT_SUFFIX, seqnum) < 0)
                return NULL;
        return s;
}

static int snapshot_name_parse(const char *name, uint64_t *ret) {
        size_t np = strlen(SNAPSHOT_PREFIX);
        uint64_t v = 0;

        if (strlen(name) != np + 16 + strlen(SNAPSHOT_SUFFIX))
                return -EINVAL;
        for (size_t i = np; i < np + 16; i++) {
                char c = name[i];

                if (c >= '0' && c <= '9')
                        v = v << 4 | (uint64_t) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v = v << 4 | (uint64_t) (c - 'a' + 10);
                else
                        return -EINVAL;
        }
        *ret = v;
        return 0;
}

/* Writing */

static int writer_flush(SnapshotWriter *sw) {
        const uint8_t *p = sw->buf;

        while (sw->size > 0) {
                ssize_t n = write(sw->fd, p, sw->size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return sw->error = n < 0 ? -errno : -EIO;
                p += n;
                sw->size -= (size_t) n;
        }
        return 0;
}

static int writer_put(SnapshotWriter *sw, const void *data, size_t size) {
        const uint8_t *p = data;
        int r;

        while (size > 0) {
                size_t k = MIN(size, WRITER_BUFFER - sw->size);

                memcpy(sw->buf + sw->size, p, k);
                sw->size += k;
                p += k;
                size -= k;
                if (sw->size == WRITER_BUFFER) {
                        r = writer_flush(sw);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int writer_add(SnapshotWriter *sw, uint32_t type, const void *payload, size_t size) {
        uint8_t header[RECORD_HEADER_SIZE];
        int r;

        if (sw->error < 0)
                return sw->error;
        if (size > RECORD_PAYLOAD_MAX)
                return -EMSGSIZE;

        record_header_encode(header, sw->seqnum + 1, type, payload, (uint32_t) size);
        r = writer_put(sw, header, sizeof(header));
        if (r < 0)
                return r;
        r = writer_put(sw, payload, size);
        if (r < 0)
                return r;
        sw->seqnum++;
        return 0;
}

int snapshot_writer_add(SnapshotWriter *sw, uint32_t type, const void *payload, size_t size) {
        assert(sw);
        assert(type < RECORD_TYPE_RESERVED);
        assert(payload || size == 0);

        return writer_add(sw, type, payload, size);
}

/* Writes the snapshot into fd (tmp in dir_fd), syncs it and renames it to name. */
static int snapshot_write_file(int dir_fd, int fd, const char *tmp, const char *name, uint64_t seqnum,
                               snapshot_write_cb cb, void *userdata, const SnapshotOptions *opts) {
        SnapshotWriter sw = { .fd = fd };
        uint8_t header[RECORD_FILE_HEADER_SIZE];
        uint64_t end;
        int r;

        sw.buf = malloc(WRITER_BUFFER);
        if (!sw.buf)
                return -ENOMEM;

        record_file_header_encode(header, RECORD_MAGIC_SNAPSHOT, seqnum);
        r = writer_put(&sw, header, sizeof(header));
        if (r >= 0)
                r = cb(&sw, userdata);
        if (r >= 0) {
                /* The end marker tells a complete snapshot from a cut one. */
                end = htole64(seqnum);
                r = writer_add(&sw, RECORD_TYPE_SNAPSHOT_END, &end, sizeof(end));
        }
        if (r >= 0)
                r = writer_flush(&sw);
        free(sw.buf);
        if (r < 0)
                return r;

        if (fdatasync(fd) < 0)
                return -errno;
        if (opts && opts->step_hook)
                opts->step_hook(SNAPSHOT_STEP_WRITTEN, opts->step_userdata);

        r = state_file_commit(dir_fd, tmp, name, true);
        if (r < 0)
                return r;
        if (opts && opts->step_hook)
                opts->step_hook(SNAPSHOT_STEP_RENAMED, opts->step_userdata);
        return 0;
}

Snapshot *snapshot_free(Snapshot *s) {
        if (!s)
                return NULL;

        if (s->pid > 0) {
                siginfo_t si = {};

                (void) kill(s->pid, SIGKILL);
                while (waitid(P_PID, (id_t) s->pid, &si, WEXITED) < 0 && errno == EINTR)
                        ;
                /* Killed before its rename, the file is incomplete; after it, there is no
                 * temporary file and the snapshot is complete. Both load. */
                (void) unlinkat(s->dir_fd, s->tmp, 0);
        }
        if (s->pidfd >= 0)
                close(s->pidfd);
        if (s->dir_fd >= 0)
                close(s->dir_fd);
        free(s->dir_path);
        free(s->name);
        free(s->tmp);
        return mfree(s);
}

static int snapshot_new(int dir_fd, const char *dir_path, uint64_t seqnum, Snapshot **ret) {
        _cleanup_(snapshot_freep) Snapshot *s = NULL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->dir_fd = s->pidfd = -EBADF;
        s->seqnum = seqnum;
        s->dir_path = strdup(dir_path ?: ".");
        s->name = snapshot_name(seqnum);
        if (!s->dir_path || !s->name)
                return -ENOMEM;
        s->tmp = state_tmp_name(s->name);
        if (!s->tmp)
                return -ENOMEM;
        s->dir_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        if (s->dir_fd < 0)
                return -errno;
        *ret = TAKE_PTR(s);
        return 0;
}

/* The seqnum the snapshot covers: everything appended, after a new segment was started
 * so that the snapshot can remove the earlier ones whole. */
static uint64_t snapshot_seqnum(Wal *wal) {
        /* A failure here fails the log; the snapshot goes on, as it is what repairs it. */
        (void) wal_rotate(wal);
        return wal_last_seqnum(wal);
}

static int snapshot_done(int dir_fd, const char *dir_path, uint64_t seqnum, Wal *wal) {
        int r;

        r = snapshot_remove_older(dir_fd, dir_path, seqnum);
        if (wal) {
                int k = wal_rotate_after_snapshot(wal, seqnum);
                if (k < 0 && r >= 0)
                        r = k;
        }
        return r;
}

__attribute__((noreturn)) static void child_run(Snapshot *s, int fd, pid_t parent, snapshot_write_cb cb, void *userdata,
                                 const SnapshotOptions *opts) {
        int r;

        /* Never outlive the parent: it alone decides what happens to the directory. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(EXIT_FAILURE);

        r = snapshot_write_file(s->dir_fd, fd, s->tmp, s->name, s->seqnum, cb, userdata, opts);
        if (r < 0)
                log_error_errno(r, "Failed to write the snapshot %s/%s: %m", s->dir_path, s->tmp);
        /* Only the parent's stack frame, gone here, pointed to it: valgrind, which checks the
         * child's memory at its exit too, would count it lost (s->pid is 0 here: nothing is
         * killed). */
        snapshot_free(s);
        _exit(r < 0 ? MIN(-r, 255) : EXIT_SUCCESS);
}

int snapshot_start(int dir_fd, const char *dir_path, Wal *wal, snapshot_write_cb cb, void *userdata,
                   const SnapshotOptions *opts, Snapshot **ret) {
        _cleanup_(snapshot_freep) Snapshot *s = NULL;
        _cleanup_close_ int fd = -EBADF;
        pid_t parent = getpid(), pid;
        int r;

        assert(wal);
        assert(cb);
        assert(ret);

        r = snapshot_new(dir_fd, dir_path, snapshot_seqnum(wal), &s);
        if (r < 0)
                return r;

        (void) unlinkat(s->dir_fd, s->tmp, 0);
        fd = state_file_create(s->dir_fd, s->tmp);
        if (fd < 0)
                return log_error_errno(fd, "Failed to create %s/%s: %m", s->dir_path, s->tmp);

        pid = fork();
        if (pid < 0) {
                r = -errno;
                (void) unlinkat(s->dir_fd, s->tmp, 0);
                return log_error_errno(r, "Failed to fork the snapshot writer: %m");
        }
        if (pid == 0)
                child_run(s, fd, parent, cb, userdata, opts);

        s->pid = pid;
        s->pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (s->pidfd < 0)
                s->pidfd = -EBADF;
        log_debug("%s/%s: snapshot of record %" PRIu64 " written by pid %d.", s->dir_path, s->name, s->seqnum,
                  (int) pid);
        *ret = TAKE_PTR(s);
        return 0;
}

int snapshot_get_pidfd(Snapshot *s) {
        assert(s);
        return s->pidfd >= 0 ? s->pidfd : -1;
}

pid_t snapshot_get_pid(Snapshot *s) {
        assert(s);
        return s->pid;
}

uint64_t snapshot_get_seqnum(Snapshot *s) {
        assert(s);
        return s->seqnum;
}

int snapshot_finish(Snapshot *s, Wal *wal) {
        siginfo_t si = {};

        assert(s);

        if (s->pid <= 0)
                return -ECHILD;
        if (waitid(P_PID, (id_t) s->pid, &si, WEXITED | WNOHANG) < 0)
                return -errno;
        if (si.si_pid == 0)
                return -EAGAIN;
        s->pid = 0;

        if (si.si_code != CLD_EXITED || si.si_status != 0) {
                (void) unlinkat(s->dir_fd, s->tmp, 0);
                if (si.si_code == CLD_EXITED)
                        return log_error_errno(si.si_status, "The snapshot writer of %s/%s failed: %m",
                                               s->dir_path, s->name);
                return log_error_errno(EIO, "The snapshot writer of %s/%s was killed by signal %d.", s->dir_path,
                                       s->name, si.si_status);
        }

        log_debug("%s/%s: snapshot complete.", s->dir_path, s->name);
        return snapshot_done(s->dir_fd, s->dir_path, s->seqnum, wal);
}

int snapshot_write(int dir_fd, const char *dir_path, Wal *wal, snapshot_write_cb cb, void *userdata) {
        _cleanup_free_ char *name = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        uint64_t seqnum;
        int r;

        assert(wal);
        assert(cb);

        dir_path = dir_path ?: ".";
        seqnum = snapshot_seqnum(wal);
        name = snapshot_name(seqnum);
        if (!name)
                return -ENOMEM;
        tmp = state_tmp_name(name);
        if (!tmp)
                return -ENOMEM;

        (void) unlinkat(dir_fd, tmp, 0);
        fd = state_file_create(dir_fd, tmp);
        if (fd < 0)
                return log_error_errno(fd, "Failed to create %s/%s: %m", dir_path, tmp);
        r = snapshot_write_file(dir_fd, fd, tmp, name, seqnum, cb, userdata, NULL);
        if (r < 0) {
                (void) unlinkat(dir_fd, tmp, 0);
                return log_error_errno(r, "Failed to write the snapshot %s/%s: %m", dir_path, tmp);
        }
        return snapshot_done(dir_fd, dir_path, seqnum, wal);
}

/* Loading */

/* Checks the whole snapshot; with cb, delivers its records, without checking the
 * checksums again (a pass without cb did). On damage, *ret_offset says where. */
static int snapshot_read(const MappedFile *m, uint64_t seqnum, state_record_cb cb, void *userdata,
                         uint64_t *ret_offset, uint64_t *ret_records) {
        uint64_t position, offset = RECORD_FILE_HEADER_SIZE, expected = 1;
        int r;

        *ret_offset = 0;
        r = record_file_header_parse(m->data, m->size, RECORD_MAGIC_SNAPSHOT, &position);
        if (r < 0)
                return r;
        if (position != seqnum)
                return -EBADMSG;

        while (offset < m->size) {
                Record rec;
                int64_t n;

                *ret_offset = offset;
                n = cb ? record_parse_checked(m->data + offset, m->size - offset, &rec)
                       : record_parse(m->data + offset, m->size - offset, 0, &rec);
                if (n < 0 || rec.seqnum != expected)
                        return -EBADMSG;
                offset += (uint64_t) n;
                expected++;

                if (rec.type == RECORD_TYPE_SNAPSHOT_END) {
                        uint64_t v;

                        if (rec.size != sizeof(v) || offset != m->size)
                                return -EBADMSG;
                        memcpy(&v, rec.payload, sizeof(v));
                        if (le64toh(v) != seqnum)
                                return -EBADMSG;
                        if (ret_records)
                                *ret_records = expected - 2; /* without the end marker */
                        return 0;
                }
                if (rec.type >= RECORD_TYPE_RESERVED)
                        return -EBADMSG;
                if (cb) {
                        r = cb(rec.seqnum, rec.type, rec.payload, rec.size, userdata);
                        if (r < 0)
                                return r;
                }
        }
        *ret_offset = offset;
        return -EBADMSG; /* no end marker */
}

int snapshot_load_counted(int dir_fd, const char *dir_path, snapshot_count_cb count_cb, state_record_cb cb,
                          void *userdata, uint64_t *ret_seqnum) {
        _cleanup_strv_free_ char **names = NULL;
        size_t n;
        int r;

        assert(ret_seqnum);

        dir_path = dir_path ?: ".";
        r = state_dir_remove_tmp_prefix(dir_fd, SNAPSHOT_PREFIX);
        if (r < 0)
                return log_error_errno(r, "Failed to remove temporary files in %s: %m", dir_path);
        r = state_dir_list(dir_fd, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX, &names);
        if (r < 0)
                return log_error_errno(r, "Failed to list the snapshots in %s: %m", dir_path);

        n = strv_length(names);
        for (size_t i = n; i > 0; i--) {
                const char *name = names[i - 1];
                uint64_t seqnum, offset, records = 0;
                MappedFile m;

                if (snapshot_name_parse(name, &seqnum) < 0)
                        continue;

                r = mapped_file_open(dir_fd, name, &m);
                if (r < 0)
                        return log_error_errno(r, "Failed to read %s/%s: %m", dir_path, name);
                r = snapshot_read(&m, seqnum, NULL, NULL, &offset, &records);
                if (r == -EPROTONOSUPPORT) {
                        mapped_file_close(&m);
                        return log_error_errno(r, "%s/%s: unsupported snapshot format version (this is version %u).",
                                               dir_path, name, RECORD_FORMAT_VERSION);
                }
                if (r < 0) {
                        mapped_file_close(&m);
                        log_error("%s/%s: damaged at byte offset %" PRIu64 ", trying an older snapshot.", dir_path,
                                  name, offset);
                        continue;
                }
                if (count_cb)
                        count_cb(records, userdata);
                r = snapshot_read(&m, seqnum, cb, userdata, &offset, NULL);
                mapped_file_close(&m);
                if (r < 0)
                        return r;
                log_debug("%s/%s: snapshot of record %" PRIu64 " loaded.", dir_path, name, seqnum);
                *ret_seqnum = seqnum;
                return 0;
        }

        if (n > 0)
                return log_error_errno(EBADMSG, "No complete snapshot in %s.", dir_path);
        *ret_seqnum = 0;
        return 0;
}

int snapshot_load(int dir_fd, const char *dir_path, state_record_cb cb, void *userdata, uint64_t *ret_seqnum) {
        return snapshot_load_counted(dir_fd, dir_path, NULL, cb, userdata, ret_seqnum);
}

int snapshot_remove_older(int dir_fd, const char *dir_path, uint64_t seqnum) {
        _cleanup_strv_free_ char **names = NULL;
        int r;

        r = state_dir_list(dir_fd, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX, &names);
        if (r < 0)
                return log_error_errno(r, "Failed to list the snapshots in %s: %m", dir_path ?: ".");
        for (char **name = names; *name; name++) {
                uint64_t v;

                if (snapshot_name_parse(*name, &v) < 0 || v >= seqnum)
                        continue;
                if (unlinkat(dir_fd, *name, 0) < 0 && errno != ENOENT)
                        return log_error_errno(errno, "Failed to remove %s/%s: %m", dir_path ?: ".", *name);
        }
        return 0;
}
