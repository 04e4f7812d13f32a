/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/resource.h>

/* Descriptors a server keeps for everything but client connections: listening sockets,
 * the event loop's own, and one for accepting a connection only to close it when full. */
#define NOFILE_RESERVE 64U

/* Raises the soft RLIMIT_NOFILE to the hard limit, which is the administrator's choice;
 * a server with thousands of clients needs more than the default 1024 descriptors, and
 * we use epoll, not select(). Logs nothing. */
int nofile_raise(void);

/* The most connections, at most wanted, that nofile descriptors leave room for. */
unsigned nofile_connections_max(rlim_t nofile, unsigned wanted);

/* Raises RLIMIT_NOFILE and returns max_connections, or fewer if the limit is still too
 * low for them (with a notice): were accept() to fail with EMFILE, the pending
 * connection would wake the event loop again and again. */
unsigned nofile_fit_connections(unsigned max_connections);
