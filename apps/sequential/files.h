/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdio.h>

#include "macro.h"

/* What both engines of mrkv-sequential do with files: read an input whole, and write the
 * output through a temporary file renamed into place. */

/* A buffer for inputs, reused from file to file. */
typedef struct InputBuffer {
        char *data;
        size_t allocated;
} InputBuffer;

/* Reads the whole file into b, NUL-terminated; *ret_size excludes the NUL. The size from
 * fstat() is only a hint: reading to EOF also handles pipes and files that change size.
 * Returns 0 or a negative errno (-EISDIR for a directory). */
int input_buffer_read(InputBuffer *b, const char *filename, size_t *ret_size);
void input_buffer_done(InputBuffer *b);

/* Writes the output line "key value\n" to f: 0 or a negative errno. */
int output_line(FILE *f, const char *key, size_t key_len, const char *value, size_t value_len);

/* Calls write(userdata, f) with f a new temporary file beside output, then renames it to
 * output, so output exists only when complete. write logs its own errors; returns 0 or a
 * negative errno (logged). */
int output_write_atomic(const char *output, int (*write)(void *userdata, FILE *f), void *userdata);
