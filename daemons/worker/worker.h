/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "app-loader.h"

/* Asks the coordinator at address for tasks and runs them with app until the
 * coordinator says the job is over. Returns 0 when told to exit or when the coordinator
 * went away after the worker had been served, -errno otherwise. */
int worker_run(const char *address, App *app);
