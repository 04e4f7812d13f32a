/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app-host.h"
#include "files.h"
#include "grouped.h"
#include "groups.h"
#include "log.h"

#define COMBINE_BOUND_DEFAULT ((size_t) 256 * 1024 * 1024)

struct Grouped {
        const mrkv_app *app;
        mrkv_combine_func combine; /* or NULL */
        Groups groups;
        size_t combine_bound; /* combine in place once the groups hold this much */
        Group combined;       /* combine's output for one key */
        InputBuffer input;
};

struct mrkv_emitter {
        Groups *groups;  /* map: where pairs go */
        FILE *file;      /* reduce: where lines go */
        int error;       /* reduce: the first write error, to report it rather than the app's */
        Group *combined; /* combine: where values go */
        const char *key; /* combine: the key being combined, the only one it may emit */
        size_t key_len;
};

struct mrkv_values {
        const Group *group;
        GroupIter it;
};

static int map_emit(mrkv_emitter *out, const char *key, size_t key_len, const char *value, size_t value_len) {
        if (!app_emit_valid(key, key_len, value, value_len))
                return -EINVAL;
        return groups_add(out->groups, app_bytes(key, key_len), key_len, app_bytes(value, value_len), value_len);
}

static int combine_emit(mrkv_emitter *out, const char *key, size_t key_len, const char *value,
                        size_t value_len) {
        if (!app_emit_valid(key, key_len, value, value_len))
                return -EINVAL;
        if (!app_combine_key_valid(key, key_len, out->key, out->key_len))
                return -EINVAL;
        return group_append(out->combined, app_bytes(value, value_len), value_len);
}

static int reduce_emit(mrkv_emitter *out, const char *key, size_t key_len, const char *value,
                       size_t value_len) {
        if (!app_emit_valid(key, key_len, value, value_len))
                return -EINVAL;
        int r = output_line(out->file, key, key_len, value, value_len);

        if (r < 0 && out->error == 0)
                out->error = r;
        return r < 0 ? out->error : 0;
}

static int next_value(mrkv_values *v, const char **value, size_t *value_len) {
        return group_next_value(v->group, &v->it, value, value_len);
}

/* A word count's "1"s of a key are one run: one call for all of them. */
static int next_run(mrkv_values *v, const char **value, size_t *value_len, uint64_t *repeat) {
        return group_next_repeat(v->group, &v->it, value, value_len, repeat);
}

static const mrkv_host map_host = {
        .abi_version = MRKV_APP_ABI_VERSION,
        .struct_size = sizeof(mrkv_host),
        .emit = map_emit,
        .next_value = app_map_next_value,
};

static const mrkv_host combine_host = {
        .abi_version = MRKV_APP_ABI_VERSION,
        .struct_size = sizeof(mrkv_host),
        .emit = combine_emit,
        .next_value = next_value,
        .next_run = next_run,
};

static const mrkv_host reduce_host = {
        .abi_version = MRKV_APP_ABI_VERSION,
        .struct_size = sizeof(mrkv_host),
        .emit = reduce_emit,
        .next_value = next_value,
        .next_run = next_run,
};

static const char *app_name(const Grouped *g) {
        return g->app->name ?: "(unnamed)";
}

Grouped *grouped_new(const mrkv_app *app) {
        Grouped *g;

        assert(app);

        g = calloc(1, sizeof(Grouped));
        if (!g)
                return NULL;
        g->app = app;
        g->combine = mrkv_app_combine(app);
        g->combine_bound = COMBINE_BOUND_DEFAULT;
        return g;
}

Grouped *grouped_free(Grouped *g) {
        if (!g)
                return NULL;
        groups_done(&g->groups);
        free(g->combined.values);
        input_buffer_done(&g->input);
        free(g);
        return NULL;
}

void grouped_set_combine(Grouped *g, bool combine) {
        g->combine = combine ? mrkv_app_combine(g->app) : NULL;
}

void grouped_set_combine_bound(Grouped *g, size_t bytes) {
        g->combine_bound = bytes > 0 ? bytes : COMBINE_BOUND_DEFAULT;
}

/* Replaces the values of every key of more than one value by what combine makes of them,
 * swapping value buffers with g->combined. */
static int combine_in_place(Grouped *g, const char *filename) {
        for (size_t i = 0; i < g->groups.n_groups; i++) {
                Group *group = &g->groups.groups[i];
                mrkv_emitter out = { .combined = &g->combined, .key = group->key, .key_len = group->key_len };
                uint8_t *values;
                size_t allocated;
                int r;

                if (group->n_values < 2)
                        continue;
                g->combined.values_size = g->combined.n_values = g->combined.last_run = 0;
                r = g->combine(&combine_host, &out, group->key, group->key_len, &(mrkv_values) { .group = group });
                if (r < 0)
                        return log_error_errno(r, "App %s failed to combine the values of key '%.*s' (mapping %s): %m",
                                               app_name(g), (int) MIN(group->key_len, (size_t) 64), group->key,
                                               filename);

                values = group->values;
                allocated = group->values_allocated;
                g->groups.memory += g->combined.values_allocated - allocated;
                group->values = g->combined.values;
                group->values_size = g->combined.values_size;
                group->values_allocated = g->combined.values_allocated;
                group->n_values = g->combined.n_values;
                group->last_run = g->combined.last_run;
                group->last_value = g->combined.last_value;
                group->last_len = g->combined.last_len;
                g->combined = (Group) { .values = values, .values_allocated = allocated };
        }
        return 0;
}

int grouped_map(Grouped *g, const char *filename, const char *contents, size_t size) {
        mrkv_emitter out = { .groups = &g->groups };
        int r;

        r = g->app->map(&map_host, &out, filename, contents, size);
        if (r < 0)
                return log_error_errno(r, "App %s failed to map %s: %m", app_name(g), filename);

        if (g->combine && g->groups.memory > g->combine_bound) {
                r = combine_in_place(g, filename);
                if (r < 0)
                        return r;
                /* Values that do not combine away must not be combined again at once. */
                if (g->groups.memory > g->combine_bound / 2)
                        g->combine_bound = MAX(g->combine_bound, g->groups.memory * 2);
        }
        return 0;
}

int grouped_map_file(Grouped *g, const char *filename) {
        size_t size = 0;
        int r;

        r = input_buffer_read(&g->input, filename, &size);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", filename);
        return grouped_map(g, filename, g->input.data, size);
}

int grouped_reduce(Grouped *g, FILE *f) {
        _cleanup_free_ const Group **sorted = NULL;
        mrkv_emitter out = { .file = f };
        int r;

        r = groups_sorted(&g->groups, &sorted);
        if (r < 0)
                return log_oom();

        for (size_t i = 0; i < g->groups.n_groups; i++) {
                const Group *group = sorted[i];

                r = g->app->reduce(&reduce_host, &out, group->key, group->key_len, &(mrkv_values) { .group = group });
                if (out.error < 0)
                        return log_error_errno(out.error, "Failed to write output: %m");
                if (r < 0)
                        return log_error_errno(r, "App %s failed to reduce key '%.*s': %m", app_name(g),
                                               (int) MIN(group->key_len, (size_t) 64), group->key);
        }
        return 0;
}

static int reduce_to(void *userdata, FILE *f) {
        return grouped_reduce(userdata, f);
}

int grouped_write_output(Grouped *g, const char *output) {
        return output_write_atomic(output, reduce_to, g);
}
