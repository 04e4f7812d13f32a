/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "mapoutput.h"

/* Streaming apps: a job's mapper and reducer are commands, run with /bin/sh -c in the
 * current directory (the job's) as this worker's user, that speak lines on stdin and
 * stdout, as Hadoop Streaming's do:
 *
 *   mapper:  reads the split's text (its lines) and writes "key<TAB>value\n" lines;
 *   reducer: reads "key<TAB>value\n" lines, sorted by key (bytewise), a key's values
 *            together, and writes output lines, which go to mr-out-R as they come.
 *
 * A key or value holding a TAB, a newline or a NUL cannot be written in this format: a
 * mapper line without its one TAB, or with a NUL, fails the task, and so does a value a
 * reducer could not be given. A command that exits non-zero or is killed fails the
 * attempt. Both pipes are served at once (poll()), so a command that writes before it
 * has read all its input does not deadlock.
 *
 * A command runs in a process group of its own and gets SIGKILL if the worker dies
 * (PR_SET_PDEATHSIG). The worker is a child subreaper: what a command leaves behind,
 * even in a session of its own, becomes the worker's child when its parent dies. A
 * command still running at the task's deadline (or still holding its stdout open)
 * fails the attempt: its group and what it left get SIGTERM, two seconds later SIGKILL.
 * When a command ends, whatever is left of its group and every process it left behind
 * are killed and reaped, so nothing of an attempt outlives it. (The worker starts no
 * other children: every child but the command's is one it left behind.) */

/* A producer of a command's stdin: 1 and the next bytes (valid until the next call), 0
 * at the end, or -errno. */
typedef int (*StreamProduce)(void *userdata, const char **ret_data, size_t *ret_size);
/* A consumer of its stdout: 0 or -errno (the command is then killed). */
typedef int (*StreamConsume)(void *userdata, const char *data, size_t size);

/* Runs command with stdin from produce and stdout to consume, until deadline
 * (CLOCK_MONOTONIC µs; UINT64_MAX for none): 0, or -errno (-ETIME past the deadline)
 * and, unless a callback has set it already, *ret_error (malloc'd; NULL on entry) naming
 * what as the command's role ("mapper", "reducer"). */
int streaming_run(const char *what, const char *command, uint64_t deadline, StreamProduce produce,
                  StreamConsume consume, void *userdata, char **ret_error);

/* The mapper over text, until deadline; its pairs go to out. A line it prints may have line_max bytes at
 * most (-EFBIG). ret_error as streaming_run()'s (it may be &out->error, where out's own
 * failures are described). */
int streaming_map(const char *command, uint64_t deadline, const char *text, size_t size, size_t line_max,
                  MapOutput *out, char **ret_error);
