/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "app-loader.h"

/* Asks the coordinator at address for tasks and runs them with app — or, when app is
 * NULL, with the app each job names — until the coordinator says the job is over.
 * Returns 0 when told to exit or when the coordinator went away after the worker had
 * been served, -errno otherwise. With serve, runs until killed: it waits for the
 * coordinator, and reconnects whenever the connection is lost. */
int worker_run(const char *address, App *app, bool serve);
