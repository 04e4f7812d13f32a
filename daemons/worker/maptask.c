/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/stat.h>

#include "groups.h"
#include "intermediate.h"
#include "macro.h"
#include "maptask.h"
#include "output.h"

/* The pairs of a task are grouped by key as the app emits them, in one table: a key's
 * partition is computed once per distinct key, when the groups are written, and a
 * word count sorts and writes each distinct word once, not once per occurrence. */
struct mrkv_emitter {
        Groups *groups;
};

static int map_emit(mrkv_emitter *e, const char *key, size_t key_len, const char *value, size_t value_len) {
        if ((!key && key_len > 0) || (!value && value_len > 0))
                return -EINVAL;
        return groups_add(e->groups, key_len > 0 ? key : "", key_len, value_len > 0 ? value : "", value_len);
}

static int map_next_value(mrkv_values *v, const char **value, size_t *value_len) {
        return -EINVAL; /* there are no values during map */
}

static const mrkv_host map_host = {
        .abi_version = MRKV_APP_ABI_VERSION,
        .struct_size = sizeof(mrkv_host),
        .emit = map_emit,
        .next_value = map_next_value,
};

static void write_group(OutputFile *f, const Group *group) {
        uint8_t hdr[VARINT_MAX];
        const char *value;
        size_t pos = 0, len;
        uint32_t repeat;

        (void) output_file_write(f, hdr, varint_encode(hdr, group->key_len));
        (void) output_file_write(f, group->key, group->key_len);
        (void) output_file_write(f, hdr, varint_encode(hdr, group->n_values));
        while (group_next_run(group, &pos, &repeat, &value, &len) > 0) {
                (void) output_file_write(f, hdr, varint_encode(hdr, repeat));
                (void) output_file_write(f, hdr, varint_encode(hdr, len));
                (void) output_file_write(f, value, len);
        }
}

/* Writes every partition file at once: the groups in key order, each to its partition,
 * so each file comes out sorted. */
static int write_partitions(const Groups *g, int dir_fd, unsigned nreduce, char *const *names,
                            char **ret_error) {
        _cleanup_free_ const Group **sorted = NULL;
        _cleanup_free_ OutputFile *files = NULL;
        unsigned opened = 0;
        int r;

        r = groups_sorted(g, &sorted);
        if (r < 0)
                return r;
        files = calloc(nreduce, sizeof(OutputFile));
        if (!files)
                return -ENOMEM;

        for (; opened < nreduce; opened++) {
                r = output_file_open(&files[opened], dir_fd, names[opened]);
                if (r < 0) {
                        errno = -r;
                        asprintf_or_null(ret_error, "cannot create %s: %m", names[opened]);
                        goto finish;
                }
        }

        for (size_t i = 0; i < g->n_groups; i++) {
                const Group *group = sorted[i];
                write_group(&files[(fnv1a32(group->key, group->key_len) & 0x7fffffff) % nreduce], group);
        }

finish:
        for (unsigned i = 0; i < opened; i++) {
                int k = output_file_close(&files[i]);
                if (k < 0 && r >= 0) {
                        r = k;
                        errno = -k;
                        asprintf_or_null(ret_error, "cannot write %s: %m", names[i]);
                }
        }
        return r;
}

static int read_input(int dir_fd, const char *path, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t size = 0, allocated;

        /* Never a link, never a FIFO that blocks the open: a regular file or nothing. */
        fd = openat(dir_fd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;

        allocated = (size_t) st.st_size + 1;
        buf = malloc(allocated);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (size + 1 == allocated) {
                        /* The file grew while we read it; keep reading. */
                        char *n = realloc(buf, allocated * 2);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        allocated *= 2;
                }
                ssize_t k = read(fd, buf + size, allocated - 1 - size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                size += (size_t) k;
        }
        buf[size] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

int map_task_run(const mrkv_app *app, Groups *groups, int dir_fd, const char *input, unsigned nreduce,
                 char *const *temp_names, char **ret_error) {
        _cleanup_free_ char *contents = NULL;
        mrkv_emitter e = { .groups = groups };
        size_t size = 0;
        int r;

        *ret_error = NULL;

        groups_reset(groups);
        r = read_input(dir_fd, input, &contents, &size);
        if (r < 0) {
                errno = -r;
                asprintf_or_null(ret_error, "cannot read input %s: %m", input);
                return r;
        }

        r = app->map(&map_host, &e, input, contents, size);
        if (r < 0) {
                errno = -r;
                asprintf_or_null(ret_error, "map of %s failed: %m", input);
        } else {
                /* The input is no longer needed; give its memory back before writing. */
                contents = mfree(contents);
                r = write_partitions(groups, dir_fd, nreduce, temp_names, ret_error);
        }

        groups_reset(groups);
        return r;
}
