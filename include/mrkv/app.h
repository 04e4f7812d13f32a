/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The MapReduce application plugin ABI.
 *
 * An app is a shared object exporting one function, mrkv_app_get(), that returns a
 * static description of the app. The host (mrkv-worker, mrkv-sequential) checks
 * abi_version and struct_size before it calls anything else, so a plugin built
 * against another version of this header is refused with a clear error.
 *
 * Within one abi_version the struct only grows at its end (minor versions): a host reads
 * a member only when the plugin's struct_size covers it, so a plugin built for an older
 * header of the same abi_version keeps loading, without the newer members. Version 1.1
 * added combine (mrkv_app) and next_run (mrkv_host).
 *
 * Keys and values are byte strings with explicit lengths; they may hold any bytes,
 * including NUL and newlines. Pointers handed to an app are valid only during the call.
 *
 * An app calls back into the host only through the mrkv_host table it is given, so a
 * plugin needs no symbol from the host and links against nothing of mrkv. */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MRKV_APP_ABI_VERSION 1
#define MRKV_APP_ENTRY "mrkv_app_get"

typedef struct mrkv_emitter mrkv_emitter; /* where map and reduce output goes; owned by the host */
typedef struct mrkv_values mrkv_values;   /* the values of one key during reduce; owned by the host */

typedef struct mrkv_host {
        uint32_t abi_version; /* MRKV_APP_ABI_VERSION of the host */
        uint32_t struct_size; /* sizeof(mrkv_host) of the host */

        /* In map: emits one intermediate key/value pair.
         * In combine: emits one combined value of the key being combined; key must be
         * that key (another one fails with -EINVAL).
         * In reduce: emits one output line "key value\n"; the lab's Reduce returns one
         * value per key, so a reduce function normally emits once, with the key it got.
         * Returns 0, or a negative errno (the app should then return it). */
        int (*emit)(mrkv_emitter *out, const char *key, size_t key_len, const char *value, size_t value_len);

        /* In reduce and combine: the next value of the current key. Returns 1 and sets *value and
         * *value_len (valid until the next call), 0 when there are no more values, or a
         * negative errno. Values come in no particular order; sort them if order matters. */
        int (*next_value)(mrkv_values *values, const char **value, size_t *value_len);

        /* ABI 1.1, optional (read it through mrkv_next_run(), which checks struct_size and
         * NULL): in reduce and combine, the next value and how many times in a row it
         * comes, all of them taken at once. Returns 1 and sets *value, *value_len (valid
         * until the next call) and *repeat (at least 1), 0 when there are no more values,
         * or a negative errno. Mixed with next_value, the values come in the same order: a
         * run begun by next_value is finished by next_run. Hosts keep a map's repeated
         * values as runs (a word count's "1"s), so an app that only adds them up does one
         * call per run instead of one per value. */
        int (*next_run)(mrkv_values *values, const char **value, size_t *value_len, uint64_t *repeat);
} mrkv_host;

/* host->next_run when the host has one; else next_value, one value at a time (*repeat = 1). */
static inline int mrkv_next_run(const mrkv_host *host, mrkv_values *values, const char **value, size_t *value_len,
                                uint64_t *repeat) {
        if (host->struct_size >= offsetof(mrkv_host, next_run) + sizeof(host->next_run) && host->next_run)
                return host->next_run(values, value, value_len, repeat);
        *repeat = 1;
        return host->next_value(values, value, value_len);
}

typedef int (*mrkv_combine_func)(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                                 mrkv_values *values);

typedef struct mrkv_app {
        uint32_t abi_version; /* MRKV_APP_ABI_VERSION the plugin was built with */
        uint32_t struct_size; /* sizeof(mrkv_app) the plugin was built with */
        const char *name;
        const char *description;

        /* Called once per input file, with the file name exactly as the job gave it and
         * the file's whole contents (NUL-terminated for convenience; size excludes it).
         * Returns 0 or a negative errno. */
        int (*map)(const mrkv_host *host, mrkv_emitter *out, const char *filename, const char *contents,
                   size_t size);

        /* Called once per distinct intermediate key, in key order within one reduce task.
         * Returns 0 or a negative errno. */
        int (*reduce)(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                      mrkv_values *values);

        /* ABI 1.1, optional (NULL: no combiner). Called with some of the intermediate values
         * of one key emitted by one map task, before they are written (and again when runs
         * spilled to disk are merged); emits values for that same key through host->emit,
         * which replace the values it got. reduce then sees combined values in place of some
         * of the originals, so an app provides combine only where its reduce gives the same
         * output either way (a word count sums counts rather than counting values). A host
         * may call it any number of times, or never. Returns 0 or a negative errno. */
        mrkv_combine_func combine;
} mrkv_app;

/* The size of an app description of ABI 1.0, the smallest a host of ABI 1 accepts. */
#define MRKV_APP_STRUCT_SIZE_1_0 offsetof(mrkv_app, combine)

/* The app's combine, or NULL when it has none or was built before ABI 1.1 (its struct
 * then ends before the member, which must not be read). */
static inline mrkv_combine_func mrkv_app_combine(const mrkv_app *app) {
        if (app->struct_size < offsetof(mrkv_app, combine) + sizeof(app->combine))
                return NULL;
        return app->combine;
}

typedef const mrkv_app *(*mrkv_app_get_func)(void);

/* Every plugin defines this; MRKV_APP_DEFINE() below does it for you. */
const mrkv_app *mrkv_app_get(void);

#define MRKV_APP_DEFINE(app_name, app_description, map_func, reduce_func) \
        MRKV_APP_DEFINE_COMBINE(app_name, app_description, map_func, reduce_func, NULL)

/* The same, for an app with a combine function (ABI 1.1). */
#define MRKV_APP_DEFINE_COMBINE(app_name, app_description, map_func, reduce_func, combine_func) \
        __attribute__((visibility("default"))) const mrkv_app *mrkv_app_get(void) {               \
                static const mrkv_app app = {                                                      \
                        .abi_version = MRKV_APP_ABI_VERSION,                                       \
                        .struct_size = sizeof(mrkv_app),                                           \
                        .name = (app_name),                                                        \
                        .description = (app_description),                                          \
                        .map = (map_func),                                                         \
                        .reduce = (reduce_func),                                                   \
                        .combine = (combine_func),                                                 \
                };                                                                                 \
                return &app;                                                                       \
        }

#ifdef __cplusplus
}
#endif
