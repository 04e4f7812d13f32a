/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "log.h"
#include "sequential.h"

/* One intermediate pair: key_len bytes of key and then value_len bytes of value, at
 * offset in Sequential.data. Offsets, not pointers: data moves as it grows. */
typedef struct Pair {
        size_t offset, key_len, value_len;
} Pair;

struct mrkv_emitter {
        Sequential *seq; /* map, combine: where pairs go */
        FILE *file;      /* reduce: where lines go */
        int error;       /* reduce: the first write error, to report it rather than the app's */
        const char *key; /* combine: the key being combined, the only one it may emit */
        size_t key_len;
};

/* The values of one key: a run of sorted pairs. */
struct mrkv_values {
        const char *data;
        const Pair *next, *end;
};

struct Sequential {
        const mrkv_app *app;
        char *data; /* every key and value, in emission order */
        size_t data_size, data_allocated;
        Pair *pairs;
        size_t n_pairs, pairs_allocated;
        InputBuffer input; /* the input being mapped */
        bool combine; /* run the app's combine over each input's pairs */
        Sequential *combined; /* combine's output for one input, reused */
};

/* Returns array p with room for need elements of size bytes (p itself if it has it), or
 * NULL if out of memory (p is left as it was). */
static void *grow(void *p, size_t *allocated, size_t need, size_t size) {
        size_t n;

        if (p && need <= *allocated)
                return p;
        n = MAX(*allocated, (size_t) 1024);
        while (n < need) {
                if (n > SIZE_MAX / 2)
                        return NULL;
                n *= 2;
        }
        if (n > SIZE_MAX / size)
                return NULL;
        p = realloc(p, n * size);
        if (p)
                *allocated = n;
        return p;
}

static int map_emit(mrkv_emitter *out, const char *key, size_t key_len, const char *value, size_t value_len) {
        Sequential *s = out->seq;
        Pair *pairs;
        char *data;

        if (key_len > SIZE_MAX - value_len || key_len + value_len > SIZE_MAX - s->data_size)
                return -ENOMEM;
        data = grow(s->data, &s->data_allocated, s->data_size + key_len + value_len, 1);
        if (!data)
                return -ENOMEM;
        s->data = data;
        pairs = grow(s->pairs, &s->pairs_allocated, s->n_pairs + 1, sizeof(Pair));
        if (!pairs)
                return -ENOMEM;
        s->pairs = pairs;

        /* A zero-length key or value may come as NULL. */
        s->pairs[s->n_pairs++] = (Pair) { .offset = s->data_size, .key_len = key_len, .value_len = value_len };
        if (key_len > 0)
                memcpy(s->data + s->data_size, key, key_len);
        s->data_size += key_len;
        if (value_len > 0)
                memcpy(s->data + s->data_size, value, value_len);
        s->data_size += value_len;
        return 0;
}

static int combine_emit(mrkv_emitter *out, const char *key, size_t key_len, const char *value,
                        size_t value_len) {
        if (key_len != out->key_len || (key_len > 0 && memcmp(key, out->key, key_len) != 0))
                return -EINVAL;
        return map_emit(out, key, key_len, value, value_len);
}

static int reduce_emit(mrkv_emitter *out, const char *key, size_t key_len, const char *value,
                       size_t value_len) {
        int r = output_line(out->file, key, key_len, value, value_len);

        if (r < 0 && out->error == 0)
                out->error = r;
        return r < 0 ? out->error : 0;
}

static int next_value(mrkv_values *values, const char **value, size_t *value_len) {
        const Pair *p = values->next;

        if (p == values->end)
                return 0;
        values->next++;
        *value = values->data + p->offset + p->key_len;
        *value_len = p->value_len;
        return 1;
}

static const mrkv_host map_host = {
        .abi_version = MRKV_APP_ABI_VERSION,
        .struct_size = sizeof(mrkv_host),
        .emit = map_emit,
        .next_value = next_value,
};

static const mrkv_host reduce_host = {
        .abi_version = MRKV_APP_ABI_VERSION,
        .struct_size = sizeof(mrkv_host),
        .emit = reduce_emit,
        .next_value = next_value,
};

static const mrkv_host combine_host = {
        .abi_version = MRKV_APP_ABI_VERSION,
        .struct_size = sizeof(mrkv_host),
        .emit = combine_emit,
        .next_value = next_value,
};

static const char *app_name(const Sequential *s) {
        return s->app->name ?: "(unnamed)";
}

Sequential *sequential_new(const mrkv_app *app) {
        Sequential *s;

        assert(app);

        s = calloc(1, sizeof(Sequential));
        if (!s)
                return NULL;
        s->app = app;
        return s;
}

