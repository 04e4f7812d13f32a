/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"
#include "macro.h"

static inline uint64_t load64(const void *p) {
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        return v;
}

static inline uint16_t load16(const void *p) {
        uint16_t v;
        memcpy(&v, p, sizeof(v));
        return v;
}

static inline uint64_t load32(const void *p) {
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        return v;
}

/* The 128-bit product of a and b, folded to 64 bits: one multiply mixes every input bit. */
static inline uint64_t mix(uint64_t a, uint64_t b) {
        unsigned __int128 r = (unsigned __int128) a * b;
        return (uint64_t) r ^ (uint64_t) (r >> 64);
}

/* wyhash's construction (public domain): keys are read 4 and 8 bytes at a time, with
 * overlapping reads for the tail, never beyond the key. A byte-at-a-time hash cost a
 * dependent multiply per byte, a third of the time of a word count. */
static inline uint64_t key_hash(const char *s, size_t n) {
        static const uint64_t k0 = UINT64_C(0xa0761d6478bd642f), k1 = UINT64_C(0xe7037ed1a0b428db),
                              k2 = UINT64_C(0x8ebc6af09c88c6e3);
        const uint8_t *p = (const uint8_t *) s;
        uint64_t a, b, seed = k0;

        if (_likely_(n <= 16)) {
                if (n >= 4) {
                        size_t m = (n >> 3) << 2; /* 0 or 4: the second read of each half */
                        a = load32(p) << 32 | load32(p + m);
                        b = load32(p + n - 4) << 32 | load32(p + n - 4 - m);
                } else if (n > 0) {
                        a = (uint64_t) p[0] << 16 | (uint64_t) p[n >> 1] << 8 | p[n - 1];
                        b = 0;
                } else
                        a = b = 0;
        } else {
                size_t i = n;

                for (; i > 16; i -= 16, p += 16)
                        seed = mix(load64(p) ^ k1, load64(p + 8) ^ seed);
                a = load64(p + i - 16);
                b = load64(p + i - 8);
        }
        return mix(k1 ^ n, mix(a ^ k1, b ^ seed ^ k2));
}

/* memcmp(a, b, n) == 0 for the short keys and values of most apps, without a call: keys
 * that get here have equal hashes and lengths, so they are nearly always equal. */
static inline bool bytes_equal(const void *x, const void *y, size_t n) {
        const uint8_t *a = x, *b = y;

        if (n >= 8) {
                for (size_t i = 0; i + 8 < n; i += 8)
                        if (load64(a + i) != load64(b + i))
                                return false;
                return load64(a + n - 8) == load64(b + n - 8);
        }
        if (n >= 4)
                return load32(a) == load32(b) && load32(a + n - 4) == load32(b + n - 4);
        if (n >= 2)
                return load16(a) == load16(b) && load16(a + n - 2) == load16(b + n - 2);
        return n == 0 || a[0] == b[0];
}

/* What malloc() keeps beside a block, roughly; it counts for many small value buffers. */
#define MALLOC_OVERHEAD 16

/* Whether growing by size bytes keeps g within its budget. An empty g may always grow: a
 * first key and value must fit somewhere. */
static bool groups_may_grow(const Groups *g, size_t size) {
        return g->budget == 0 || g->n_groups == 0 || g->memory + size <= g->budget;
}

/* The first table and group array: small enough for a small budget to hold many groups. */
static size_t initial_groups(const Groups *g) {
        return g->budget == 0 ? 1024 : MIN((size_t) 1024, MAX((size_t) 64, g->budget / 8 / sizeof(Group)));
}

static size_t initial_slots(const Groups *g) {
        size_t n = 128;

        while (n < 4 * initial_groups(g))
                n *= 2;
        return n;
}

void groups_set_budget(Groups *g, size_t budget, int (*full)(void *userdata), void *userdata) {
        g->budget = budget;
        g->full = full;
        g->userdata = userdata;
        /* Key chunks small enough that a small budget is not one chunk already. */
        g->keys.chunk_size = budget == 0 ? 0 : MIN(MAX(budget / 16, (size_t) 4096), (size_t) 1024 * 1024);
}

static int groups_resize(Groups *g, size_t n_slots) {
        uint32_t *slots = calloc(n_slots, sizeof(uint32_t));

        if (!slots)
                return -ENOMEM;
        g->memory += (n_slots - (g->slots ? g->mask + 1 : 0)) * sizeof(uint32_t);
        for (size_t i = 0; i < g->n_groups; i++) {
                size_t j = g->groups[i].hash & (n_slots - 1);

                while (slots[j] != 0)
                        j = (j + 1) & (n_slots - 1);
                slots[j] = (uint32_t) (i + 1);
        }
        free(g->slots);
        g->slots = slots;
        g->mask = n_slots - 1;
        return 0;
}

