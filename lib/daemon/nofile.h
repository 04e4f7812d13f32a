/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/resource.h>

/* Descriptors a server keeps for everything but client connections: listening sockets,
 * the event loop's own, the bus, the state directory's lock, log segments and snapshots,
 * the files of job directories. Should they run out all the same, accepting pauses. */
#define NOFILE_RESERVE 64U

/* Raises the soft RLIMIT_NOFILE to the hard limit, which is the administrator's choice;
 * a server with thousands of clients needs more than the default 1024 descriptors, and
 * we use epoll, not select(). Logs nothing. */
int nofile_raise(void);

/* The most connections that nofile descriptors leave room for (nofile less the reserve),
 * at most wanted unless wanted is 0. */
unsigned nofile_connections_max(rlim_t nofile, unsigned wanted);

/* Raises RLIMIT_NOFILE and returns max_connections, or fewer if the limit is still too
 * low for them (with a notice), or with max_connections 0 as many as it leaves room for:
 * a server at its connection limit stops accepting, one out of descriptors only rests. */
unsigned nofile_fit_connections(unsigned max_connections);
