/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A plugin whose app description is shorter than this ABI's: reading map or reduce
 * from it would read past its end. */
#include "mrkv/app.h"

__attribute__((visibility("default"))) const mrkv_app *mrkv_app_get(void) {
        static const mrkv_app app = {
                .abi_version = MRKV_APP_ABI_VERSION,
                .struct_size = 8,
        };
        return &app;
}
