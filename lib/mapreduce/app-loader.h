/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"
#include "mrkv/app.h"

/* A MapReduce app plugin loaded into this process (see mrkv/app.h for the ABI). */
typedef struct App {
        void *dl;
        const mrkv_app *app;
        char *path; /* the file actually loaded */
        char *spec; /* as asked for */
} App;

/* Loads an app. A spec containing a '/' is a path ("./wc.so", "/x/y.so"); a bare name
 * ("wc" or "wc.so") is looked up in each directory of $MRKV_APP_PATH (colon-separated),
 * then in MRKV_APPDIR. Every failure is logged once, naming the file and the reason, and
 * returns -errno: -ENOENT not found, -ENOEXEC not loadable or not an mrkv app, -EPROTO
 * built for another ABI, -EINVAL an app description without map or reduce. */
int app_load(const char *spec, App **ret);

App *app_free(App *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(App *, app_free);
