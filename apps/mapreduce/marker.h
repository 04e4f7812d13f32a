/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Marker files: the test apps leave them in the job's directory so that a test (or the
 * app itself, in another worker) can count what ran where. */

/* Creates (or truncates) the file name in the working directory with one byte in it.
 * Returns 0 or a negative errno. */
int marker_create(const char *name);
