/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "mrkv/app.h"

/* Runs one map task: reads the input file (relative to dir_fd), calls the app's map,
 * partitions the emitted pairs by FNV-1a of the key, sorts each partition by key and
 * writes it to temp_names[r] in dir_fd. Returns 0 or -errno; *ret_error describes an
 * app or input failure (static or malloc'd as noted: always free()able). */
int map_task_run(const mrkv_app *app, int dir_fd, const char *input, unsigned nreduce,
                 char *const *temp_names, char **ret_error);
