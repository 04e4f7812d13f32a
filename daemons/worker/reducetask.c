/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "intermediate.h"
#include "macro.h"
#include "output.h"
#include "reducetask.h"

/* What the read buffers of all inputs may take together, and the bounds for one. */
#define READ_BUDGET (8U * 1024U * 1024U)
#define READ_BUFFER_MIN (4U * 1024U)
#define READ_BUFFER_MAX (64U * 1024U)

/* A min-heap of readers ordered by (current key, input index): the groups of one key
 * come out in map-task order, so reduce sees a deterministic value order. */
typedef struct Merge {
        GroupReader *readers;
        unsigned *heap;
        unsigned n_heap;
} Merge;

static int reader_cmp(const Merge *m, unsigned a, unsigned b) {
        const GroupReader *x = &m->readers[a], *y = &m->readers[b];
        size_t n = MIN(x->key_len, y->key_len);
        int c = n > 0 ? memcmp(x->key, y->key, n) : 0;

        if (c != 0)
                return c;
        if (x->key_len != y->key_len)
                return x->key_len < y->key_len ? -1 : 1;
        return a < b ? -1 : a > b;
}

static void heap_down(Merge *m, unsigned i) {
        for (;;) {
                unsigned l = 2 * i + 1, r = l + 1, s = i;
                if (l < m->n_heap && reader_cmp(m, m->heap[l], m->heap[s]) < 0)
                        s = l;
                if (r < m->n_heap && reader_cmp(m, m->heap[r], m->heap[s]) < 0)
                        s = r;
                if (s == i)
                        return;
                unsigned t = m->heap[i];
                m->heap[i] = m->heap[s];
                m->heap[s] = t;
                i = s;
        }
}

static void heap_push(Merge *m, unsigned reader) {
        unsigned i = m->n_heap++;

        m->heap[i] = reader;
        while (i > 0) {
                unsigned parent = (i - 1) / 2;
                if (reader_cmp(m, m->heap[parent], m->heap[i]) <= 0)
                        break;
                unsigned t = m->heap[i];
                m->heap[i] = m->heap[parent];
                m->heap[parent] = t;
                i = parent;
        }
}

static unsigned heap_pop(Merge *m) {
        unsigned top = m->heap[0];

        m->heap[0] = m->heap[--m->n_heap];
        if (m->n_heap > 0)
                heap_down(m, 0);
        return top;
}

/* The values of one key: the groups of that key in each input holding it, in order. */
struct mrkv_values {
        Merge *merge;
        unsigned *members; /* readers positioned at this key, by input index */
        unsigned n_members, current;
        int error;
};

struct mrkv_emitter {
        OutputFile *out;
};

static int reduce_next_value(mrkv_values *v, const char **value, size_t *value_len) {
        while (v->current < v->n_members) {
                int r = group_reader_next_value(&v->merge->readers[v->members[v->current]], value, value_len);
                if (_likely_(r > 0))
                        return 1;
                if (r < 0) {
                        v->error = r;
                        v->n_members = 0; /* nothing more to hand out */
                        return r;
                }
                v->current++;
        }
        return v->error < 0 ? v->error : 0;
}

static int reduce_emit(mrkv_emitter *e, const char *key, size_t key_len, const char *value, size_t value_len) {
        if ((!key && key_len > 0) || (!value && value_len > 0))
                return -EINVAL;
        (void) output_file_write(e->out, key, key_len);
        (void) output_file_write(e->out, " ", 1);
        (void) output_file_write(e->out, value, value_len);
        return output_file_write(e->out, "\n", 1);
}

static const mrkv_host reduce_host = {
        .abi_version = MRKV_APP_ABI_VERSION,
        .struct_size = sizeof(mrkv_host),
        .emit = reduce_emit,
        .next_value = reduce_next_value,
};

static int fail(char **ret_error, int r, const char *what, const char *name) {
        errno = -r;
        asprintf_or_null(ret_error, "%s %s: %m", what, name);
        return r;
}

int reduce_task_run(const mrkv_app *app, int dir_fd, char *const *inputs, unsigned n, const char *output,
                    char **ret_error) {
        _cleanup_free_ char *key = NULL;
        _cleanup_free_ unsigned *members = NULL;
        size_t key_allocated = 0, buffer_size;
        Merge m = {};
        OutputFile out = { .fd = -EBADF };
        mrkv_emitter e = { .out = &out };
        int r;

        *ret_error = NULL;

        m.readers = calloc(n, sizeof(GroupReader));
        m.heap = calloc(n, sizeof(unsigned));
        members = calloc(n, sizeof(unsigned));
        if (!m.readers || !m.heap || !members) {
                r = -ENOMEM;
                goto finish;
        }
        for (unsigned i = 0; i < n; i++)
                m.readers[i].fd = -EBADF;

        /* Many inputs share a fixed budget, so memory does not grow with the map count. */
        buffer_size = MIN(MAX(READ_BUDGET / MAX(n, 1U), READ_BUFFER_MIN), READ_BUFFER_MAX);
        for (unsigned i = 0; i < n; i++) {
                r = group_reader_open(&m.readers[i], dir_fd, inputs[i], buffer_size);
                if (r >= 0)
                        r = group_reader_next_key(&m.readers[i]);
                if (r < 0) {
                        fail(ret_error, r, "cannot read", inputs[i]);
                        goto finish;
                }
                if (r > 0)
                        heap_push(&m, i);
        }

        r = output_file_open(&out, dir_fd, output);
        if (r < 0) {
                fail(ret_error, r, "cannot create", output);
                goto finish;
        }

        while (m.n_heap > 0) {
                const GroupReader *top = &m.readers[m.heap[0]];
                mrkv_values v = { .merge = &m, .members = members };
                size_t key_len = top->key_len;

                /* Reading values moves the readers' buffers: keep the key apart. */
                if (key_len + 1 > key_allocated) {
                        char *k = realloc(key, key_len + 1);
                        if (!k) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        key = k;
                        key_allocated = key_len + 1;
                }
                memcpy(key, top->key, key_len);
                key[key_len] = '\0';

                /* Equal keys pop in input order (the heap breaks ties by index). */
                while (m.n_heap > 0) {
                        const GroupReader *t = &m.readers[m.heap[0]];
                        if (t->key_len != key_len || (key_len > 0 && memcmp(t->key, key, key_len) != 0))
                                break;
                        members[v.n_members++] = heap_pop(&m);
                }

                r = app->reduce(&reduce_host, &e, key, key_len, &v);
                if (r >= 0)
                        r = v.error;
                if (r < 0) {
                        errno = -r;
                        asprintf_or_null(ret_error, "reduce failed: %m");
                        goto finish;
                }

                for (unsigned i = 0; i < v.n_members; i++) {
                        unsigned idx = members[i];
                        r = group_reader_next_key(&m.readers[idx]);
                        if (r < 0) {
                                fail(ret_error, r, "cannot read", inputs[idx]);
                                goto finish;
                        }
                        if (r > 0)
                                heap_push(&m, idx);
                }
        }

        r = output_file_close(&out);
        if (r < 0)
                fail(ret_error, r, "cannot write", output);

finish:
        if (out.fd >= 0)
                (void) output_file_close(&out);
        if (m.readers)
                for (unsigned i = 0; i < n; i++)
                        group_reader_close(&m.readers[i]);
        free(m.readers);
        free(m.heap);
        return r;
}
