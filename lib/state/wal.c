/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "log.h"
#include "macro.h"
#include "state-dir.h"
#include "strv.h"
#include "time-util.h"
#include "wal.h"

#define SEGMENT_PREFIX "log-"
#define SEGMENT_SUFFIX ".wal"
#define SEGMENT_SIZE_MAX_DEFAULT (64U << 20)
/* A write buffer past this size is written at once, without waiting for wal_commit(). */
#define WRITE_BUFFER_FLUSH (1U << 20)
/* In the always mode, a segment is zero-filled this far ahead of its records, so that the
 * fdatasync() of most commits writes data blocks only: the file's size and block map
 * changed, and were synced, with the zeros (an append makes every sync commit the file
 * system's journal too; about a third slower on ext4). */
#define PREFILL_CHUNK (1U << 20)

typedef struct Retired {
        int fd;
        bool sync;      /* false: closed without a sync (a failed segment, or the "none" mode) */
        uint64_t size;  /* bytes written to it */
        uint64_t durable; /* bytes known durable */
} Retired;

struct Wal {
        int dir_fd;
        char *dir_path;
        WalSyncMode sync_mode;
        uint64_t sync_interval_usec;
        uint64_t segment_size_max;
        WalIO io;
        int event_fd;

        /* The caller's thread only. */
        int fd;                         /* the current segment */
        char *segment_name;
        uint64_t segment_first;         /* seqnum of its first record */
        uint64_t segment_size;
        uint64_t segment_zeroed;        /* zero-filled up to here (always mode) */
        uint64_t next_seqnum;
        uint64_t written_seqnum;        /* the last seqnum write(2) took */
        uint8_t *buf;
        size_t buf_size, buf_allocated;
        WalStats stats;                 /* but .syncs */

        /* Shared with the sync thread, under lock. */
        pthread_mutex_t lock;
        pthread_cond_t wake;            /* for the thread */
        pthread_cond_t done;            /* for wal_sync() */
        pthread_t thread;
        bool thread_started;
        bool quit;
        int sync_fd;                    /* the current segment, as the thread syncs it */
        uint64_t sync_fd_requested;     /* its bytes written when a sync was last asked for */
        uint64_t sync_fd_durable;       /* its bytes known durable */
        Retired *retired;               /* earlier segments, closed by the thread */
        size_t n_retired, allocated_retired;
        /* The thread's own: the retired segments of the batch it syncs. An array of the
         * Wal's, not of the thread's stack, so that a forked snapshot writer, which has
         * no thread, does not see it as leaked. */
        Retired *batch;
        size_t n_batch, allocated_batch;
        bool dir_dirty;                 /* a segment was created since the last sync */
        bool force;                     /* sync now, even in the interval mode */
        uint64_t requested;             /* sync up to this seqnum */
        uint64_t durable;
        uint64_t syncs;
        uint64_t last_sync_usec;
        int error;                      /* sticky; written under lock, read atomically */
        unsigned failures;              /* how often the log failed */
        bool cut_needed;                /* failed: cut what is not durable from the segments */
        bool cut_done;                  /* ... and that cut is durable */
};

/* The real system calls. */

static ssize_t io_write_default(int fd, const void *buf, size_t size, void *userdata) {
        ssize_t n = write(fd, buf, size);
        return n < 0 ? -errno : n;
}

static int io_fdatasync_default(int fd, void *userdata) {
        return fdatasync(fd) < 0 ? -errno : 0;
}

static int io_fsync_dir_default(int dir_fd, void *userdata) {
        return state_dir_fsync(dir_fd);
}

static int io_truncate_default(int fd, uint64_t size, void *userdata) {
        return ftruncate(fd, (off_t) size) < 0 || fsync(fd) < 0 ? -errno : 0;
}

