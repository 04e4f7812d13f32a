/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A plugin built for an app ABI this host does not speak: the loader must refuse it
 * before calling anything in it. */
#include "mrkv/app.h"

static int never_map(const mrkv_host *host, mrkv_emitter *out, const char *filename, const char *contents,
                     size_t size) {
        __builtin_trap();
}

static int never_reduce(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                        mrkv_values *values) {
        __builtin_trap();
}

__attribute__((visibility("default"))) const mrkv_app *mrkv_app_get(void) {
        static const mrkv_app app = {
                .abi_version = 999,
                .struct_size = sizeof(mrkv_app),
                .name = "bad-abi",
                .map = never_map,
                .reduce = never_reduce,
        };
        return &app;
}
