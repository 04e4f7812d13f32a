/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A plugin built for ABI 1.0, before combine: its app description is a copy of that
 * header's struct, which ends after reduce. A host of ABI 1.1 loads it, and must not read
 * combine past its end. */
#include <string.h>

#include "mrkv/app.h"

typedef struct mrkv_app_1_0 {
        uint32_t abi_version;
        uint32_t struct_size;
        const char *name;
        const char *description;
        int (*map)(const mrkv_host *host, mrkv_emitter *out, const char *filename, const char *contents,
                   size_t size);
        int (*reduce)(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                      mrkv_values *values);
} mrkv_app_1_0;

static int map(const mrkv_host *host, mrkv_emitter *out, const char *filename, const char *contents, size_t size) {
        return host->emit(out, "files", 5, filename, strlen(filename));
}

static int reduce(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len, mrkv_values *values) {
        const char *v;
        size_t l;
        char n = '0';
        int r;

        while ((r = host->next_value(values, &v, &l)) > 0)
                n++;
        return r < 0 ? r : host->emit(out, key, key_len, &n, 1);
}

__attribute__((visibility("default"))) const mrkv_app *mrkv_app_get(void) {
        /* Followed by bytes a host must not take for a combine function. */
        static const struct {
                mrkv_app_1_0 app;
                const void *poison;
        } app = {
                .app = {
                        .abi_version = MRKV_APP_ABI_VERSION,
                        .struct_size = sizeof(mrkv_app_1_0),
                        .name = "abi-1-0",
                        .map = map,
                        .reduce = reduce,
                },
                .poison = (const void *) 1,
        };
        return (const mrkv_app *) &app;
}
