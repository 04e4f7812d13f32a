/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "mrkv/app.h"

/* What every host of the app ABI (mrkv/app.h) checks in the calls an app makes: the
 * workers' map, combine and reduce tasks and mrkv-sequential's grouped engine. Inline:
 * emit() is called for every pair. */

/* An emit()'s key and value: NULL only with length 0. */
static inline bool app_emit_valid(const char *key, size_t key_len, const char *value, size_t value_len) {
        return (key || key_len == 0) && (value || value_len == 0);
}

/* Bytes an app passed, "" for an empty (possibly NULL) one. */
static inline const char *app_bytes(const char *p, size_t n) {
        return n > 0 ? p : "";
}

/* A combiner emits values of the key it combines only: another key would break the
 * order of the sorted output. */
static inline bool app_combine_key_valid(const char *key, size_t key_len, const char *own, size_t own_len) {
        return key_len == own_len && (key_len == 0 || memcmp(key, own, key_len) == 0);
}

/* next_value() of a map host: there are no values during map. */
static inline int app_map_next_value(mrkv_values *v, const char **value, size_t *value_len) {
        return -EINVAL;
}
