/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <string.h>

#include "mrkv/app.h"

/* Small conveniences over host->emit() for the apps, which mostly emit C strings. */

static inline int emit_string(const mrkv_host *host, mrkv_emitter *out, const char *key, const char *value) {
        return host->emit(out, key, strlen(key), value, strlen(value));
}

/* Emits value in decimal. Without snprintf(): a word count's reduce and combine emit one
 * number per key, and formatting it took longer than the rest of their work. */
static inline int emit_number(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                              int64_t value) {
        char buf[24], *p = buf + sizeof(buf);
        uint64_t v = value < 0 ? -(uint64_t) value : (uint64_t) value;

        do
                *--p = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        if (value < 0)
                *--p = '-';
        return host->emit(out, key, key_len, p, (size_t) (buf + sizeof(buf) - p));
}
