/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* What an attempt counts, sent with FinishTask as its "counters" (by these names; the
 * coordinator adds up those of the attempts it commits). */
#define TASK_COUNTERS(X)                \
        X(map_input_records)            \
        X(map_input_bytes)              \
        X(map_output_records)           \
        X(map_output_bytes)             \
        X(combine_input_records)        \
        X(combine_output_records)       \
        X(spilled_records)              \
        X(shuffle_bytes)                \
        X(reduce_input_groups)          \
        X(reduce_input_records)         \
        X(reduce_output_records)

typedef struct TaskCounters {
#define TASK_COUNTER_FIELD(name) uint64_t name;
        TASK_COUNTERS(TASK_COUNTER_FIELD)
#undef TASK_COUNTER_FIELD
} TaskCounters;
