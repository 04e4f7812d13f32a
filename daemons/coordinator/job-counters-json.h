/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include <json-c/json.h>

#include "job-counters.h"

/* Counters as JSON objects of name -> integer: in Job.counters, FinishTask's counters and
 * the job journal's records. */

/* The counters first..end-1 (all: 0, _COUNTER_MAX), or NULL when memory ran out. */
json_object *job_counters_to_json(const JobCounters *c, JobCounter first, JobCounter end);
/* Reads the counters first..end-1 of o, leaving the others as they are; names it does not
 * know or outside the range are skipped. -EINVAL if o is not an object or a value is not a
 * non-negative integer. */
int job_counters_from_json(json_object *o, JobCounter first, JobCounter end, JobCounters *ret);
