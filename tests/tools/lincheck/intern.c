/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck-intern.h"
#include "macro.h"

static uint64_t string_hash(const char *s) {
        /* FNV-1a: values are short, and the table only needs a fair spread. */
        uint64_t h = UINT64_C(14695981039346656037);

        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= UINT64_C(1099511628211);
        }
        return h;
}

void interner_init(Interner *t) {
        *t = (Interner) {};
}

void interner_done(Interner *t) {
        free(t->strings);
        free(t->slots);
        *t = (Interner) {};
}

static int interner_grow(Interner *t) {
        size_t n = MAX(t->n_slots * 2, (size_t) 64);
        uint32_t *slots = calloc(n, sizeof(uint32_t));

        if (!slots)
                return -ENOMEM;
        for (size_t id = 0; id < t->n; id++) {
                size_t i = string_hash(t->strings[id]) & (n - 1);

                while (slots[i] != 0)
                        i = (i + 1) & (n - 1);
                slots[i] = (uint32_t) id + 1;
        }
        free(t->slots);
        t->slots = slots;
        t->n_slots = n;
        return 0;
}

int interner_intern(Interner *t, const char *s, uint32_t *ret) {
        size_t i;
        int r;

        /* Keep the load factor at most 1/2 so that probes stay short. */
        if ((t->n + 1) * 2 > t->n_slots) {
                r = interner_grow(t);
                if (r < 0)
                        return r;
        }

        for (i = string_hash(s) & (t->n_slots - 1); t->slots[i] != 0; i = (i + 1) & (t->n_slots - 1))
                if (streq(t->strings[t->slots[i] - 1], s)) {
                        *ret = t->slots[i] - 1;
                        return 0;
                }

        if (t->n >= UINT32_MAX - 1)
                return -E2BIG;
        if (t->n == t->allocated) {
                size_t n = MAX(t->allocated * 2, (size_t) 64);
                const char **strings = reallocarray(t->strings, n, sizeof(char *));

                if (!strings)
                        return -ENOMEM;
                t->strings = strings;
                t->allocated = n;
        }
        t->strings[t->n] = s;
        t->slots[i] = (uint32_t) t->n + 1;
        *ret = (uint32_t) t->n++;
        return 0;
}
