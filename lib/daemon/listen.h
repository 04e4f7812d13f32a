/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "address.h"

/* The listening sockets of a daemon: those passed by systemd (sd_listen_fds_with_names())
 * when there are any, else one bound to address. *ret_fds is malloc'd; *ret_bound is set
 * when the program bound the socket itself (and so must remove it at exit). */
int listen_sockets(const Address *address, int **ret_fds, unsigned *ret_n, bool *ret_bound);
