/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "coordinator.h"

/* The bus name is also the manager's interface. */
#define MAPREDUCE_BUS_NAME "org.mrkv.MapReduce1"
#define MAPREDUCE_BUS_INTERFACE MAPREDUCE_BUS_NAME
#define MAPREDUCE_BUS_JOB_INTERFACE MAPREDUCE_BUS_NAME ".Job"
#define MAPREDUCE_BUS_ERROR_NO_SUCH_JOB MAPREDUCE_BUS_NAME ".NoSuchJob"
#define MAPREDUCE_BUS_ERROR_JOB_ENDED MAPREDUCE_BUS_NAME ".JobEnded"
#define MAPREDUCE_BUS_PATH "/org/mrkv/MapReduce1"
#define MAPREDUCE_BUS_JOB_PREFIX MAPREDUCE_BUS_PATH "/job"

/* The D-Bus control and status plane of the coordinator: org.mrkv.MapReduce1 at
 * /org/mrkv/MapReduce1 (workers, jobs, SubmitJob, CancelJob) and a child object per job
 * (org.mrkv.MapReduce1.Job: state, progress, times, outputs, counters, Cancel), with
 * PropertiesChanged as tasks finish. */
int coordinator_bus_setup(Coordinator *c, sd_bus *bus);
/* Stops telling the bus of changes, when it is given up after coordinator_bus_setup(). */
void coordinator_bus_stop(Coordinator *c);