int wal_sync_mode_from_string(const char *s, WalSyncMode *ret_mode, uint64_t *ret_interval_usec) {
        const char *ms;
        uint64_t v;
        char *end;

        assert(s);

        if (streq(s, "always") || streq(s, "none")) {
                *ret_mode = streq(s, "always") ? WAL_SYNC_ALWAYS : WAL_SYNC_NONE;
                if (ret_interval_usec)
                        *ret_interval_usec = 0;
                return 0;
        }
        if (strncmp(s, "interval:", 9) != 0)
                return -EINVAL;
        ms = s + 9;
        if (*ms < '0' || *ms > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(ms, &end, 10);
        if (errno != 0 || *end != '\0' || v == 0 || v > UINT64_MAX / USEC_PER_MSEC)
                return -EINVAL;
        *ret_mode = WAL_SYNC_INTERVAL;
        if (ret_interval_usec)
                *ret_interval_usec = v * USEC_PER_MSEC;
        return 0;
}

const char *wal_sync_mode_to_string(WalSyncMode mode) {
        switch (mode) {
        case WAL_SYNC_ALWAYS:
                return "always";
        case WAL_SYNC_INTERVAL:
                return "interval";
        case WAL_SYNC_NONE:
                return "none";
        }
        return NULL;
}

/* Segment files */

typedef struct Segment {
        char *name;
        uint64_t first;
} Segment;

static void segments_free(Segment *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(s[i].name);
        free(s);
}

static char *segment_name(uint64_t first) {
        char *s;

        if (asprintf(&s, SEGMENT_PREFIX "%016" PRIx64 SEGMENT_SUFFIX, first) < 0)
                return NULL;
        return s;
}

static int segment_name_parse(const char *name, uint64_t *ret) {
        const char *hex = name + strlen(SEGMENT_PREFIX);
        uint64_t v = 0;

        if (strlen(name) != strlen(SEGMENT_PREFIX) + 16 + strlen(SEGMENT_SUFFIX))
                return -EINVAL;
        for (size_t i = 0; i < 16; i++) {
                char c = hex[i];
                unsigned d;

                if (c >= '0' && c <= '9')
                        d = (unsigned) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        d = (unsigned) (c - 'a' + 10);
                else
                        return -EINVAL;
                v = v << 4 | d;
        }
        *ret = v;
        return 0;
}

/* The segments in dir_fd by their first seqnum; names sort as their numbers do. */
static int segments_list(int dir_fd, Segment **ret, size_t *ret_n) {
        _cleanup_strv_free_ char **names = NULL;
        Segment *s;
        size_t n = 0;
        int r;

        r = state_dir_list(dir_fd, SEGMENT_PREFIX, SEGMENT_SUFFIX, &names);
        if (r < 0)
                return r;
        s = calloc(strv_length(names) + 1, sizeof(Segment));
        if (!s)
                return -ENOMEM;
        for (char **name = names; *name; name++) {
                uint64_t first;

                if (segment_name_parse(*name, &first) < 0) {
                        log_debug("Ignoring %s, not a log segment name.", *name);
                        continue;
                }
                s[n].name = strdup(*name);
                if (!s[n].name) {
                        segments_free(s, n);
                        return -ENOMEM;
                }
                s[n++].first = first;
        }
        *ret = s;
        *ret_n = n;
        return 0;
}

/* Replay, check, repair */

typedef enum ScanMode {
        SCAN_CHECK,
        SCAN_OPEN,
        SCAN_REPAIR,
} ScanMode;

typedef struct Scan {
        int dir_fd;
        const char *dir_path;
        uint64_t after;
        Segment *segments;
        size_t n_segments;
        size_t start;           /* the first segment not covered by the snapshot */

        uint64_t expected;      /* the seqnum of the next record */
        uint64_t records;
        uint64_t last_seqnum;

        bool damaged;
        bool torn;
        size_t damage_segment;
        uint64_t damage_offset;
        char damage_why[128];
} Scan;

static bool find_valid_record(const MappedFile *m, uint64_t from, uint64_t min_seqnum) {
        for (uint64_t o = from; o + RECORD_HEADER_SIZE <= m->size; o++)
                if (record_parse(m->data + o, m->size - o, min_seqnum, NULL) >= 0)
                        return true;
        return false;
}

/* Whether a valid record follows the damage: then it is damage, else a torn tail. */
static int valid_record_after(Scan *s, const MappedFile *m) {
        if (find_valid_record(m, s->damage_offset + 1, s->expected))
                return true;

        for (size_t j = s->damage_segment + 1; j < s->n_segments; j++) {
                MappedFile later;
                bool found;
                int r;

                r = mapped_file_open(s->dir_fd, s->segments[j].name, &later);
                if (r < 0)
                        return log_error_errno(r, "Failed to read %s/%s: %m", s->dir_path, s->segments[j].name);
                found = find_valid_record(&later, 0, s->expected);
                mapped_file_close(&later);
                if (found)
                        return true;
        }
        return false;
}

_printf_(4, 5) static void scan_damage(Scan *s, size_t segment, uint64_t offset, const char *format, ...) {
        va_list ap;

        s->damaged = true;
        s->damage_segment = segment;
        s->damage_offset = offset;
        va_start(ap, format);
        vsnprintf(s->damage_why, sizeof(s->damage_why), format, ap);
        va_end(ap);
}

static int segment_fdatasync(int dir_fd, const char *name) {
        _cleanup_close_ int fd = -EBADF;

        fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fdatasync(fd) < 0)
                return -errno;
        return 0;
}

/* Checks a segment's header against the segments before it, and moves s->expected to
 * the first record it announces. A header of another format version is an error (logged),
 * any other fault damage. */
static int scan_segment_header(Scan *s, size_t i, const MappedFile *m) {
        const Segment *seg = &s->segments[i];
        uint64_t position = 0; /* stays 0 in a bad header: s->expected holds */
        int r;

        r = record_file_header_parse(m->data, m->size, RECORD_MAGIC_WAL, &position);
        if (r == -EPROTONOSUPPORT)
                return log_error_errno(r, "%s/%s: unsupported log format version (this is version %u).",
                                       s->dir_path, seg->name, RECORD_FORMAT_VERSION);
        if (r < 0 || position != seg->first)
                scan_damage(s, i, 0, "bad segment header");
        else if (i > s->start && position != s->expected)
                scan_damage(s, i, 0, "segment starts at record %" PRIu64 ", expected %" PRIu64, position,
                            s->expected);
        else if (position > s->expected)
                scan_damage(s, i, 0, "records %" PRIu64 " to %" PRIu64 " are missing", s->expected,
                            position - 1);

        /* A segment past a gap does not move the numbering: if no valid record follows,
         * it is a torn tail, and the log goes on where its records end. */
        if (!s->damaged)
                s->expected = MAX(s->expected, position);
        return 0;
}

static bool all_zero(const uint8_t *p, size_t size) {
        return size == 0 || (p[0] == 0 && memcmp(p, p + 1, size - 1) == 0);
}

/* Reads a segment's records in order, delivering those above s->after to cb, until its
 * end or its first damage. */
static int scan_records(Scan *s, size_t i, const MappedFile *m, state_record_cb cb, void *userdata) {
        for (uint64_t offset = RECORD_FILE_HEADER_SIZE; !s->damaged && offset < m->size;) {
                Record rec;
                int64_t n;
                int r;

                n = record_parse(m->data + offset, m->size - offset, 0, &rec);
                if (n < 0 && all_zero(m->data + offset, m->size - offset))
                        break; /* the zero-filled space ahead of the records: their end */
                if (n < 0) {
                        scan_damage(s, i, offset, "incomplete record or checksum mismatch");
                        break;
                }
                if (rec.seqnum != s->expected) {
                        scan_damage(s, i, offset, "record %" PRIu64 " where %" PRIu64 " was expected",
                                    rec.seqnum, s->expected);
                        break;
                }
                if (rec.type >= RECORD_TYPE_RESERVED) {
                        scan_damage(s, i, offset, "reserved record type 0x%" PRIx32, rec.type);
                        break;
                }

                if (cb && rec.seqnum > s->after) {
                        r = cb(rec.seqnum, rec.type, rec.payload, rec.size, userdata);
                        if (r < 0)
                                return r;
                }
                s->records++;
                s->last_seqnum = rec.seqnum;
                s->expected++;
                offset += (uint64_t) n;
        }
        return 0;
}

