/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "macro.h"
#include "merge.h"

static int reader_cmp(const GroupMerge *m, unsigned a, unsigned b) {
        const GroupReader *x = &m->readers[a], *y = &m->readers[b];
        size_t n = MIN(x->key_len, y->key_len);
        int c;

        if (m->partitions && m->partitions[a] != m->partitions[b])
                return m->partitions[a] < m->partitions[b] ? -1 : 1;
        c = n > 0 ? memcmp(x->key, y->key, n) : 0;
        if (c != 0)
                return c;
        if (x->key_len != y->key_len)
                return x->key_len < y->key_len ? -1 : 1;
        return a < b ? -1 : a > b;
}

static void heap_down(GroupMerge *m, unsigned i) {
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

void group_merge_push(GroupMerge *m, unsigned reader) {
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

unsigned group_merge_pop(GroupMerge *m) {
        unsigned top = m->heap[0];

        m->heap[0] = m->heap[--m->n_heap];
        if (m->n_heap > 0)
                heap_down(m, 0);
        return top;
}

int group_merge_take_run(GroupMerge *m, const unsigned *members, unsigned n_members, unsigned *current,
                         uint64_t *repeat, const char **value, size_t *value_len) {
        for (; *current < n_members; (*current)++) {
                int r = group_reader_take_run(&m->readers[members[*current]], repeat, value, value_len);
                if (r != 0)
                        return r;
        }
        return 0;
}
