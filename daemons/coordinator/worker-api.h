/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "api.h"
#include "varlink-server.h"

/* The worker half of org.mrkv.MapReduce: RequestTask (answered when the scheduler has a
 * task, through worker_api_assign()) and FinishTask (the attempt's output is committed
 * or discarded here, then the scheduler is told). */

int worker_api_register(VarlinkServer *server);
/* The SchedulerCallbacks.assign of the coordinator: the answer to a pending RequestTask. */
void worker_api_assign(Worker *w, Job *j, Task *t, void *userdata);
/* A connection closed: if a worker's, its tasks are handed out again. */
void worker_api_disconnect(MapReduceApi *a, VarlinkConn *conn);