/* Reads one segment, delivering its records above s->after to cb, until its end or its
 * first damage. */
static int scan_segment(Scan *s, size_t i, ScanMode mode, state_record_cb cb, void *userdata) {
        const Segment *seg = &s->segments[i];
        MappedFile m;
        int r;

        r = mapped_file_open(s->dir_fd, seg->name, &m);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s/%s: %m", s->dir_path, seg->name);

        r = scan_segment_header(s, i, &m);
        if (r >= 0)
                r = scan_records(s, i, &m, cb, userdata);
        if (r >= 0 && s->damaged) {
                r = valid_record_after(s, &m);
                if (r >= 0)
                        s->torn = !r;
        }
        mapped_file_close(&m);
        if (r < 0)
                return r;
        if (s->damaged)
                return 0;

        /* What a crashed process wrote may still be only in the page cache: it becomes
         * durable before anything is built on it. */
        if (mode == SCAN_OPEN) {
                r = segment_fdatasync(s->dir_fd, seg->name);
                if (r < 0)
                        return log_error_errno(r, "Failed to sync %s/%s: %m", s->dir_path, seg->name);
        }
        return 0;
}

/* Cuts a torn tail at open: no valid record follows, so nothing that was reported
 * durable is lost. */
static int scan_truncate_torn(Scan *s) {
        const char *name = s->segments[s->damage_segment].name;
        int r;

        if (s->damage_offset < RECORD_FILE_HEADER_SIZE) {
                log_warning("%s/%s: %s, and no valid record follows (a crash while the segment was created, "
                            "or a cut after a failed sync), removing it.",
                            s->dir_path, name, s->damage_why);
                if (unlinkat(s->dir_fd, name, 0) < 0)
                        return log_error_errno(errno, "Failed to remove %s/%s: %m", s->dir_path, name);
        } else {
                _cleanup_close_ int fd = -EBADF;
                struct stat st;

                fd = openat(s->dir_fd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0 || fstat(fd, &st) < 0)
                        return log_error_errno(errno, "Failed to open %s/%s: %m", s->dir_path, name);
                log_warning("%s/%s: torn record at byte offset %" PRIu64 " (%s; a crash during a write), "
                            "truncating %" PRIu64 " bytes. %" PRIu64 " records are kept.",
                            s->dir_path, name, s->damage_offset, s->damage_why,
                            (uint64_t) st.st_size - s->damage_offset, s->records);
                if (ftruncate(fd, (off_t) s->damage_offset) < 0 || fdatasync(fd) < 0)
                        return log_error_errno(errno, "Failed to truncate %s/%s: %m", s->dir_path, name);
        }

        for (size_t j = s->damage_segment + 1; j < s->n_segments; j++) {
                log_warning("%s/%s: no valid record after the torn tail, removing it.", s->dir_path,
                            s->segments[j].name);
                if (unlinkat(s->dir_fd, s->segments[j].name, 0) < 0)
                        return log_error_errno(errno, "Failed to remove %s/%s: %m", s->dir_path,
                                               s->segments[j].name);
        }

        r = state_dir_fsync(s->dir_fd);
        if (r < 0)
                return log_error_errno(r, "Failed to sync %s: %m", s->dir_path);
        return 0;
}

/* Copies the bytes from offset to the end of name into "<name>.cut-<offset>". */
static int save_cut(int dir_fd, const char *name, uint64_t offset, char **ret_cut_name) {
        _cleanup_free_ char *cut = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        MappedFile m;
        const uint8_t *p;
        size_t left;
        int r;

        if (asprintf(&cut, "%s.cut-%" PRIu64, name, offset) < 0)
                return -ENOMEM;
        tmp = state_tmp_name(cut);
        if (!tmp)
                return -ENOMEM;

        r = mapped_file_open(dir_fd, name, &m);
        if (r < 0)
                return r;
        (void) unlinkat(dir_fd, tmp, 0);
        fd = state_file_create(dir_fd, tmp);
        if (fd < 0) {
                mapped_file_close(&m);
                return fd;
        }
        p = m.data + MIN(offset, (uint64_t) m.size);
        left = m.size - MIN(offset, (uint64_t) m.size);
        while (left > 0) {
                ssize_t n = write(fd, p, left);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? -errno : -EIO;
                        mapped_file_close(&m);
                        (void) unlinkat(dir_fd, tmp, 0);
                        return r;
                }
                p += n;
                left -= (size_t) n;
        }
        mapped_file_close(&m);
        if (fsync(fd) < 0) {
                r = -errno;
                (void) unlinkat(dir_fd, tmp, 0);
                return r;
        }
        r = state_file_commit(dir_fd, tmp, cut, false);
        if (r < 0)
                return r;
        *ret_cut_name = TAKE_PTR(cut);
        return 0;
}

