/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The libFuzzer entry point of a fuzz target. Returns 0; a broken invariant aborts. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the inputs run so far exercised, so that the corpus replay can check that its
 * seeds reach both the accepting and the rejecting paths. */
typedef struct FuzzStats {
        unsigned inputs;
        unsigned messages;     /* complete frames found */
        unsigned oversize;     /* frames over the size limit */
        unsigned parsed;       /* frames that are Varlink messages */
        unsigned plain;        /* of those, plain calls (varlink-view.h) */
        unsigned rejected;     /* frames that are not */
        unsigned dispatched;   /* parameter sets that dispatched */
        unsigned refused;      /* parameter sets that did not */
} FuzzStats;

const FuzzStats *fuzz_stats(void);
