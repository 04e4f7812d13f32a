/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Takes the listening sockets passed by the service manager (sd_listen_fds_with_names()):
 * returns their number, 0 when there are none, with the fds in *ret_fds (malloc'd, NULL
 * for none). When one is not a listening stream socket, returns -ENOTSOCK, when one is
 * not a Unix socket -EPFNOSUPPORT, with its number in *ret_bad_fd, and all the passed fds
 * are closed. Logs nothing. */
int listen_fds_passed(int **ret_fds, int *ret_bad_fd);
