/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An app with a map but no reduce function. */
#include "mrkv/app.h"

static int some_map(const mrkv_host *host, mrkv_emitter *out, const char *filename, const char *contents,
                    size_t size) {
        return 0;
}

MRKV_APP_DEFINE("no-reduce", "test plugin without reduce", some_map, NULL)
