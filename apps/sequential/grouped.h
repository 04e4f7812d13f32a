/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdio.h>

#include "macro.h"
#include "mrkv/app.h"

/* mrkv-sequential's default engine: the workers' grouping of keys (lib/mapreduce/groups.c)
 * in one table for all inputs, with no intermediate files, and the app's combine function
 * run over a key's values in place whenever the values held grow past a bound, so that an
 * app with a combiner runs in bounded memory. Reduce then takes every key in bytewise key
 * order, its values in emission order (or what combine made of them).
 *
 * It is the fast way to run an app in one process. The tests' reference is the plain
 * engine (sequential.h, --plain), which shares nothing with the groups: a bug in them
 * would otherwise show on both sides of a comparison. Every function logs its own
 * errors. */

typedef struct Grouped Grouped;

Grouped *grouped_new(const mrkv_app *app);
Grouped *grouped_free(Grouped *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(Grouped *, grouped_free);

/* Whether the app's combine function runs (by default it does, if the app has one). */
void grouped_set_combine(Grouped *g, bool combine);

/* Values held before the values of each key are combined in place (apps with a combiner
 * only; 0: the default, 256 MiB). Combining again waits until they double. */
void grouped_set_combine_bound(Grouped *g, size_t bytes);

/* Maps contents (NUL-terminated at contents[size]) as the input named filename. */
int grouped_map(Grouped *g, const char *filename, const char *contents, size_t size);

/* Reads the file filename whole and maps it, with filename as its name. */
int grouped_map_file(Grouped *g, const char *filename);

/* Reduces every key in key order, writing "key value\n" lines to f. */
int grouped_reduce(Grouped *g, FILE *f);

/* Reduces into a temporary file beside output, then renames it to output. */
int grouped_write_output(Grouped *g, const char *output);
