/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mrkv/app.h"

/* Small conveniences over host->emit() for the apps, which mostly emit C strings. */

static inline int emit_string(const mrkv_host *host, mrkv_emitter *out, const char *key, const char *value) {
        return host->emit(out, key, strlen(key), value, strlen(value));
}

static inline int emit_number(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                              int64_t value) {
        char buf[24];
        int l = snprintf(buf, sizeof(buf), "%" PRIi64, value);

        return host->emit(out, key, key_len, buf, (size_t) l);
}
