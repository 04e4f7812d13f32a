/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Gives each distinct string a small id, so that the model compares values as
 * integers. Strings are borrowed: they must outlive the table. */
typedef struct Interner {
        const char **strings; /* by id */
        size_t n, allocated;
        uint32_t *slots; /* id + 1, 0 when empty; open addressing, power-of-two size */
        size_t n_slots;
} Interner;

void interner_init(Interner *t);
void interner_done(Interner *t);

/* Returns 0 and the id of s (a new one if s was not seen), or -ENOMEM. */
int interner_intern(Interner *t, const char *s, uint32_t *ret);

static inline const char *interner_string(const Interner *t, uint32_t id) {
        return t->strings[id];
}
