/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "coordinator.h"

#define MAPREDUCE_BUS_NAME "org.mrkv.MapReduce1"
#define MAPREDUCE_BUS_PATH "/org/mrkv/MapReduce1"
#define MAPREDUCE_BUS_JOB_PREFIX "/org/mrkv/MapReduce1/job"

/* The D-Bus control and status plane of the coordinator: org.mrkv.MapReduce1 at
 * /org/mrkv/MapReduce1 (workers, jobs, SubmitJob, CancelJob) and a child object per job
 * (org.mrkv.MapReduce1.Job: state, progress, times, outputs, counters, Cancel), with
 * PropertiesChanged as tasks finish. */
int coordinator_bus_setup(Coordinator *c, sd_bus *bus);
/* Stops telling the bus of changes, when it is given up after coordinator_bus_setup(). */
void coordinator_bus_stop(Coordinator *c);
