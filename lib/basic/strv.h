/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdlib.h>

/* NULL-terminated string vectors, as sd-bus hands them out. */

static inline size_t strv_length(char *const *v) {
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

static inline char **strv_free(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
        return NULL;
}

static inline void strv_freep(char ***v) {
        *v = strv_free(*v);
}
#define _cleanup_strv_free_ __attribute__((cleanup(strv_freep)))
