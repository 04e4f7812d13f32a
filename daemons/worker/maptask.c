/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "app-host.h"
#include "macro.h"
#include "mapoutput.h"
#include "maptask.h"
#include "split.h"
#include "streaming.h"

/* The pairs of a task are grouped by key as the app emits them (see mapoutput.h): a
 * key's partition is computed once per distinct key, when the groups are written, and a
 * word count sorts and writes each distinct word once, not once per occurrence. */
struct mrkv_emitter {
        MapOutput *out;
};

static int map_emit(mrkv_emitter *e, const char *key, size_t key_len, const char *value, size_t value_len) {
        if (!app_emit_valid(key, key_len, value, value_len))
                return -EINVAL;
        return map_output_add(e->out, app_bytes(key, key_len), key_len, app_bytes(value, value_len), value_len);
}

static const mrkv_host map_host = {
        .abi_version = MRKV_APP_ABI_VERSION,
        .struct_size = sizeof(mrkv_host),
        .emit = map_emit,
        .next_value = app_map_next_value,
};

/* Opens an input without following a symbolic link and without blocking (a FIFO swapped
 * in after the job was submitted must not hang the worker), and only if it is a regular
 * file (-EBADFD otherwise). */
static int open_input(int dir_fd, const char *path) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        return TAKE_FD(fd);
}

/* Why an input cannot be mapped, for the coordinator. */
static void input_error(const char *input, uint64_t max_input, int r, char **ret_error) {
        if (r == -EFBIG)
                asprintf_or_null(ret_error, "input %s is larger than %" PRIu64 " bytes (--max-input-size)",
                                 input, max_input);
        else if (r == -EBADFD)
                asprintf_or_null(ret_error, "input %s is not a regular file", input);
        else if (r == -ELOOP)
                asprintf_or_null(ret_error, "input %s is a symbolic link", input);
        else {
                errno = -r;
                asprintf_or_null(ret_error, "cannot read input %s: %m", input);
        }
}

int map_task_run(const MapTask *t, char **ret_error) {
        _cleanup_free_ char *contents = NULL;
        _cleanup_close_ int fd = -EBADF;
        MapOutput out = {
                .groups = t->groups,
                .combine = t->app && t->combine ? mrkv_app_combine(t->app) : NULL,
                .dir_fd = t->dir_fd,
                .nreduce = t->nreduce,
                .run_name = t->run_name,
                .counters = t->counters,
        };
        size_t size = 0;
        int r;

        *ret_error = NULL;

        groups_reset(t->groups);
        map_output_init(&out, (size_t) MIN(t->map_memory, (uint64_t) SIZE_MAX));
        fd = open_input(t->dir_fd, t->input);
        r = fd < 0 ? fd : split_read(fd, t->offset, t->length, t->max_input, &contents, &size);
        if (r < 0) {
                input_error(t->input, t->max_input, r, ret_error);
                return r;
        }
        closep(&fd);
        fd = -EBADF;
        t->counters->map_input_bytes += size;
        t->counters->map_input_records += split_count_lines(contents, size);

        if (t->app) {
                r = t->app->map(&map_host, &(mrkv_emitter) { .out = &out }, t->input, contents, size);
                if (r < 0 && !out.error) {
                        errno = -r;
                        asprintf_or_null(&out.error, "map of %s failed: %m", t->input);
                }
        } else
                /* A line is a record: no larger than an input may be. */
                r = streaming_map(t->mapper, t->deadline, contents, size,
                                  (size_t) MIN(t->max_input, (uint64_t) SIZE_MAX), &out, &out.error);
        if (r >= 0) {
                /* The input is no longer needed; give its memory back before writing. */
                contents = mfree(contents);
                r = map_output_write(&out, t->name);
        }

        if (r < 0)
                *ret_error = TAKE_PTR(out.error);
        map_output_done(&out);
        groups_reset(t->groups);
        return r;
}