static int scan_repair(Scan *s, WalCheckReport *report) {
        const char *name = s->segments[s->damage_segment].name;
        int r;

        r = save_cut(s->dir_fd, name, s->damage_offset, &report->cut_file);
        if (r < 0)
                return log_error_errno(r, "Failed to save the damaged part of %s/%s: %m", s->dir_path, name);

        if (s->damage_offset < RECORD_FILE_HEADER_SIZE) {
                if (unlinkat(s->dir_fd, name, 0) < 0)
                        return log_error_errno(errno, "Failed to remove %s/%s: %m", s->dir_path, name);
        } else {
                _cleanup_close_ int fd = -EBADF;

                fd = openat(s->dir_fd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0 || ftruncate(fd, (off_t) s->damage_offset) < 0 || fdatasync(fd) < 0)
                        return log_error_errno(errno, "Failed to truncate %s/%s: %m", s->dir_path, name);
        }
        log_notice("%s/%s: cut at byte offset %" PRIu64 ", the cut bytes are in %s.", s->dir_path, name,
                   s->damage_offset, report->cut_file);

        /* Later segments are behind a gap now: set them aside, whole. */
        for (size_t j = s->damage_segment + 1; j < s->n_segments; j++) {
                _cleanup_free_ char *aside = NULL;

                if (asprintf(&aside, "%s.cut-0", s->segments[j].name) < 0)
                        return -ENOMEM;
                if (renameat(s->dir_fd, s->segments[j].name, s->dir_fd, aside) < 0)
                        return log_error_errno(errno, "Failed to rename %s/%s: %m", s->dir_path,
                                               s->segments[j].name);
                log_notice("%s/%s: after the cut, renamed to %s.", s->dir_path, s->segments[j].name, aside);
        }

        r = state_dir_fsync(s->dir_fd);
        if (r < 0)
                return log_error_errno(r, "Failed to sync %s: %m", s->dir_path);
        return 0;
}

static int scan(int dir_fd, const char *dir_path, uint64_t after, ScanMode mode, state_record_cb cb, void *userdata,
                WalCheckReport *report, uint64_t *ret_next) {
        Scan s = {
                .dir_fd = dir_fd,
                .dir_path = dir_path ?: ".",
                .after = after,
        };
        int r;

        r = segments_list(dir_fd, &s.segments, &s.n_segments);
        if (r < 0) {
                log_error_errno(r, "Failed to list the log segments in %s: %m", s.dir_path);
                goto finish;
        }

        /* Segments whose every record the snapshot covers: those followed by a segment
         * starting at most one past it. A crash after a snapshot left them. */
        while (s.start + 1 < s.n_segments && s.segments[s.start + 1].first <= after + 1) {
                if (mode == SCAN_OPEN) {
                        log_info("%s/%s: covered by the snapshot of record %" PRIu64 ", removing it.", s.dir_path,
                                 s.segments[s.start].name, after);
                        if (unlinkat(dir_fd, s.segments[s.start].name, 0) < 0 && errno != ENOENT) {
                                r = log_error_errno(errno, "Failed to remove %s/%s: %m", s.dir_path,
                                                    s.segments[s.start].name);
                                goto finish;
                        }
                }
                s.start++;
        }

        s.expected = after + 1;
        if (s.start < s.n_segments)
                s.expected = MIN(s.expected, s.segments[s.start].first);

        for (size_t i = s.start; i < s.n_segments && !s.damaged; i++) {
                r = scan_segment(&s, i, mode, cb, userdata);
                if (r < 0)
                        goto finish;
        }

        if (report) {
                *report = (WalCheckReport) {
                        .records = s.records,
                        .last_seqnum = s.last_seqnum,
                        .torn = s.damaged && s.torn,
                        .offset = s.damaged ? s.damage_offset : 0,
                };
                if (s.damaged) {
                        report->file = strdup(s.segments[s.damage_segment].name);
                        if (!report->file) {
                                r = -ENOMEM;
                                goto finish;
                        }
                }
        }

        r = 0;
        if (s.damaged && (mode == SCAN_REPAIR || !s.torn)) {
                if (mode == SCAN_REPAIR) {
                        r = scan_repair(&s, report);
                        goto finish;
                }
                r = log_full_errno(mode == SCAN_OPEN ? LOG_ERR : LOG_DEBUG, EBADMSG,
                                   "%s/%s: damaged at byte offset %" PRIu64 " (%s), and valid records follow; "
                                   "%" PRIu64 " valid records before it. Refusing to replay the log: "
                                   "a repair cuts it at the damage, keeping the cut bytes.",
                                   s.dir_path, s.segments[s.damage_segment].name, s.damage_offset, s.damage_why,
                                   s.records);
                goto finish;
        }
        if (s.damaged && mode == SCAN_OPEN) {
                r = scan_truncate_torn(&s);
                if (r < 0)
                        goto finish;
        }

        if (ret_next)
                *ret_next = MAX(s.expected, after + 1);

finish:
        segments_free(s.segments, s.n_segments);
        return r;
}

void wal_check_report_done(WalCheckReport *r) {
        r->file = mfree(r->file);
        r->cut_file = mfree(r->cut_file);
}

int wal_check(int dir_fd, const char *dir_path, uint64_t after_seqnum, WalCheckReport *ret) {
        assert(ret);
        return scan(dir_fd, dir_path, after_seqnum, SCAN_CHECK, NULL, NULL, ret, NULL);
}

int wal_repair(int dir_fd, const char *dir_path, uint64_t after_seqnum, WalCheckReport *ret) {
        assert(ret);
        return scan(dir_fd, dir_path, after_seqnum, SCAN_REPAIR, NULL, NULL, ret, NULL);
}

/* The sync thread */

static void notify(Wal *w) {
        uint64_t one = 1;

        /* Only EAGAIN is possible, when the counter is full: the reader is awake anyway. */
        (void) !write(w->event_fd, &one, sizeof(one));
}

/* Under lock. The log failed: from now on appends are refused and nothing is synced. */
static void fail_locked(Wal *w, int error) {
        if (w->error < 0)
                return;
        __atomic_store_n(&w->error, error, __ATOMIC_RELEASE);
        w->failures++;
        /* Only "always" answers records by their durability: in the other modes the records
         * not yet durable were acknowledged, and are better kept than cut. */
        w->cut_needed = w->sync_mode == WAL_SYNC_ALWAYS;
        w->cut_done = false;
}

/* Under lock: waits while there is nothing to sync yet; returns whether it waited, and
 * the caller looks again. */
