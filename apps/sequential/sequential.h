/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "macro.h"
#include "mrkv/app.h"

/* The reference MapReduce, in one process, as the lab's mrsequential: map every input,
 * keep every intermediate pair in memory, sort them by key (values of a key in emission
 * order), reduce each run of equal keys into one output file. What mrkv-coordinator and
 * mrkv-worker write must equal this (after sorting lines), and the tests check it: so it
 * shares no code with the workers' grouping (lib/mapreduce/groups.c), where a bug would
 * otherwise show on both sides alike. Every function logs its own errors. */

typedef struct Sequential Sequential;

Sequential *sequential_new(const mrkv_app *app);
Sequential *sequential_free(Sequential *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Sequential *, sequential_free);

/* With combine, the app's combine function runs over the pairs of each input once it is
 * mapped, as a worker's map task runs it, and its output replaces them (-EOPNOTSUPP if
 * the app has none). The output is the same either way for an app whose combine is
 * right; a test compares the two. Off by default: the reference is the plain run. */
int sequential_set_combine(Sequential *s, bool combine);

/* Maps contents (NUL-terminated at contents[size]) as the input named filename. */
int sequential_map(Sequential *s, const char *filename, const char *contents, size_t size);

/* Reads the file filename whole and maps it, with filename as its name. */
int sequential_map_file(Sequential *s, const char *filename);

/* Reduces every key in key order, writing "key value\n" lines to f. */
int sequential_reduce(Sequential *s, FILE *f);

/* Reduces into a temporary file beside output, then renames it to output, so output
 * exists only when complete. */
int sequential_write_output(Sequential *s, const char *output);
