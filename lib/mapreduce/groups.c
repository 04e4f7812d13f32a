/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "groups.h"

static uint64_t key_hash(const char *s, size_t n) {
        uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a ... */

        for (size_t i = 0; i < n; i++) {
                h ^= (unsigned char) s[i];
                h *= UINT64_C(1099511628211);
        }
        /* ... and a final avalanche, since the table uses the low bits only. */
        h ^= h >> 33;
        h *= UINT64_C(0xff51afd7ed558ccd);
        h ^= h >> 33;
        return h;
}

static int groups_resize(Groups *g, size_t n_slots) {
        uint32_t *slots = calloc(n_slots, sizeof(uint32_t));

        if (!slots)
                return -ENOMEM;
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

static Group *groups_find_or_add(Groups *g, const char *key, size_t key_len) {
        uint64_t h = key_hash(key, key_len);
        size_t i;
        Group *group;

        for (i = g->slots ? h & g->mask : 0; g->slots && g->slots[i] != 0; i = (i + 1) & g->mask) {
                group = &g->groups[g->slots[i] - 1];
                if (group->hash == h && group->key_len == key_len && memcmp(group->key, key, key_len) == 0)
                        return group;
        }

        if (g->n_groups >= UINT32_MAX - 1)
                return NULL;
        /* Keep the table at most half full, so probes stay short. */
        if (!g->slots || (g->n_groups + 1) * 2 > g->mask + 1) {
                if (groups_resize(g, g->slots ? (g->mask + 1) * 2 : 4096) < 0)
                        return NULL;
                for (i = h & g->mask; g->slots[i] != 0; i = (i + 1) & g->mask)
                        ;
        }
        if (g->n_groups >= g->n_allocated) {
                size_t n = g->n_allocated > 0 ? g->n_allocated * 2 : 1024;
                Group *p = realloc(g->groups, n * sizeof(Group));

                if (!p)
                        return NULL;
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
        group->key = arena_dup(&g->keys, key, key_len);
        if (!group->key)
                return NULL;
        g->slots[i] = (uint32_t) ++g->n_groups;
        return group;
}

int groups_add(Groups *g, const char *key, size_t key_len, const char *value, size_t value_len) {
        size_t need;
        uint8_t *p;
        Group *group;

        group = groups_find_or_add(g, key, key_len);
        if (!group)
                return -ENOMEM;

        /* The same value again extends the last run. */
        if (group->last_run > 0 && group->last_len == value_len &&
            memcmp(group->values + group->last_value, value, value_len) == 0) {
                uint32_t repeat;

                memcpy(&repeat, group->values + group->last_run - 1, sizeof(repeat));
                if (repeat < UINT32_MAX) {
                        repeat++;
                        memcpy(group->values + group->last_run - 1, &repeat, sizeof(repeat));
                        group->n_values++;
                        return 0;
                }
        }

        if (value_len > SIZE_MAX / 4 - group->values_size)
                return -ENOMEM;
        /* A u32 count, and a size_t takes at most 10 LEB128 bytes. */
        need = group->values_size + sizeof(uint32_t) + 10 + value_len;
        if (need > group->values_allocated) {
                size_t n = group->values_allocated > 0 ? group->values_allocated : 16;

                while (n < need)
                        n *= 2;
                p = realloc(group->values, n);
                if (!p)
                        return -ENOMEM;
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

static int group_compare(const void *a, const void *b) {
        const Group *x = *(const Group *const *) a, *y = *(const Group *const *) b;
        int c = memcmp(x->key, y->key, x->key_len < y->key_len ? x->key_len : y->key_len);

        if (c != 0)
                return c;
        return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

int groups_sorted(const Groups *g, const Group ***ret) {
        const Group **index = malloc((g->n_groups > 0 ? g->n_groups : 1) * sizeof(Group *));

        if (!index)
                return -ENOMEM;
        for (size_t i = 0; i < g->n_groups; i++)
                index[i] = &g->groups[i];
        qsort(index, g->n_groups, sizeof(Group *), group_compare);

        *ret = index;
        return 0;
}

void groups_reset(Groups *g) {
        g->n_groups = 0;
        if (g->slots)
                memset(g->slots, 0, (g->mask + 1) * sizeof(uint32_t));
        arena_reset(&g->keys);
}

void groups_done(Groups *g) {
        for (size_t i = 0; i < g->n_initialized; i++)
                free(g->groups[i].values);
        free(g->groups);
        free(g->slots);
        arena_done(&g->keys);
        *g = (Groups) {};
}
