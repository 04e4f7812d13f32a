/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* A write-only file with a large buffer; written in full or reported failed. */
typedef struct OutputFile {
        int fd;
        char *buf;
        size_t used, allocated;
        uint64_t offset; /* bytes written so far (the next one's offset in the file) */
        int error;
} OutputFile;

/* Creates name in dir_fd afresh (O_EXCL, O_NOFOLLOW), replacing whatever had the name. */
int output_file_open(OutputFile *f, int dir_fd, const char *name);
/* The same, opened for reading too: a file read back once written (output_file_detach()). */
int output_file_open_readable(OutputFile *f, int dir_fd, const char *name);
int output_file_write(OutputFile *f, const void *data, size_t n);
/* Flushes and closes; returns the first error seen, if any. */
int output_file_close(OutputFile *f);
/* Flushes and hands over the file descriptor (f is then closed): the fd, or the first
 * error seen (the fd then closed). */
int output_file_detach(OutputFile *f);
