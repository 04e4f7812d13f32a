/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "job.h"

/* Who may do what with a job: the one place that decides, for the Varlink handlers
 * (job-api.c, worker-api.c), the D-Bus plane (bus.c) and the scheduler. Pure functions
 * of uids; the callers find the uids (SO_PEERCRED, D-Bus sender credentials).
 *
 * A job runs with its submitter's rights: its tasks go only to workers running as the
 * submitter. Jobs of root are the exception: they also go to the workers of the service
 * user (the coordinator's own uid), and run with the service's rights. Root may also
 * control every job and name any working directory. Everyone who reaches the daemon
 * sees that jobs exist and their progress; only the owner and root see their files. */

/* Cancelling a job, and seeing its input files, working directory and outputs. */
bool access_may_control(uid_t caller, const Job *j);

/* Whether a worker running as worker_uid may be handed the job's tasks. */
bool access_worker_may_run(uid_t worker_uid, const Job *j, uid_t service_uid);

/* Whether a job of submitter may write in a directory owned by dir_owner. */
bool access_workdir_allowed(uid_t submitter, uid_t dir_owner);

/* Whether a job of submitter may have a working directory the coordinator creates (owned
 * by the service user, so only the service's workers can write there). */
bool access_default_workdir_allowed(uid_t submitter, uid_t service_uid);