Sequential *sequential_free(Sequential *s) {
        if (!s)
                return NULL;
        free(s->data);
        free(s->pairs);
        input_buffer_done(&s->input);
        sequential_free(s->combined);
        free(s);
        return NULL;
}

int sequential_set_combine(Sequential *s, bool combine) {
        if (combine && !mrkv_app_combine(s->app))
                return log_error_errno(EOPNOTSUPP, "App %s has no combine function.", app_name(s));
        s->combine = combine;
        return 0;
}

static int pair_compare(const void *a, const void *b, void *data);
static int key_compare(const char *data, const Pair *x, const Pair *y);

/* Replaces the pairs from first on (one input's) by what combine makes of each key's:
 * reduce then sees, per input, the combined values in place of the emitted ones, as a
 * worker's reduce does. */
static int sequential_combine(Sequential *s, size_t first, size_t data_first, const char *filename) {
        Sequential *c;
        int r;

        if (!s->combined) {
                s->combined = sequential_new(s->app);
                if (!s->combined)
                        return log_oom();
        }
        c = s->combined;
        c->n_pairs = c->data_size = 0;

        qsort_r(s->pairs + first, s->n_pairs - first, sizeof(Pair), pair_compare, s->data);
        for (size_t i = first, j; i < s->n_pairs; i = j) {
                const Pair *p = &s->pairs[i];
                mrkv_emitter out = { .seq = c, .key = s->data + p->offset, .key_len = p->key_len };
                mrkv_values values;

                for (j = i + 1; j < s->n_pairs && key_compare(s->data, p, &s->pairs[j]) == 0; j++)
                        ;
                values = (mrkv_values) { .data = s->data, .next = p, .end = &s->pairs[j] };
                r = mrkv_app_combine(s->app)(&combine_host, &out, out.key, out.key_len, &values);
                if (r < 0)
                        return log_error_errno(r, "App %s failed to combine the pairs of %s: %m", app_name(s),
                                               filename);
        }

        /* c's pairs are in key order, each key's values in the order combine emitted them. */
        s->n_pairs = first;
        s->data_size = data_first;
        for (size_t i = 0; i < c->n_pairs; i++) {
                const Pair *p = &c->pairs[i];
                r = map_emit(&(mrkv_emitter) { .seq = s }, c->data + p->offset, p->key_len,
                             c->data + p->offset + p->key_len, p->value_len);
                if (r < 0)
                        return log_oom();
        }
        return 0;
}

int sequential_map(Sequential *s, const char *filename, const char *contents, size_t size) {
        mrkv_emitter out = { .seq = s };
        size_t first = s->n_pairs, data_first = s->data_size;
        int r;

        r = s->app->map(&map_host, &out, filename, contents, size);
        if (r < 0)
                return log_error_errno(r, "App %s failed to map %s: %m", app_name(s), filename);
        if (s->combine)
                return sequential_combine(s, first, data_first, filename);
        return 0;
}

int sequential_map_file(Sequential *s, const char *filename) {
        size_t size = 0;
        int r;

        r = input_buffer_read(&s->input, filename, &size);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", filename);
        return sequential_map(s, filename, s->input.data, size);
}

static int key_compare(const char *data, const Pair *x, const Pair *y) {
        int c = memcmp(data + x->offset, data + y->offset, MIN(x->key_len, y->key_len));

        if (c != 0)
                return c;
        return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

/* Bytewise by key, as Go orders strings; pairs of one key in emission order. */
static int pair_compare(const void *a, const void *b, void *data) {
        const Pair *x = a, *y = b;
        int c = key_compare(data, x, y);

        if (c != 0)
                return c;
        return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int sequential_reduce(Sequential *s, FILE *f) {
        mrkv_emitter out = { .file = f };
        int r;

        qsort_r(s->pairs, s->n_pairs, sizeof(Pair), pair_compare, s->data);

        for (size_t i = 0, j; i < s->n_pairs; i = j) {
                const Pair *first = &s->pairs[i];
                const char *key = s->data + first->offset;
                mrkv_values values;

                for (j = i + 1; j < s->n_pairs && key_compare(s->data, first, &s->pairs[j]) == 0; j++)
                        ;
                values = (mrkv_values) { .data = s->data, .next = first, .end = &s->pairs[j] };
                r = s->app->reduce(&reduce_host, &out, key, first->key_len, &values);
                if (out.error < 0)
                        return log_error_errno(out.error, "Failed to write output: %m");
                if (r < 0)
                        return log_error_errno(r, "App %s failed to reduce key '%.*s': %m", app_name(s),
                                               (int) MIN(first->key_len, (size_t) 64), key);
        }
        return 0;
}

static int reduce_to(void *userdata, FILE *f) {
        return sequential_reduce(userdata, f);
}

int sequential_write_output(Sequential *s, const char *output) {
        return output_write_atomic(output, reduce_to, s);
}
