/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app-loader.h"
#include "config.h"
#include "log.h"

App *app_free(App *a) {
        if (!a)
                return NULL;
        if (a->dl)
                dlclose(a->dl);
        free(a->path);
        free(a->spec);
        free(a);
        return NULL;
}

static bool is_regular_file(const char *path) {
        struct stat st;

        return stat(path, &st) >= 0 && S_ISREG(st.st_mode);
}

static int append_dir(char **list, size_t *len, const char *dir, size_t dir_len) {
        size_t need = *len + (*len > 0 ? 2 : 0) + dir_len + 1;
        char *n = realloc(*list, need);

        if (!n)
                return -ENOMEM;
        if (*len > 0) {
                memcpy(n + *len, ", ", 2);
                *len += 2;
        }
        memcpy(n + *len, dir, dir_len);
        *len += dir_len;
        n[*len] = '\0';
        *list = n;
        return 0;
}

/* Finds a bare app name in $MRKV_APP_PATH, then MRKV_APPDIR. On failure the error names
 * every directory tried, since "not found" alone leaves the user guessing where we looked. */
static int app_find(const char *spec, char **ret) {
        _cleanup_free_ char *name = NULL, *searched = NULL;
        size_t searched_len = 0, n = strlen(spec);
        const char *env = getenv("MRKV_APP_PATH");
        const char *dirs[2] = { env ?: "", MRKV_APPDIR };
        int r;

        if (n >= 3 && streq(spec + n - 3, ".so"))
                name = strdup(spec);
        else if (asprintf(&name, "%s.so", spec) < 0)
                name = NULL;
        if (!name)
                return log_oom();

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++)
                for (const char *p = dirs[i]; *p;) {
                        size_t l = strcspn(p, ":");
                        _cleanup_free_ char *path = NULL;

                        if (l > 0) {
                                if (asprintf(&path, "%.*s/%s", (int) l, p, name) < 0)
                                        return log_oom();
                                if (is_regular_file(path)) {
                                        *ret = TAKE_PTR(path);
                                        return 0;
                                }
                                r = append_dir(&searched, &searched_len, p, l);
                                if (r < 0)
                                        return log_oom();
                        }
                        p += l;
                        if (*p == ':')
                                p++;
                }

        return log_error_errno(ENOENT, "App %s not found: no %s in %s (set $MRKV_APP_PATH or give a path).",
                               spec, name, searched ?: "(no directories)");
}

/* The file an app spec names: a path as given (a regular file), else a name searched
 * for in the app directories. */
static int app_resolve(const char *spec, char **ret) {
        struct stat st;

        if (!strchr(spec, '/'))
                return app_find(spec, ret);

        if (stat(spec, &st) < 0)
                return log_error_errno(errno, "Cannot load app %s: %m", spec);
        if (!S_ISREG(st.st_mode))
                return log_error_errno(ENOEXEC, "Cannot load app %s: not a regular file.", spec);
        *ret = strdup(spec);
        return *ret ? 0 : log_oom();
}

/* abi_version and struct_size lead every version of the struct; they are checked
 * before any other field is touched. A plugin of ABI 1.0 (without combine) is as good
 * as one of this header: mrkv_app_combine() reads combine only where it exists. */
static int app_validate(const char *path, const mrkv_app *app) {
        if (!app)
                return log_error_errno(EPROTO, "Cannot load app %s: %s() returned no app.", path, MRKV_APP_ENTRY);
        if (app->abi_version != MRKV_APP_ABI_VERSION)
                return log_error_errno(EPROTO, "Cannot load app %s: built for app ABI %u, this host speaks %u.",
                                       path, app->abi_version, (unsigned) MRKV_APP_ABI_VERSION);
        if (app->struct_size < MRKV_APP_STRUCT_SIZE_1_0)
                return log_error_errno(EPROTO,
                                       "Cannot load app %s: its app description has %u bytes, ABI %u needs %zu.",
                                       path, app->struct_size, (unsigned) MRKV_APP_ABI_VERSION,
                                       (size_t) MRKV_APP_STRUCT_SIZE_1_0);
        if (!app->map || !app->reduce)
                return log_error_errno(EINVAL, "Cannot load app %s: the app has no %s function.", path,
                                       app->map ? "reduce" : "map");
        return 0;
}

int app_load(const char *spec, App **ret) {
        _cleanup_(app_freep) App *a = NULL;
        mrkv_app_get_func get;
        const mrkv_app *app;
        int r;

        assert(spec);
        assert(ret);

        if (spec[0] == '\0')
                return log_error_errno(EINVAL, "App name is empty.");

        a = calloc(1, sizeof(App));
        if (a)
                a->spec = strdup(spec);
        if (a && !a->spec)
                a = app_free(a);
        if (!a)
                return log_oom();

        r = app_resolve(spec, &a->path);
        if (r < 0)
                return r;

        a->dl = dlopen(a->path, RTLD_NOW | RTLD_LOCAL);
        if (!a->dl)
                return log_error_errno(ENOEXEC, "Cannot load app %s: %s", a->path, dlerror());

        /* dlsym() can legitimately return NULL, so only dlerror() tells a missing symbol apart. */
        (void) dlerror();
        *(void **) &get = dlsym(a->dl, MRKV_APP_ENTRY);
        if (!get) {
                const char *e = dlerror();
                return log_error_errno(ENOEXEC, "Cannot load app %s: not an mrkv app: no %s()%s%s", a->path,
                                       MRKV_APP_ENTRY, e ? ": " : "", e ?: "");
        }

        app = get();
        r = app_validate(a->path, app);
        if (r < 0)
                return r;

        a->app = app;
        *ret = TAKE_PTR(a);
        return 0;
}
