/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "values.h"

int bytes_compare(const char *a, size_t a_len, const char *b, size_t b_len) {
        int c = memcmp(a, b, a_len < b_len ? a_len : b_len);

        if (c != 0)
                return c;
        return a_len < b_len ? -1 : a_len > b_len;
}

static int grow(void **p, size_t *allocated, size_t need, size_t elem) {
        size_t n;
        void *q;

        if (need <= *allocated)
                return 0;
        n = *allocated > 0 ? *allocated : 16;
        while (n < need) {
                if (n > SIZE_MAX / 2 / elem)
                        return -ENOMEM;
                n *= 2;
        }
        q = realloc(*p, n * elem);
        if (!q)
                return -ENOMEM;
        *p = q;
        *allocated = n;
        return 0;
}

int value_set_collect(ValueSet *s, const mrkv_host *host, mrkv_values *values) {
        const char *v;
        size_t l;
        int r;

        while ((r = host->next_value(values, &v, &l)) > 0) {
                if (grow((void **) &s->data, &s->allocated, s->size + l, 1) < 0 ||
                    grow((void **) &s->items, &s->n_allocated, s->n + 1, sizeof(Value)) < 0)
                        return -ENOMEM;
                if (l > 0)
                        memcpy(s->data + s->size, v, l);
                /* An offset for now: .data may still move. */
                s->items[s->n++] = (Value) { .data = (const char *) (uintptr_t) s->size, .len = l };
                s->size += l;
        }
        if (r < 0)
                return r;

        for (size_t i = 0; i < s->n; i++)
                s->items[i].data = s->data + (uintptr_t) s->items[i].data;
        return 0;
}

static int value_compare(const void *a, const void *b) {
        const Value *x = a, *y = b;

        return bytes_compare(x->data, x->len, y->data, y->len);
}

void value_set_sort(ValueSet *s) {
        if (s->n > 1)
                qsort(s->items, s->n, sizeof(Value), value_compare);
}

/* Drops repeated values of a sorted set. */
static void value_set_unique(ValueSet *s) {
        size_t n = 0;

        for (size_t i = 0; i < s->n; i++)
                if (n == 0 || bytes_compare(s->items[n - 1].data, s->items[n - 1].len, s->items[i].data,
                                            s->items[i].len) != 0)
                        s->items[n++] = s->items[i];
        s->n = n;
}

int value_set_join(const ValueSet *s, const char *prefix, const char *sep, char **ret, size_t *ret_len) {
        size_t prefix_len = strlen(prefix), sep_len = strlen(sep);
        size_t total = prefix_len + (s->n > 0 ? (s->n - 1) * sep_len : 0);
        char *buf, *p;

        /* The items, not s->size: value_set_unique() may have dropped some. */
        for (size_t i = 0; i < s->n; i++)
                total += s->items[i].len;

        buf = malloc(total + 1);
        if (!buf)
                return -ENOMEM;

        p = mempcpy(buf, prefix, prefix_len);
        for (size_t i = 0; i < s->n; i++) {
                if (i > 0)
                        p = mempcpy(p, sep, sep_len);
                p = mempcpy(p, s->items[i].data, s->items[i].len);
        }
        *p = '\0';

        *ret = buf;
        *ret_len = total;
        return 0;
}

void value_set_done(ValueSet *s) {
        free(s->data);
        free(s->items);
        *s = (ValueSet) {};
}

static int emit_sorted(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                       mrkv_values *values, bool distinct, bool with_count, const char *sep) {
        ValueSet s = {};
        char prefix[24] = "", *line = NULL;
        size_t line_len;
        int r;

        r = value_set_collect(&s, host, values);
        if (r >= 0) {
                value_set_sort(&s);
                if (distinct)
                        value_set_unique(&s);
                if (with_count)
                        snprintf(prefix, sizeof(prefix), "%zu ", s.n);
                r = value_set_join(&s, prefix, sep, &line, &line_len);
        }
        if (r >= 0)
                r = host->emit(out, key, key_len, line, line_len);

        free(line);
        value_set_done(&s);
        return r;
}

int emit_sorted_values(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                       mrkv_values *values, bool with_count, const char *sep) {
        return emit_sorted(host, out, key, key_len, values, false, with_count, sep);
}

int emit_sorted_distinct_values(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                                mrkv_values *values, bool with_count, const char *sep) {
        return emit_sorted(host, out, key, key_len, values, true, with_count, sep);
}

int emit_distinct_values(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                         mrkv_values *values) {
        ValueSet s = {};
        int r;

        r = value_set_collect(&s, host, values);
        if (r >= 0) {
                value_set_sort(&s);
                value_set_unique(&s);
                for (size_t i = 0; i < s.n && r >= 0; i++)
                        r = host->emit(out, key, key_len, s.items[i].data, s.items[i].len);
        }
        value_set_done(&s);
        return r;
}

int emit_value_sum(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                   mrkv_values *values) {
        const char *v;
        size_t l;
        uint64_t sum = 0, repeat;
        int r;

        /* A run at a time: a host keeps map's "1"s of a key as one run. */
        while ((r = mrkv_next_run(host, values, &v, &l, &repeat)) > 0) {
                uint64_t n = 0;

                if (l == 1 && v[0] == '1')
                        n = 1;
                else {
                        if (l == 0 || l > 19)
                                return -EBADMSG;
                        for (size_t i = 0; i < l; i++) {
                                if (v[i] < '0' || v[i] > '9')
                                        return -EBADMSG;
                                n = n * 10 + (uint64_t) (v[i] - '0');
                        }
                }
                if (n > 0 && (n > INT64_MAX || repeat > (INT64_MAX - sum) / n))
                        return -EOVERFLOW;
                sum += n * repeat;
        }
        if (r < 0)
                return r;
        return emit_number(host, out, key, key_len, (int64_t) sum);
}

int emit_value_count(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                     mrkv_values *values) {
        const char *v;
        size_t l;
        int64_t count = 0;
        int r;

        while ((r = host->next_value(values, &v, &l)) > 0)
                count++;
        if (r < 0)
                return r;
        return emit_number(host, out, key, key_len, count);
}