/* Finds key's group: NULL if it has none. Inline, in the path of every pair. */
static inline Group *groups_find(const Groups *g, const char *key, size_t key_len, uint64_t h) {
        if (_unlikely_(!g->slots))
                return NULL;
        for (size_t i = h & g->mask; g->slots[i] != 0; i = (i + 1) & g->mask) {
                Group *group = &g->groups[g->slots[i] - 1];
                if (group->hash == h && group->key_len == key_len && bytes_equal(group->key, key, key_len))
                        return group;
        }
        return NULL;
}

/* Adds a group for key, which has none, with hash h: 0 and *ret, -ENOMEM, or -ENOBUFS
 * (over the budget). Out of line, so that the path of a key seen before stays short. */
static _noinline_ int groups_insert(Groups *g, const char *key, size_t key_len, uint64_t h, Group **ret) {
        bool grow_slots, grow_groups;
        size_t i = 0, growth;
        Group *group;

        if (g->slots)
                for (i = h & g->mask; g->slots[i] != 0; i = (i + 1) & g->mask)
                        ;
        if (g->n_groups >= UINT32_MAX - 1)
                return -ENOMEM;
        /* Keep the table at most half full, so probes stay short. */
        grow_slots = !g->slots || (g->n_groups + 1) * 2 > g->mask + 1;
        grow_groups = g->n_groups >= g->n_allocated;
        if (g->budget > 0) {
                growth = arena_growth(&g->keys, key_len) +
                         (grow_slots ? (g->slots ? (g->mask + 1) * 2 : initial_slots(g)) * sizeof(uint32_t) : 0) +
                         (grow_groups ? (g->n_allocated > 0 ? g->n_allocated : initial_groups(g)) * sizeof(Group) : 0);
                if (growth > 0 && !groups_may_grow(g, growth))
                        return -ENOBUFS;
        }

        if (grow_slots) {
                if (groups_resize(g, g->slots ? (g->mask + 1) * 2 : initial_slots(g)) < 0)
                        return -ENOMEM;
                for (i = h & g->mask; g->slots[i] != 0; i = (i + 1) & g->mask)
                        ;
        }
        if (grow_groups) {
                size_t n = g->n_allocated > 0 ? g->n_allocated * 2 : initial_groups(g);
                Group *p = realloc(g->groups, n * sizeof(Group));

                if (!p)
                        return -ENOMEM;
                g->memory += (n - g->n_allocated) * sizeof(Group);
                g->groups = p;
                g->n_allocated = n;
        }

        group = &g->groups[g->n_groups];
        if (g->n_groups < g->n_initialized)
                /* A group of an earlier use: keep its value buffer. */
                *group = (Group) {
                        .key_len = key_len,
                        .hash = h,
                        .values = group->values,
                        .values_allocated = group->values_allocated,
                };
        else {
                *group = (Group) { .key_len = key_len, .hash = h };
                g->n_initialized = g->n_groups + 1;
        }
        g->memory -= g->keys.allocated;
        group->key = arena_dup(&g->keys, key, key_len);
        g->memory += g->keys.allocated;
        if (!group->key)
                return -ENOMEM;
        g->slots[i] = (uint32_t) ++g->n_groups;
        *ret = group;
        return 0;
}

/* The same value again extends the last run: true if it did. */
static inline bool group_repeat(Group *group, const char *value, size_t value_len) {
        uint32_t repeat;

        if (group->last_run == 0 || group->last_len != value_len ||
            !bytes_equal(group->values + group->last_value, value, value_len))
                return false;
        memcpy(&repeat, group->values + group->last_run - 1, sizeof(repeat));
        if (_unlikely_(repeat == UINT32_MAX))
                return false;
        repeat++;
        memcpy(group->values + group->last_run - 1, &repeat, sizeof(repeat));
        group->n_values++;
        return true;
}

/* Appends value to group; -ENOBUFS (nothing changed) if growing its buffer would take g
 * over its budget. g may be NULL: no budget. */