static bool sync_thread_wait(Wal *w) {
        if (w->error < 0 && w->n_retired == 0 && !w->cut_needed) {
                pthread_cond_wait(&w->wake, &w->lock);
                return true;
        }
        /* Woken for retired segments too in the "none" mode, which only closes them. */
        if (w->error == 0 && w->requested <= w->durable &&
            (w->n_retired == 0 || w->sync_mode != WAL_SYNC_NONE)) {
                pthread_cond_wait(&w->wake, &w->lock);
                return true;
        }
        if (w->error == 0 && w->sync_mode == WAL_SYNC_INTERVAL && !w->force) {
                uint64_t deadline = usec_add(w->last_sync_usec, w->sync_interval_usec), now = now_usec();

                if (now < deadline) {
                        struct timespec ts = {
                                .tv_sec = (time_t) (deadline / USEC_PER_SEC),
                                .tv_nsec = (long) (deadline % USEC_PER_SEC * NSEC_PER_USEC),
                        };
                        pthread_cond_timedwait(&w->wake, &w->lock, &ts);
                        return true;
                }
        }
        return false;
}

static void retired_close(Retired *retired, size_t *n) {
        for (size_t i = 0; i < *n; i++)
                close(retired[i].fd);
        *n = 0;
}

/* Under lock: hands retired segments back to the thread's list. */
static int retired_add(Wal *w, const Retired *retired, size_t n) {
        if (w->n_retired + n > w->allocated_retired) {
                size_t a = MAX(MAX(w->allocated_retired * 2, w->n_retired + n), (size_t) 4);
                Retired *p = realloc(w->retired, a * sizeof(Retired));
                if (!p)
                        return -ENOMEM;
                w->retired = p;
                w->allocated_retired = a;
        }
        memcpy(w->retired + w->n_retired, retired, n * sizeof(Retired));
        w->n_retired += n;
        return 0;
}

/* Under lock: the retired segments become the thread's batch. */
static void batch_take(Wal *w) {
        Retired *p = w->batch;
        size_t a = w->allocated_batch;

        assert(w->n_batch == 0);
        w->batch = w->retired;
        w->n_batch = w->n_retired;
        w->allocated_batch = w->allocated_retired;
        w->retired = p;
        w->n_retired = 0;
        w->allocated_retired = a;
}

/* Outside the lock: syncs the batch's retired segments, then the current one and, when a
 * segment was created, the directory. */
static int sync_batch(Wal *w, int fd, bool dir) {
        int r = 0;

        for (size_t i = 0; i < w->n_batch && r == 0; i++)
                if (w->batch[i].sync) {
                        r = w->io.fdatasync(w->batch[i].fd, w->io.userdata);
                        if (r == 0)
                                w->batch[i].durable = w->batch[i].size;
                }
        if (r == 0)
                r = w->io.fdatasync(fd, w->io.userdata);
        if (r == 0 && dir)
                r = w->io.fsync_dir(w->dir_fd, w->io.userdata);
        return r;
}

/* Under lock: what a sync of fd up to size and of records up to target came to. */
static void sync_thread_done(Wal *w, uint64_t target, int fd, uint64_t size, int r) {
        w->syncs++;
        w->last_sync_usec = now_usec();
        if (r < 0) {
                fail_locked(w, r);
                log_error_errno(r, "Failed to sync the log in %s: %m. It refuses appends until a "
                                "snapshot is written.", w->dir_path);
        } else {
                w->durable = MAX(w->durable, target);
                /* The segment may have been retired meanwhile. */
                if (fd == w->sync_fd)
                        w->sync_fd_durable = MAX(w->sync_fd_durable, size);
                for (size_t i = 0; i < w->n_retired; i++)
                        if (w->retired[i].fd == fd)
                                w->retired[i].durable = MAX(w->retired[i].durable, size);
        }
        pthread_cond_broadcast(&w->done);
        notify(w);
}

/* Outside the lock. The log failed where a record is answered only once durable: cuts
 * every segment back to its durable bytes, durably, so that the records the caller
 * answers as not written can never come back in a replay after a crash. */
static int cut_undurable(Wal *w, int fd, uint64_t durable) {
        int r = 0;

        for (size_t i = 0; i < w->n_batch && r == 0; i++)
                if (w->batch[i].durable < w->batch[i].size)
                        r = w->io.truncate(w->batch[i].fd, w->batch[i].durable, w->io.userdata);
        /* The current segment's size is not known here: a failed write may have left a
         * part of a record past the last one counted. */
        if (r == 0)
                r = w->io.truncate(fd, durable, w->io.userdata);
        return r;
}

/* Under lock, on a failed log: cuts it (once), closes the batch's segments. */
static void sync_thread_failed(Wal *w) {
        unsigned failures = w->failures;
        uint64_t durable = w->sync_fd_durable;
        bool cut = w->cut_needed;
        int fd = w->sync_fd, r = 0;

        w->cut_needed = false;
        pthread_mutex_unlock(&w->lock);
        if (cut)
                r = cut_undurable(w, fd, durable);
        retired_close(w->batch, &w->n_batch);
        pthread_mutex_lock(&w->lock);
        if (!cut)
                return;
        if (r < 0)
                log_error_errno(r, "Failed to cut the records that are not durable from the log in %s: %m. "
                                "Only a snapshot settles them.", w->dir_path);
        else if (failures == w->failures && w->error < 0) {
                w->cut_done = true;
                notify(w);
        }
}

