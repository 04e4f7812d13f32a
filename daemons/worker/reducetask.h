/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "mrkv/app.h"

/* Runs one reduce task: merges the sorted intermediate files inputs[0..n) (relative to
 * dir_fd) as streams, calls the app's reduce once per distinct key with an iterator over
 * its values, and writes "key value\n" lines to output in dir_fd. Memory stays bounded by
 * a buffer per input and the largest single record, whatever the files' sizes. */
int reduce_task_run(const mrkv_app *app, int dir_fd, char *const *inputs, unsigned n, const char *output,
                    char **ret_error);