static int group_add_value(Groups *g, Group *group, const char *value, size_t value_len) {
        size_t need;
        uint8_t *p;

        if (group_repeat(group, value, value_len))
                return 0;

        if (value_len > SIZE_MAX / 4 - group->values_size)
                return -ENOMEM;
        /* A u32 count, and a size_t takes at most 10 LEB128 bytes. */
        need = group->values_size + sizeof(uint32_t) + 10 + value_len;
        if (need > group->values_allocated) {
                size_t n = group->values_allocated > 0 ? group->values_allocated : 16;

                while (n < need)
                        n *= 2;
                /* The only group may always grow: it holds the value being added. */
                if (g && g->n_groups > 1 &&
                    !groups_may_grow(g, n - group->values_allocated + (group->values ? 0 : MALLOC_OVERHEAD)))
                        return -ENOBUFS;
                p = realloc(group->values, n);
                if (!p)
                        return -ENOMEM;
                if (g)
                        g->memory += n - group->values_allocated + (group->values ? 0 : MALLOC_OVERHEAD);
                group->values = p;
                group->values_allocated = n;
        }

        p = group->values + group->values_size;
        group->last_run = group->values_size + 1;
        memcpy(p, &(uint32_t) { 1 }, sizeof(uint32_t));
        p += sizeof(uint32_t);
        for (size_t l = value_len;; l >>= 7) {
                if (l < 0x80) {
                        *p++ = (uint8_t) l;
                        break;
                }
                *p++ = (uint8_t) (l | 0x80);
        }
        if (value_len > 0)
                memcpy(p, value, value_len);
        group->last_value = (size_t) (p - group->values);
        group->last_len = value_len;
        group->values_size = group->last_value + value_len;
        group->n_values++;
        return 0;
}

int group_append(Group *group, const char *value, size_t value_len) {
        return group_add_value(NULL, group, value, value_len);
}

/* A pair that is not a repeat of its key's last value: a new key, a new value, or one
 * that takes g over its budget. Out of line, so that the path of a repeat stays short. */
static _noinline_ int groups_add_slow(Groups *g, const char *key, size_t key_len, const char *value,
                                      size_t value_len, uint64_t h) {
        Group *group = groups_find(g, key, key_len, h);
        int r;

        if (group)
                r = group_add_value(g, group, value, value_len);
        else {
                r = groups_insert(g, key, key_len, h, &group);
                if (r >= 0) {
                        r = group_add_value(g, group, value, value_len);
                        if (r == -ENOBUFS && group->n_values == 0) {
                                /* A new key without its value: take it out again, so a spill
                                 * does not write a group of no values. It is the last group, in
                                 * the last slot taken. */
                                size_t i;

                                for (i = h & g->mask; g->slots[i] != (uint32_t) g->n_groups; i = (i + 1) & g->mask)
                                        ;
                                g->slots[i] = 0;
                                g->n_groups--;
                        }
                }
        }
        if (r == -ENOBUFS && g->full) {
                /* Written out and emptied: the add fits now. */
                r = g->full(g->userdata);
                if (r < 0)
                        return r;
                assert(g->n_groups == 0);
                return groups_add(g, key, key_len, value, value_len);
        }
        return r;
}

int groups_add(Groups *g, const char *key, size_t key_len, const char *value, size_t value_len) {
        uint64_t h = key_hash(key, key_len);
        Group *group;

        /* A word count's (word, "1") again, nearly every pair of it; every other path is a
         * tail call, so this one needs no stack frame. */
        group = groups_find(g, key, key_len, h);
        if (_likely_(group && group_repeat(group, value, value_len)))
                return 0;
        return groups_add_slow(g, key, key_len, value, value_len, h);
}

int group_next_run(const Group *group, size_t *pos, uint32_t *repeat, const char **value, size_t *value_len) {
        const uint8_t *p = group->values + *pos;
        size_t l = 0;

        if (*pos >= group->values_size)
                return 0;

        memcpy(repeat, p, sizeof(uint32_t));
        p += sizeof(uint32_t);
        for (unsigned shift = 0;; shift += 7) {
                l |= (size_t) (*p & 0x7f) << shift;
                if (!(*p++ & 0x80))
                        break;
        }

        *value = (const char *) p;
        *value_len = l;
        *pos = (size_t) (p - group->values) + l;
        return 1;
}

int group_next_value(const Group *group, GroupIter *it, const char **value, size_t *value_len) {
        if (it->left == 0) {
                uint32_t repeat;

                if (group_next_run(group, &it->pos, &repeat, &it->value, &it->value_len) == 0)
                        return 0;
                it->left = repeat;
        }
        it->left--;
        *value = it->value;
        *value_len = it->value_len;
        return 1;
}