/* Under lock: one round of the thread. */
static void sync_thread_round(Wal *w) {
        uint64_t target, size;
        bool dir, lost;
        int fd, r;

        /* Take the whole batch: everything written up to now. */
        batch_take(w);
        if (w->error < 0) {
                /* A failed log syncs nothing more; its segments are only closed. */
                sync_thread_failed(w);
                return;
        }
        if (w->requested <= w->durable) {
                /* The "none" mode: nothing to sync, segments to close. */
                pthread_mutex_unlock(&w->lock);
                retired_close(w->batch, &w->n_batch);
                pthread_mutex_lock(&w->lock);
                return;
        }
        target = w->requested;
        fd = w->sync_fd;
        size = w->sync_fd_requested;
        dir = w->dir_dirty;
        w->dir_dirty = false;
        w->force = false;
        pthread_mutex_unlock(&w->lock);

        r = sync_batch(w, fd, dir);
        if (r == 0)
                retired_close(w->batch, &w->n_batch);

        pthread_mutex_lock(&w->lock);
        /* A failed batch's segments stay for the cut (without memory for that, the cut
         * fails: the segments are closed, and only a snapshot settles them). */
        lost = w->n_batch > 0 && retired_add(w, w->batch, w->n_batch) < 0;
        if (lost)
                retired_close(w->batch, &w->n_batch);
        w->n_batch = 0;
        sync_thread_done(w, target, fd, size, r);
        if (lost)
                w->cut_needed = false;
}

static void *sync_thread(void *userdata) {
        Wal *w = userdata;

        pthread_mutex_lock(&w->lock);
        while (!w->quit)
                if (!sync_thread_wait(w))
                        sync_thread_round(w);
        retired_close(w->retired, &w->n_retired);
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

/* Under lock. */
static int retire_fd(Wal *w, int fd, bool sync, uint64_t size) {
        return retired_add(w, &(const Retired) { .fd = fd, .sync = sync, .size = size, .durable = w->sync_fd_durable },
                           1);
}

/* Writing */

/* Fails the log; what names the failed operation for the message (NULL: logged already). */
static int wal_fail(Wal *w, int error, const char *what) {
        pthread_mutex_lock(&w->lock);
        fail_locked(w, error);
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
        notify(w);
        if (!what)
                return -abs(error);
        return log_error_errno(error, "Failed to %s %s/%s: %m. The log refuses appends until a snapshot is written.",
                               what, w->dir_path, w->segment_name ?: "");
}

static int write_all(Wal *w, int fd, const uint8_t *p, size_t size) {
        while (size > 0) {
                ssize_t n = w->io.write(fd, p, size, w->io.userdata);
                if (n == -EINTR)
                        continue;
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        return -EIO;
                w->stats.writes++;
                p += n;
                size -= (size_t) n;
        }
        return 0;
}

/* Creates the segment of the record first and makes it current. The old one goes to the
 * sync thread: synced with the next batch, or only closed (sync_old false). */
static int segment_start(Wal *w, uint64_t first, bool sync_old) {
        _cleanup_free_ char *name = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        uint8_t header[RECORD_FILE_HEADER_SIZE];
        int r;

        name = segment_name(first);
        if (!name)
                return -ENOMEM;
        tmp = state_tmp_name(name);
        if (!tmp)
                return -ENOMEM;

        (void) unlinkat(w->dir_fd, tmp, 0);
        fd = state_file_create(w->dir_fd, tmp);
        if (fd < 0)
                return log_error_errno(fd, "Failed to create %s/%s: %m", w->dir_path, tmp);
        record_file_header_encode(header, RECORD_MAGIC_WAL, first);
        r = write_all(w, fd, header, sizeof(header));
        if (r < 0) {
                (void) unlinkat(w->dir_fd, tmp, 0);
                return log_error_errno(r, "Failed to write %s/%s: %m", w->dir_path, tmp);
        }
        /* No sync here: the thread syncs the file and the directory before it reports
         * anything in the segment durable. An empty segment a crash loses is no loss. */
        r = state_file_commit(w->dir_fd, tmp, name, false);
        if (r < 0) {
                (void) unlinkat(w->dir_fd, tmp, 0);
                return log_error_errno(r, "Failed to rename %s/%s: %m", w->dir_path, tmp);
        }

        pthread_mutex_lock(&w->lock);
        if (w->fd >= 0) {
                r = retire_fd(w, w->fd, sync_old && w->sync_mode != WAL_SYNC_NONE, w->segment_size);
                if (r < 0) {
                        pthread_mutex_unlock(&w->lock);
                        return r;
                }
        }
        w->sync_fd = fd;
        w->sync_fd_requested = w->sync_fd_durable = RECORD_FILE_HEADER_SIZE;
        w->dir_dirty = true;
        /* The "none" mode's thread closes the old segment. */
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);

        w->fd = TAKE_FD(fd);
        free(w->segment_name);
        w->segment_name = TAKE_PTR(name);
        w->segment_first = first;
        w->segment_size = w->segment_zeroed = RECORD_FILE_HEADER_SIZE;
        w->stats.segments++;
        log_debug("%s/%s: new log segment.", w->dir_path, w->segment_name);
        return 0;
}

/* Keeps zeros a chunk ahead of the records about to be written. Best effort: where it
 * fails (a full disk, say), the records are appended as they would be without it. */
static void segment_prefill(Wal *w, uint64_t end) {
        static const uint8_t zeros[64 * 1024];
        uint64_t target;

        if (w->sync_mode != WAL_SYNC_ALWAYS || end + PREFILL_CHUNK / 2 <= w->segment_zeroed)
                return;
        target = MIN(MAX(end, w->segment_zeroed) + PREFILL_CHUNK, w->segment_size_max + PREFILL_CHUNK);
        while (w->segment_zeroed < target) {
                size_t n = (size_t) MIN(sizeof(zeros), target - w->segment_zeroed);
                ssize_t k = pwrite(w->fd, zeros, n, (off_t) w->segment_zeroed);

                if (k <= 0)
                        return;
                w->segment_zeroed += (uint64_t) k;
        }
}

static int wal_flush(Wal *w) {
        int r;

        r = wal_error(w);
        if (r < 0)
                return r;
        if (w->buf_size == 0)
                return 0;

        segment_prefill(w, w->segment_size + w->buf_size);
        r = write_all(w, w->fd, w->buf, w->buf_size);
        if (r < 0)
                return wal_fail(w, r, "write to");
        w->segment_size += w->buf_size;
        w->stats.bytes += w->buf_size;
        w->buf_size = 0;
        w->written_seqnum = w->next_seqnum - 1;

        if (w->segment_size >= w->segment_size_max) {
                r = segment_start(w, w->next_seqnum, true);
                if (r < 0)
                        return wal_fail(w, r, NULL);
        }
        return 0;
}

