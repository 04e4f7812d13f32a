/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "record.h"

/* What a daemon's --check / --repair prints is the same for every state directory of a
 * snapshot and a log; only these words are the daemon's own. */
typedef struct StateCheckWords {
        const char *daemon;        /* who holds the directory: "server", "coordinator" */
        const char *items;         /* what a snapshot holds: "keys", "jobs" */
        const char *repair_option; /* "--repair", "--repair-journal" */
} StateCheckWords;

/* Reports on standard output what the directory at path holds: the newest snapshot,
 * loaded through load (which counts its items in *items), and the log after it, checked
 * or, with repair, cut at its first damage (the cut bytes kept beside it). Returns 0 if
 * the daemon can start from it (clean, a torn tail, or repaired), -EBADMSG if not, or
 * another negative errno (logged) if it could not be read. */
int state_check(const char *path, bool repair, state_record_cb load, void *userdata, const uint64_t *items,
                const StateCheckWords *words);