int group_next_repeat(const Group *group, GroupIter *it, const char **value, size_t *value_len, uint64_t *repeat) {
        if (it->left == 0 && group_next_run(group, &it->pos, &it->left, &it->value, &it->value_len) == 0)
                return 0;
        *repeat = it->left;
        it->left = 0;
        *value = it->value;
        *value_len = it->value_len;
        return 1;
}

/* A group and the first 8 bytes of its key as a big-endian number (zero-padded): most
 * comparisons of a sort are settled by that number, without a call or the key's memory. */
typedef struct SortEntry {
        uint64_t prefix;
        const Group *group;
} SortEntry;

static uint64_t key_prefix(const char *key, size_t key_len) {
        uint8_t b[8] = {};

        memcpy(b, key, MIN(key_len, sizeof(b)));
        return (uint64_t) b[0] << 56 | (uint64_t) b[1] << 48 | (uint64_t) b[2] << 40 | (uint64_t) b[3] << 32 |
               (uint64_t) b[4] << 24 | (uint64_t) b[5] << 16 | (uint64_t) b[6] << 8 | b[7];
}

static int sort_entry_compare(const void *a, const void *b) {
        const SortEntry *x = a, *y = b;
        int c;

        if (x->prefix != y->prefix)
                return x->prefix < y->prefix ? -1 : 1;
        c = memcmp(x->group->key, y->group->key, MIN(x->group->key_len, y->group->key_len));
        if (c != 0)
                return c;
        return x->group->key_len < y->group->key_len ? -1 : x->group->key_len > y->group->key_len;
}

/* Sorts entries by prefix, stably: a radix sort, a byte a pass from the last, skipping
 * bytes that are the same in every entry; tmp has room for n. Returns where the sorted
 * entries are, entries or tmp. No comparison calls and no element copies through
 * memcpy(), which made glibc's qsort() 14 % of a worker's instructions on the lab's job. */
static SortEntry *sort_by_prefix(SortEntry *entries, SortEntry *tmp, size_t n) {
        for (unsigned shift = 0; shift < 64 && n > 1; shift += 8) {
                size_t count[256] = {}, pos = 0;
                SortEntry *t;

                for (size_t i = 0; i < n; i++)
                        count[(entries[i].prefix >> shift) & 0xff]++;
                if (count[(entries[0].prefix >> shift) & 0xff] == n)
                        continue;
                for (size_t b = 0; b < 256; b++) {
                        size_t c = count[b];
                        count[b] = pos;
                        pos += c;
                }
                for (size_t i = 0; i < n; i++)
                        tmp[count[(entries[i].prefix >> shift) & 0xff]++] = entries[i];
                t = entries;
                entries = tmp;
                tmp = t;
        }
        return entries;
}

int groups_sorted(const Groups *g, const Group ***ret) {
        size_t n = g->n_groups;
        _cleanup_free_ SortEntry *entries = malloc(MAX(n, (size_t) 1) * 2 * sizeof(SortEntry));
        const Group **index = malloc(MAX(n, (size_t) 1) * sizeof(Group *));
        SortEntry *sorted;

        if (!entries || !index) {
                free(index);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                entries[i] = (SortEntry) {
                        .prefix = key_prefix(g->groups[i].key, g->groups[i].key_len),
                        .group = &g->groups[i],
                };
        sorted = sort_by_prefix(entries, entries + n, n);
        /* Keys that share their first eight bytes (or are shorter and equal in them) are
         * ordered by the whole key. */
        for (size_t i = 0, j; i < n; i = j) {
                for (j = i + 1; j < n && sorted[j].prefix == sorted[i].prefix; j++)
                        ;
                if (j - i > 1)
                        qsort(sorted + i, j - i, sizeof(SortEntry), sort_entry_compare);
        }
        for (size_t i = 0; i < n; i++)
                index[i] = sorted[i].group;

        *ret = index;
        return 0;
}

void groups_reset(Groups *g) {
        g->n_groups = 0;
        if (g->slots)
                memset(g->slots, 0, (g->mask + 1) * sizeof(uint32_t));
        g->memory -= g->keys.allocated;
        arena_reset(&g->keys);
        g->memory += g->keys.allocated;
}

void groups_done(Groups *g) {
        Groups keep = { .budget = g->budget, .full = g->full, .userdata = g->userdata };

        for (size_t i = 0; i < g->n_initialized; i++)
                free(g->groups[i].values);
        free(g->groups);
        free(g->slots);
        arena_done(&g->keys);
        *g = (Groups) {};
        groups_set_budget(g, keep.budget, keep.full, keep.userdata);
}
