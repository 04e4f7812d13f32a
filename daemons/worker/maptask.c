/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/stat.h>

#include "intermediate.h"
#include "macro.h"
#include "maptask.h"
#include "output.h"

/* A pair in a partition's arena is stored as u32 key length, u32 value length, key,
 * value. The sort index holds the key's first 8 bytes as a big-endian number, so most
 * comparisons are one integer compare. */
typedef struct Entry {
        uint64_t prefix;
        uint64_t offset;
} Entry;

typedef struct Partition {
        char *arena;
        size_t used, allocated;
        Entry *entries;
        size_t n, n_allocated;
} Partition;

struct mrkv_emitter {
        Partition *parts;
        unsigned nreduce;
};

static uint64_t key_prefix(const char *key, size_t n) {
        uint64_t p = 0;
        for (size_t i = 0; i < 8; i++)
                p = (p << 8) | (i < n ? (uint8_t) key[i] : 0);
        return p;
}

static int map_emit(mrkv_emitter *e, const char *key, size_t key_len, const char *value, size_t value_len) {
        Partition *p;
        uint32_t kl, vl;
        size_t need;

        if ((!key && key_len > 0) || (!value && value_len > 0))
                return -EINVAL;
        if (key_len > UINT32_MAX || value_len > UINT32_MAX)
                return -E2BIG;

        p = &e->parts[(fnv1a32(key, key_len) & 0x7fffffff) % e->nreduce];

        need = 8 + key_len + value_len;
        if (p->allocated - p->used < need) {
                size_t a = MAX(p->allocated * 2, MAX(p->used + need, (size_t) 64 * 1024));
                char *n = realloc(p->arena, a);
                if (!n)
                        return -ENOMEM;
                p->arena = n;
                p->allocated = a;
        }
        if (p->n == p->n_allocated) {
                size_t a = MAX(p->n_allocated * 2, (size_t) 4096);
                Entry *n = reallocarray(p->entries, a, sizeof(Entry));
                if (!n)
                        return -ENOMEM;
                p->entries = n;
                p->n_allocated = a;
        }

        kl = (uint32_t) key_len;
        vl = (uint32_t) value_len;
        char *d = p->arena + p->used;
        memcpy(d, &kl, 4);
        memcpy(d + 4, &vl, 4);
        if (key_len > 0)
                memcpy(d + 8, key, key_len);
        if (value_len > 0)
                memcpy(d + 8 + key_len, value, value_len);
        p->entries[p->n++] = (Entry) { .prefix = key_prefix(key, key_len), .offset = p->used };
        p->used += need;
        return 0;
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

static inline int entry_cmp(const char *arena, const Entry *a, const Entry *b) {
        if (a->prefix != b->prefix)
                return a->prefix < b->prefix ? -1 : 1;

        uint32_t al, bl;
        memcpy(&al, arena + a->offset, 4);
        memcpy(&bl, arena + b->offset, 4);
        if (al > 8 || bl > 8) {
                /* The first 8 bytes are equal; compare the rest. */
                size_t n = MIN(al, bl);
                int c = n > 8 ? memcmp(arena + a->offset + 16, arena + b->offset + 16, n - 8) : 0;
                if (c != 0)
                        return c;
        }
        if (al != bl)
                return al < bl ? -1 : 1;
        /* Equal keys keep the order they were emitted in. */
        return a->offset < b->offset ? -1 : a->offset > b->offset;
}

/* A merge sort: keys are compared through the arena, and it is stable by construction. */
static void sort_entries(const char *arena, Entry *v, Entry *tmp, size_t n) {
        if (n <= 16) {
                for (size_t i = 1; i < n; i++) {
                        Entry x = v[i];
                        size_t j = i;
                        while (j > 0 && entry_cmp(arena, &v[j - 1], &x) > 0) {
                                v[j] = v[j - 1];
                                j--;
                        }
                        v[j] = x;
                }
                return;
        }

        size_t h = n / 2;
        sort_entries(arena, v, tmp, h);
        sort_entries(arena, v + h, tmp, n - h);
        if (entry_cmp(arena, &v[h - 1], &v[h]) <= 0)
                return; /* already in order */

        memcpy(tmp, v, h * sizeof(Entry));
        size_t i = 0, j = h, k = 0;
        while (i < h && j < n)
                v[k++] = entry_cmp(arena, &tmp[i], &v[j]) <= 0 ? tmp[i++] : v[j++];
        while (i < h)
                v[k++] = tmp[i++];
}

static int write_partition(const Partition *p, int dir_fd, const char *name) {
        OutputFile f;
        int r;

        r = output_file_open(&f, dir_fd, name);
        if (r < 0)
                return r;
        for (size_t i = 0; i < p->n; i++) {
                const char *rec = p->arena + p->entries[i].offset;
                uint8_t hdr[2 * VARINT_MAX];
                uint32_t kl, vl;
                size_t h;

                memcpy(&kl, rec, 4);
                memcpy(&vl, rec + 4, 4);
                h = varint_encode(hdr, kl);
                h += varint_encode(hdr + h, vl);
                (void) output_file_write(&f, hdr, h);
                (void) output_file_write(&f, rec + 8, (size_t) kl + vl);
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
        _cleanup_free_ Entry *tmp = NULL;
        mrkv_emitter e = {};
        size_t size = 0, max_n = 0;
        int r;

        *ret_error = NULL;

        r = read_input(dir_fd, input, &contents, &size);
        if (r < 0) {
                errno = -r;
                (void) asprintf(ret_error, "cannot read input %s: %m", input);
                return r;
        }

        e.nreduce = nreduce;
        e.parts = calloc(nreduce, sizeof(Partition));
        if (!e.parts)
                return -ENOMEM;

        r = app->map(&map_host, &e, input, contents, size);
        if (r < 0) {
                errno = -r;
                (void) asprintf(ret_error, "map of %s failed: %m", input);
                goto finish;
        }
        /* The input is no longer needed; give its memory back before sorting. */
        contents = mfree(contents);

        for (unsigned i = 0; i < nreduce; i++)
                max_n = MAX(max_n, e.parts[i].n);
        tmp = malloc(MAX(max_n / 2 + 1, (size_t) 1) * sizeof(Entry));
        if (!tmp) {
                r = -ENOMEM;
                goto finish;
        }

        for (unsigned i = 0; i < nreduce; i++) {
                Partition *p = &e.parts[i];

                sort_entries(p->arena, p->entries, tmp, p->n);
                r = write_partition(p, dir_fd, temp_names[i]);
                if (r < 0) {
                        errno = -r;
                        (void) asprintf(ret_error, "cannot write %s: %m", temp_names[i]);
                        goto finish;
                }
                /* Free as we go: peak memory is the pairs of one task, once. */
                p->arena = mfree(p->arena);
                p->entries = mfree(p->entries);
        }
        r = 0;

finish:
        for (unsigned i = 0; i < nreduce; i++) {
                free(e.parts[i].arena);
                free(e.parts[i].entries);
        }
        free(e.parts);
        return r;
}