int wal_appendv(Wal *w, uint32_t type, const struct iovec *iov, size_t n, uint64_t *ret_seqnum) {
        size_t size = 0, need;
        uint8_t *p;
        int r;

        assert(w);
        assert(type < RECORD_TYPE_RESERVED);
        assert(iov || n == 0);

        r = wal_error(w);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                assert(iov[i].iov_base || iov[i].iov_len == 0);
                if (iov[i].iov_len > RECORD_PAYLOAD_MAX - size)
                        return -EMSGSIZE;
                size += iov[i].iov_len;
        }

        need = w->buf_size + RECORD_HEADER_SIZE + size;
        if (need > w->buf_allocated) {
                size_t a = MAX(need, w->buf_allocated * 2);
                uint8_t *b = realloc(w->buf, a);
                if (!b)
                        return -ENOMEM;
                w->buf = b;
                w->buf_allocated = a;
        }
        /* The pieces go straight into the write buffer, and the checksum is one pass over
         * the record where it lies. */
        p = w->buf + w->buf_size + RECORD_HEADER_SIZE;
        for (size_t i = 0; i < n; i++)
                if (iov[i].iov_len > 0)
                        p = mempcpy(p, iov[i].iov_base, iov[i].iov_len);
        record_seal(w->buf + w->buf_size, w->next_seqnum, type, (uint32_t) size);
        w->buf_size = need;
        w->stats.appends++;
        if (ret_seqnum)
                *ret_seqnum = w->next_seqnum;
        w->next_seqnum++;

        /* A failed write fails the log, which wal_commit() and wal_process() report: the
         * record was appended all the same, and is never durable. */
        if (w->buf_size >= WRITE_BUFFER_FLUSH)
                (void) wal_flush(w);
        return 0;
}

int wal_append(Wal *w, uint32_t type, const void *payload, size_t size, uint64_t *ret_seqnum) {
        assert(payload || size == 0);

        return wal_appendv(w, type, &(const struct iovec) { .iov_base = (void *) payload, .iov_len = size }, 1,
                           ret_seqnum);
}

static int request(Wal *w, bool force) {
        int r;

        r = wal_flush(w);
        if (r < 0)
                return r;
        if (!force && w->sync_mode == WAL_SYNC_NONE)
                return 0;

        pthread_mutex_lock(&w->lock);
        if (w->written_seqnum > w->requested || (force && w->written_seqnum > w->durable)) {
                /* The thread waits for work only while everything requested is durable;
                 * otherwise it is syncing or waits for the interval's end, and takes the
                 * new request then. Waking it for each commit cost a futex() and two
                 * context switches per event loop iteration in the interval mode. */
                bool idle = w->requested <= w->durable;

                w->requested = MAX(w->requested, w->written_seqnum);
                w->sync_fd_requested = w->segment_size;
                w->force = w->force || force;
                if (idle || force)
                        pthread_cond_signal(&w->wake);
        }
        pthread_mutex_unlock(&w->lock);
        return 0;
}

int wal_commit(Wal *w) {
        assert(w);
        return request(w, false);
}

int wal_request_sync(Wal *w) {
        assert(w);
        return request(w, true);
}

int wal_sync(Wal *w) {
        uint64_t target;
        int r;

        assert(w);

        r = request(w, true);
        if (r < 0)
                return r;
        target = w->written_seqnum;

        pthread_mutex_lock(&w->lock);
        while (w->error == 0 && w->durable < target)
                pthread_cond_wait(&w->done, &w->lock);
        r = w->error;
        pthread_mutex_unlock(&w->lock);
        return r;
}

int wal_get_event_fd(Wal *w) {
        assert(w);
        return w->event_fd;
}

int wal_process(Wal *w, uint64_t *ret_durable) {
        uint64_t counter;
        int r;

        assert(w);

        (void) !read(w->event_fd, &counter, sizeof(counter));
        pthread_mutex_lock(&w->lock);
        if (ret_durable)
                *ret_durable = w->durable;
        r = w->error;
        pthread_mutex_unlock(&w->lock);
        return r;
}

uint64_t wal_last_seqnum(Wal *w) {
        assert(w);
        return w->next_seqnum - 1;
}

uint64_t wal_durable_seqnum(Wal *w) {
        uint64_t d;

        assert(w);
        pthread_mutex_lock(&w->lock);
        d = w->durable;
        pthread_mutex_unlock(&w->lock);
        return d;
}

int wal_error(Wal *w) {
        assert(w);
        return __atomic_load_n(&w->error, __ATOMIC_ACQUIRE);
}

bool wal_undurable_cut(Wal *w) {
        bool done;

        assert(w);
        pthread_mutex_lock(&w->lock);
        done = w->error < 0 && w->cut_done;
        pthread_mutex_unlock(&w->lock);
        return done;
}

void wal_get_stats(Wal *w, WalStats *ret) {
        assert(w);
        assert(ret);

        *ret = w->stats;
        pthread_mutex_lock(&w->lock);
        ret->syncs = w->syncs;
        pthread_mutex_unlock(&w->lock);
}

int wal_rotate(Wal *w) {
        int r;

        assert(w);

        r = wal_flush(w);
        if (r < 0)
                return r;
        if (w->segment_first == w->next_seqnum)
                return 0;
        r = segment_start(w, w->next_seqnum, true);
        if (r < 0)
                return wal_fail(w, r, NULL);
        return 0;
}

