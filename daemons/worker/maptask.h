/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "groups.h"
#include "mrkv/app.h"

/* Runs one map task: reads the input file (relative to dir_fd; a regular file of at most
 * max_input bytes, not a symbolic link), calls the app's map, partitions the emitted
 * pairs by FNV-1a of the key, sorts each partition by key and writes it to
 * temp_names[r] in dir_fd. Returns 0 or -errno; *ret_error describes an
 * app or input failure (malloc'd). groups is scratch space, emptied before use and kept
 * allocated afterwards so the next task reuses its memory. */
int map_task_run(const mrkv_app *app, Groups *groups, int dir_fd, const char *input, uint64_t max_input,
                 unsigned nreduce, char *const *temp_names, char **ret_error);
