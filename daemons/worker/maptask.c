/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/stat.h>

#include "groups.h"
#include "intermediate.h"
#include "macro.h"
#include "maptask.h"
#include "output.h"

/* The pairs of each partition are grouped by key as the app emits them: a word count
 * then sorts and writes each distinct word once, not once per occurrence. */
struct mrkv_emitter {
        Groups *parts;
        unsigned nreduce;
};

static int map_emit(mrkv_emitter *e, const char *key, size_t key_len, const char *value, size_t value_len) {
        if ((!key && key_len > 0) || (!value && value_len > 0))
                return -EINVAL;
        return groups_add(&e->parts[(fnv1a32(key, key_len) & 0x7fffffff) % e->nreduce], key_len > 0 ? key : "",
                          key_len, value_len > 0 ? value : "", value_len);
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

static int write_partition(const Groups *g, int dir_fd, const char *name) {
        _cleanup_free_ const Group **sorted = NULL;
        OutputFile f;
        int r;

        r = groups_sorted(g, &sorted);
        if (r < 0)
                return r;
        r = output_file_open(&f, dir_fd, name);
        if (r < 0)
                return r;
        for (size_t i = 0; i < g->n_groups; i++) {
                const Group *group = sorted[i];
                uint8_t hdr[VARINT_MAX];

                (void) output_file_write(&f, hdr, varint_encode(hdr, group->key_len));
                (void) output_file_write(&f, group->key, group->key_len);
                (void) output_file_write(&f, hdr, varint_encode(hdr, group->n_values));
                /* Groups keep values as varint length + bytes: the file's layout already. */
                (void) output_file_write(&f, group->values, group->values_size);
        }
        return output_file_close(&f);
}

static int read_input(int dir_fd, const char *path, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t size = 0, allocated;

        fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC);
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

int map_task_run(const mrkv_app *app, int dir_fd, const char *input, unsigned nreduce,
                 char *const *temp_names, char **ret_error) {
        _cleanup_free_ char *contents = NULL;
        mrkv_emitter e = {};
        size_t size = 0;
        int r;

        *ret_error = NULL;

        r = read_input(dir_fd, input, &contents, &size);
        if (r < 0) {
                errno = -r;
                (void) asprintf(ret_error, "cannot read input %s: %m", input);
                return r;
        }

        e.nreduce = nreduce;
        e.parts = calloc(nreduce, sizeof(Groups));
        if (!e.parts)
                return -ENOMEM;

        r = app->map(&map_host, &e, input, contents, size);
        if (r < 0) {
                errno = -r;
                (void) asprintf(ret_error, "map of %s failed: %m", input);
                goto finish;
        }
        /* The input is no longer needed; give its memory back before writing. */
        contents = mfree(contents);

        for (unsigned i = 0; i < nreduce; i++) {
                r = write_partition(&e.parts[i], dir_fd, temp_names[i]);
                if (r < 0) {
                        errno = -r;
                        (void) asprintf(ret_error, "cannot write %s: %m", temp_names[i]);
                        goto finish;
                }
                groups_done(&e.parts[i]);
        }
        r = 0;

finish:
        for (unsigned i = 0; i < nreduce; i++)
                groups_done(&e.parts[i]);
        free(e.parts);
        return r;
}
