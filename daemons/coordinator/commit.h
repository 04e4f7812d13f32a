/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "job.h"

/* The files of a task attempt. A worker writes its output under temporary names derived
 * from (job, task, attempt); the first successful attempt of a task is renamed into place
 * (mr-<map>-<reduce>, mr-out-<reduce>) and the output of every other attempt deleted. */

/* Makes an attempt's output visible under its final names: all of a map attempt's files
 * or none. -errno if one is missing. */
int commit_attempt_output(const Job *j, const Task *t, unsigned attempt);
/* Deletes whatever an attempt left under its temporary names. */
void remove_attempt_output(const Job *j, const Task *t, unsigned attempt);
