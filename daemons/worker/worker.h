/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "app-loader.h"

/* Asks the coordinator at address for tasks and runs them with app — or, when app is
 * NULL, with the app each job names — until the coordinator says the job is over.
 * Returns 0 when told to exit or when the coordinator went away after the worker had
 * been served, -errno otherwise. With serve, runs until killed: it waits for the
 * coordinator, and reconnects whenever the connection is lost. A map task whose input
 * has more than max_input bytes fails. */
#define WORKER_MAX_INPUT_DEFAULT (256U * 1024U * 1024U)
/* A map task keeps its pairs in about map_memory bytes, spilling sorted runs to disk
 * beyond it. */
#define WORKER_MAP_MEMORY_DEFAULT (64U * 1024U * 1024U)
#define WORKER_MAP_MEMORY_MIN (64U * 1024U) /* below, runs would hold a few keys each */
int worker_run(const char *address, App *app, bool serve, uint64_t max_input, uint64_t map_memory);
