/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The lab's nparallel(): how many workers run a phase ("map" or "reduce") at the same
 * time as this one. Creates "mr-worker-<phase>-<pid>" in the working directory, counts
 * the files of that form whose pid is alive (this one included), sleeps a second so that
 * overlapping workers see each other, and removes its file.
 * Returns the count, or a negative errno. */
int nparallel(const char *phase);
