/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "api.h"
#include "varlink-server.h"

/* The client half of org.mrkv.MapReduce: SubmitJob, GetJob (with "more", the newest state
 * after every change the watcher has read, until the job ends), ListJobs, CancelJob. */

/* Binds the methods, and subscribes the GetJob watchers to the scheduler's changes. */
int job_api_register(MapReduceApi *a, VarlinkServer *server);
/* A connection's output has all been read: a GetJob stream held back since sends the
 * job's newest state. */
void job_api_drained(MapReduceApi *a, VarlinkConn *conn);
/* A connection closed: forgets its GetJob call. */
void job_api_disconnect(MapReduceApi *a, VarlinkConn *conn);
void job_api_done(MapReduceApi *a);