static int remove_covered(Wal *w, uint64_t seqnum) {
        Segment *segments;
        size_t n;
        int r;

        r = segments_list(w->dir_fd, &segments, &n);
        if (r < 0)
                return log_error_errno(r, "Failed to list the log segments in %s: %m", w->dir_path);
        for (size_t i = 0; i + 1 < n; i++) {
                if (segments[i + 1].first > seqnum + 1 || segments[i].first >= w->segment_first)
                        break;
                if (unlinkat(w->dir_fd, segments[i].name, 0) < 0 && errno != ENOENT) {
                        r = log_error_errno(errno, "Failed to remove %s/%s: %m", w->dir_path, segments[i].name);
                        break;
                }
                log_debug("%s/%s: covered by the snapshot of record %" PRIu64 ", removed.", w->dir_path,
                          segments[i].name, seqnum);
        }
        segments_free(segments, n);
        /* No directory sync: a segment that comes back after a crash is covered and removed
         * again at the next open. */
        return r;
}

int wal_rotate_after_snapshot(Wal *w, uint64_t seqnum) {
        int r;

        assert(w);

        if (wal_error(w) < 0) {
                if (seqnum < wal_last_seqnum(w))
                        return -ESTALE;

                /* What the buffer held is in the snapshot. The failed segment is closed
                 * without another fsync(): its pages may be lost, and the snapshot has them. */
                w->buf_size = 0;
                pthread_mutex_lock(&w->lock);
                for (size_t i = 0; i < w->n_retired; i++)
                        w->retired[i].sync = false;
                pthread_mutex_unlock(&w->lock);
                r = segment_start(w, w->next_seqnum, false);
                if (r < 0)
                        return r;

                pthread_mutex_lock(&w->lock);
                __atomic_store_n(&w->error, 0, __ATOMIC_RELEASE);
                w->cut_needed = w->cut_done = false;
                w->written_seqnum = w->next_seqnum - 1;
                w->requested = MAX(w->requested, seqnum);
                w->durable = MAX(w->durable, seqnum);
                pthread_mutex_unlock(&w->lock);
                notify(w);
                log_notice("%s: the log is trusted again after a snapshot of record %" PRIu64 ", new segment %s.",
                           w->dir_path, seqnum, w->segment_name);
        }

        return remove_covered(w, seqnum);
}

/* Open and close */

Wal *wal_free(Wal *w) {
        if (!w)
                return NULL;

        if (w->thread_started) {
                pthread_mutex_lock(&w->lock);
                w->quit = true;
                pthread_cond_signal(&w->wake);
                pthread_mutex_unlock(&w->lock);
                pthread_join(w->thread, NULL);
        }
        retired_close(w->retired, &w->n_retired);
        retired_close(w->batch, &w->n_batch);
        free(w->retired);
        free(w->batch);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        pthread_cond_destroy(&w->done);

        if (w->fd >= 0)
                close(w->fd);
        if (w->event_fd >= 0)
                close(w->event_fd);
        if (w->dir_fd >= 0)
                close(w->dir_fd);
        free(w->segment_name);
        free(w->dir_path);
        free(w->buf);
        return mfree(w);
}

static int thread_start(Wal *w) {
        sigset_t all, saved;
        int r;

        /* The thread takes no signals: they belong to the event loop's signalfd. */
        sigfillset(&all);
        r = -pthread_sigmask(SIG_SETMASK, &all, &saved);
        if (r < 0)
                return r;
        r = -pthread_create(&w->thread, NULL, sync_thread, w);
        (void) pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (r < 0)
                return r;
        w->thread_started = true;
        return 0;
}

int wal_open(int dir_fd, const char *dir_path, uint64_t after_seqnum, const WalOptions *opts, state_record_cb cb,
             void *userdata, Wal **ret) {
        _cleanup_(wal_freep) Wal *w = NULL;
        pthread_condattr_t attr;
        uint64_t next;
        int r;

        assert(dir_fd >= 0);
        assert(opts);
        assert(ret);

        if (opts->sync_mode == WAL_SYNC_INTERVAL && opts->sync_interval_usec == 0)
                return -EINVAL;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->fd = w->sync_fd = w->event_fd = w->dir_fd = -EBADF;
        pthread_mutex_init(&w->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&w->wake, &attr);
        pthread_condattr_destroy(&attr);
        pthread_cond_init(&w->done, NULL);

        w->dir_path = strdup(dir_path ?: ".");
        if (!w->dir_path)
                return -ENOMEM;
        w->dir_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        if (w->dir_fd < 0)
                return -errno;
        w->sync_mode = opts->sync_mode;
        w->sync_interval_usec = opts->sync_interval_usec;
        w->segment_size_max = opts->segment_size_max ?: SEGMENT_SIZE_MAX_DEFAULT;
        w->io = (WalIO) {
                .write = io_write_default,
                .fdatasync = io_fdatasync_default,
                .fsync_dir = io_fsync_dir_default,
                .truncate = io_truncate_default,
        };
        if (opts->io) {
                if (opts->io->write)
                        w->io.write = opts->io->write;
                if (opts->io->fdatasync)
                        w->io.fdatasync = opts->io->fdatasync;
                if (opts->io->fsync_dir)
                        w->io.fsync_dir = opts->io->fsync_dir;
                if (opts->io->truncate)
                        w->io.truncate = opts->io->truncate;
                w->io.userdata = opts->io->userdata;
        }

        r = state_dir_remove_tmp_prefix(w->dir_fd, SEGMENT_PREFIX);
        if (r < 0)
                return log_error_errno(r, "Failed to remove temporary files in %s: %m", w->dir_path);

        r = scan(w->dir_fd, w->dir_path, after_seqnum, SCAN_OPEN, cb, userdata, NULL, &next);
        if (r < 0)
                return r;

        w->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->event_fd < 0)
                return -errno;

        /* Never append to a file a crash may have torn: a new segment each time. */
        w->next_seqnum = next;
        w->written_seqnum = w->requested = w->durable = next - 1;
        r = segment_start(w, next, true);
        if (r < 0)
                return r;
        w->last_sync_usec = now_usec();

        r = thread_start(w);
        if (r < 0)
                return log_error_errno(r, "Failed to start the log's sync thread: %m");

        *ret = TAKE_PTR(w);
        return 0;
}
