/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* A map task's split of an input file: the lines whose first byte lies in
 * [offset, offset + length), the last one read on past the end to its newline (or the end
 * of the file). A line starts at byte 0 and after every '\n'. So the splits of any cut of
 * a file into ranges read every line exactly once, a line longer than a split included
 * (read whole by the split where it starts; the others in it read nothing of it). A whole
 * file is offset 0, length UINT64_MAX.
 *
 * Reads the split of the regular file fd into a new NUL-terminated buffer (*ret_size
 * excludes the NUL): 0, -EFBIG when it has more than max_size bytes (found before reading
 * when the file's size says so), or -errno. The file is read up to its end as it is then,
 * also if it grew since its size was taken. */
int split_read(int fd, uint64_t offset, uint64_t length, uint64_t max_size, char **ret, size_t *ret_size);

/* The lines of text[0..size), as map input records: each '\n', and a last line without
 * one. */
uint64_t split_count_lines(const char *text, size_t size);
