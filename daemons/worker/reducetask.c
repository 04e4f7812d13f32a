/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "intermediate.h"
#include "macro.h"
#include "output.h"
#include "reducetask.h"

/* A min-heap of readers ordered by (current key, input index): equal keys come out in
 * map-task order, so reduce sees a deterministic value order. */
typedef struct Merge {
        RecordReader *readers;
        unsigned *heap;
        unsigned n_heap;
} Merge;

static int reader_cmp(const Merge *m, unsigned a, unsigned b) {
        const RecordReader *x = &m->readers[a], *y = &m->readers[b];
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

/* Advances the reader at the top of the heap. */
static int merge_advance(Merge *m) {
        unsigned top = m->heap[0];
        int r = record_reader_next(&m->readers[top]);

        if (r < 0)
                return r;
        if (r == 0)
                m->heap[0] = m->heap[--m->n_heap];
        if (m->n_heap > 0)
                heap_down(m, 0);
        return 0;
}

struct mrkv_values {
        Merge *merge;
        const char *key; /* the group's key, a stable copy */
        size_t key_len;
        bool started;    /* the top record was handed out and must be advanced past */
        int error;
};

struct mrkv_emitter {
        OutputFile *out;
};

static bool top_has_key(Merge *m, const char *key, size_t key_len) {
        if (m->n_heap == 0)
                return false;
        const RecordReader *r = &m->readers[m->heap[0]];
        return r->key_len == key_len && (key_len == 0 || memcmp(r->key, key, key_len) == 0);
}

static int reduce_next_value(mrkv_values *v, const char **value, size_t *value_len) {
        int r;

        if (v->error < 0)
                return v->error;
        if (v->started) {
                r = merge_advance(v->merge);
                if (r < 0)
                        return v->error = r;
        }
        if (!top_has_key(v->merge, v->key, v->key_len)) {
                v->started = false;
                return 0;
        }
        v->started = true;
        const RecordReader *rd = &v->merge->readers[v->merge->heap[0]];
        *value = rd->value;
        *value_len = rd->value_len;
        return 1;
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

int reduce_task_run(const mrkv_app *app, int dir_fd, char *const *inputs, unsigned n, const char *output,
                    char **ret_error) {
        _cleanup_free_ char *key = NULL;
        size_t key_allocated = 0;
        Merge m = {};
        OutputFile out = { .fd = -EBADF };
        mrkv_emitter e = { .out = &out };
        int r;

        *ret_error = NULL;

        m.readers = calloc(n, sizeof(RecordReader));
        m.heap = calloc(n, sizeof(unsigned));
        if (!m.readers || !m.heap) {
                r = -ENOMEM;
                goto finish;
        }
        for (unsigned i = 0; i < n; i++)
                m.readers[i].fd = -EBADF;

        for (unsigned i = 0; i < n; i++) {
                r = record_reader_open(&m.readers[i], dir_fd, inputs[i]);
                if (r >= 0)
                        r = record_reader_next(&m.readers[i]);
                if (r < 0) {
                        errno = -r;
                        (void) asprintf(ret_error, "cannot read %s: %m", inputs[i]);
                        goto finish;
                }
                if (r > 0)
                        m.heap[m.n_heap++] = i;
        }
        for (unsigned i = m.n_heap / 2; i-- > 0;)
                heap_down(&m, i);

        r = output_file_open(&out, dir_fd, output);
        if (r < 0) {
                errno = -r;
                (void) asprintf(ret_error, "cannot create %s: %m", output);
                goto finish;
        }

        while (m.n_heap > 0) {
                const RecordReader *top = &m.readers[m.heap[0]];
                mrkv_values v = { .merge = &m };

                /* The readers' buffers move as they advance: keep the group's key apart. */
                if (top->key_len + 1 > key_allocated) {
                        char *k = realloc(key, top->key_len + 1);
                        if (!k) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        key = k;
                        key_allocated = top->key_len + 1;
                }
                memcpy(key, top->key, top->key_len);
                key[top->key_len] = '\0';
                v.key = key;
                v.key_len = top->key_len;

                r = app->reduce(&reduce_host, &e, key, v.key_len, &v);
                if (r >= 0)
                        r = v.error;
                if (r < 0) {
                        errno = -r;
                        (void) asprintf(ret_error, "reduce failed: %m");
                        goto finish;
                }
                /* Skip what the app did not read of this key. */
                const char *ignored;
                size_t ignored_len;
                while ((r = reduce_next_value(&v, &ignored, &ignored_len)) > 0)
                        ;
                if (r < 0) {
                        errno = -r;
                        (void) asprintf(ret_error, "cannot read intermediate data: %m");
                        goto finish;
                }
        }

        r = output_file_close(&out);
        if (r < 0) {
                errno = -r;
                (void) asprintf(ret_error, "cannot write %s: %m", output);
        }

finish:
        if (out.fd >= 0)
                (void) output_file_close(&out);
        if (m.readers)
                for (unsigned i = 0; i < n; i++)
                        record_reader_close(&m.readers[i]);
        free(m.readers);
        free(m.heap);
        return r;
}
