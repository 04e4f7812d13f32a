/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "app-host.h"
#include "intermediate.h"
#include "macro.h"
#include "merge.h"
#include "output.h"
#include "reducetask.h"
#include "streaming.h"

/* What the read buffers of all inputs may take together, and the bounds for one. */
#define READ_BUDGET (8U * 1024U * 1024U)
#define READ_BUFFER_MIN (4U * 1024U)
#define READ_BUFFER_MAX (64U * 1024U)

/* The values of one key: the groups of that key in each input holding it, in order. */
struct mrkv_values {
        GroupMerge *merge;
        unsigned *members; /* readers positioned at this key, by input index */
        unsigned n_members, current;
        int error;
};

struct mrkv_emitter {
        OutputFile *out;
        TaskCounters *counters;
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

static int reduce_next_run(mrkv_values *v, const char **value, size_t *value_len, uint64_t *repeat) {
        int r = group_merge_take_run(v->merge, v->members, v->n_members, &v->current, repeat, value, value_len);

        if (r < 0) {
                v->error = r;
                v->n_members = 0; /* nothing more to hand out */
        }
        return r != 0 ? r : v->error;
}

static int reduce_emit(mrkv_emitter *e, const char *key, size_t key_len, const char *value, size_t value_len) {
        if (!app_emit_valid(key, key_len, value, value_len))
                return -EINVAL;
        (void) output_file_write(e->out, key, key_len);
        (void) output_file_write(e->out, " ", 1);
        (void) output_file_write(e->out, value, value_len);
        e->counters->reduce_output_records++;
        return output_file_write(e->out, "\n", 1);
}

static const mrkv_host reduce_host = {
        .abi_version = MRKV_APP_ABI_VERSION,
        .struct_size = sizeof(mrkv_host),
        .emit = reduce_emit,
        .next_value = reduce_next_value,
        .next_run = reduce_next_run,
};

static int fail(char **ret_error, int r, const char *what, const char *name) {
        errno = -r;
        free(*ret_error);
        asprintf_or_null(ret_error, "%s %s: %m", what, name);
        return r;
}

/* A task's merge: its inputs' readers, and the key being reduced. */
typedef struct Reduce {
        const ReduceTask *task;
        GroupMerge m;
        unsigned *members; /* the readers positioned at the key, by input index */
        unsigned n_members;
        char *key;
        size_t key_len, key_allocated;
        OutputFile out;
        char **error;
} Reduce;

/* Moves to the next key: 1 and its members popped, 0 at the end, or -errno. */
static int reduce_next_key(Reduce *d) {
        size_t key_len;

        if (d->m.n_heap == 0)
                return 0;

        /* Reading values moves the readers' buffers: keep the key apart. */
        key_len = d->m.readers[d->m.heap[0]].key_len;
        if (key_len + 1 > d->key_allocated) {
                char *k = realloc(d->key, key_len + 1);
                if (!k)
                        return -ENOMEM;
                d->key = k;
                d->key_allocated = key_len + 1;
        }
        memcpy(d->key, d->m.readers[d->m.heap[0]].key, key_len);
        d->key[key_len] = '\0';
        d->key_len = key_len;

        /* Equal keys pop in input order (the heap breaks ties by index). */
        d->n_members = 0;
        while (d->m.n_heap > 0 && group_merge_same_key(&d->m, d->m.heap[0], d->key, key_len)) {
                unsigned i = group_merge_pop(&d->m);
                d->members[d->n_members++] = i;
                d->task->counters->reduce_input_records += d->m.readers[i].values_left;
        }
        d->task->counters->reduce_input_groups++;
        return 1;
}

/* After a key: its members move on to their next keys. */
static int reduce_advance(Reduce *d) {
        for (unsigned i = 0; i < d->n_members; i++) {
                unsigned idx = d->members[i];
                int r = group_reader_next_key(&d->m.readers[idx]);
                if (r < 0)
                        return fail(d->error, r, "cannot read", d->task->inputs[idx]);
                if (r > 0)
                        group_merge_push(&d->m, idx);
        }
        d->n_members = 0;
        return 0;
}

static int reduce_with_app(Reduce *d) {
        mrkv_emitter e = { .out = &d->out, .counters = d->task->counters };
        int r;

        while ((r = reduce_next_key(d)) > 0) {
                mrkv_values v = { .merge = &d->m, .members = d->members, .n_members = d->n_members };

                r = d->task->app->reduce(&reduce_host, &e, d->key, d->key_len, &v);
                if (r >= 0)
                        r = v.error;
                if (r < 0) {
                        errno = -r;
                        free(*d->error);
                        asprintf_or_null(d->error, "reduce failed: %m");
                        return r;
                }
                r = reduce_advance(d);
                if (r < 0)
                        return r;
        }
        return r;
}

/* The streaming reducer's input: "key<TAB>value\n" lines, a buffer at a time. */
typedef struct ReduceStream {
        Reduce *reduce;
        bool in_key;
        unsigned current;
        char *buf;
        size_t size, allocated;
        bool newline; /* the output so far ends with a newline (or is empty) */
} ReduceStream;

#define STREAM_BUFFER (64U * 1024U)

static int stream_line(ReduceStream *s, const char *value, size_t value_len) {
        Reduce *d = s->reduce;
        size_t need = s->size + d->key_len + value_len + 2;

        if (memchr(d->key, '\t', d->key_len) || memchr(d->key, '\n', d->key_len) || memchr(d->key, '\0', d->key_len) ||
            memchr(value, '\t', value_len) || memchr(value, '\n', value_len) || memchr(value, '\0', value_len)) {
                free(*d->error);
                asprintf_or_null(d->error,
                                 "key '%.*s' or one of its values holds a TAB, newline or NUL byte, which the reducer's "
                                 "line format cannot carry",
                                 (int) MIN(d->key_len, (size_t) 80), d->key);
                return -EBADMSG;
        }
        if (need > s->allocated) {
                size_t a = MAX(need, s->allocated * 2);
                char *p = realloc(s->buf, a);
                if (!p)
                        return -ENOMEM;
                s->buf = p;
                s->allocated = a;
        }
        memcpy(s->buf + s->size, d->key, d->key_len);
        s->size += d->key_len;
        s->buf[s->size++] = '\t';
        memcpy(s->buf + s->size, value, value_len);
        s->size += value_len;
        s->buf[s->size++] = '\n';
        return 0;
}

static int stream_produce(void *userdata, const char **ret_data, size_t *ret_size) {
        ReduceStream *s = userdata;
        Reduce *d = s->reduce;
        const char *value;
        size_t value_len;
        int r;

        s->size = 0;
        while (s->size < STREAM_BUFFER) {
                if (!s->in_key) {
                        r = reduce_next_key(d);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                break;
                        s->in_key = true;
                        s->current = 0;
                }
                if (s->current == d->n_members) {
                        r = reduce_advance(d);
                        if (r < 0)
                                return r;
                        s->in_key = false;
                        continue;
                }
                r = group_reader_next_value(&d->m.readers[d->members[s->current]], &value, &value_len);
                if (r < 0)
                        return fail(d->error, r, "cannot read", d->task->inputs[d->members[s->current]]);
                if (r == 0) {
                        s->current++;
                        continue;
                }
                r = stream_line(s, value, value_len);
                if (r < 0)
                        return r;
        }
        *ret_data = s->buf;
        *ret_size = s->size;
        return s->size > 0;
}

static int stream_consume(void *userdata, const char *data, size_t size) {
        ReduceStream *s = userdata;
        Reduce *d = s->reduce;

        for (const char *p = data, *end = data + size; (p = memchr(p, '\n', (size_t) (end - p))); p++)
                d->task->counters->reduce_output_records++;
        s->newline = data[size - 1] == '\n';
        return output_file_write(&d->out, data, size);
}

static int reduce_streaming(Reduce *d) {
        ReduceStream s = { .reduce = d, .newline = true };
        int r;

        r = streaming_run("reducer", d->task->reducer, d->task->deadline, stream_produce, stream_consume, &s, d->error);
        /* Output lines end with a newline, also the last one a reducer left without. */
        if (r >= 0 && !s.newline) {
                d->task->counters->reduce_output_records++;
                r = output_file_write(&d->out, "\n", 1);
        }
        free(s.buf);
        return r;
}

int reduce_task_run(const ReduceTask *t, char **ret_error) {
        Reduce d = { .task = t, .out = { .fd = -EBADF }, .error = ret_error };
        unsigned n = t->n_inputs;
        size_t buffer_size;
        int r;

        *ret_error = NULL;

        d.m.readers = calloc(n, sizeof(GroupReader));
        d.m.heap = calloc(n, sizeof(unsigned));
        d.members = calloc(n, sizeof(unsigned));
        if (!d.m.readers || !d.m.heap || !d.members) {
                r = -ENOMEM;
                goto finish;
        }
        for (unsigned i = 0; i < n; i++)
                d.m.readers[i].fd = -EBADF;

        /* Many inputs share a fixed budget, so memory does not grow with the map count. */
        buffer_size = MIN(MAX(READ_BUDGET / MAX(n, 1U), READ_BUFFER_MIN), READ_BUFFER_MAX);
        for (unsigned i = 0; i < n; i++) {
                const char *reason;

                r = group_reader_open_partition(&d.m.readers[i], t->dir_fd, t->inputs[i], t->nreduce, t->partition,
                                                buffer_size, &reason);
                if (r < 0 && reason) {
                        asprintf_or_null(ret_error, "cannot read %s: %s", t->inputs[i], reason);
                        goto finish;
                }
                if (r >= 0) {
                        t->counters->shuffle_bytes += d.m.readers[i].file_size;
                        r = group_reader_next_key(&d.m.readers[i]);
                }
                if (r < 0) {
                        fail(ret_error, r, "cannot read", t->inputs[i]);
                        goto finish;
                }
                if (r > 0)
                        group_merge_push(&d.m, i);
        }

        r = output_file_open(&d.out, t->dir_fd, t->output);
        if (r < 0) {
                fail(ret_error, r, "cannot create", t->output);
                goto finish;
        }

        r = t->app ? reduce_with_app(&d) : reduce_streaming(&d);
        if (r < 0) {
                if (!*ret_error)
                        fail(ret_error, r, "cannot write", t->output);
                goto finish;
        }

        r = output_file_close(&d.out);
        if (r < 0)
                fail(ret_error, r, "cannot write", t->output);

finish:
        if (d.out.fd >= 0)
                (void) output_file_close(&d.out);
        if (d.m.readers)
                for (unsigned i = 0; i < n; i++)
                        group_reader_close(&d.m.readers[i]);
        free(d.m.readers);
        free(d.m.heap);
        free(d.members);
        free(d.key);
        return r;
}
