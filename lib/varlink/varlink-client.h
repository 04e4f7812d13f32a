/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "varlink-message.h"

/* A blocking Varlink client for one connection, for programs that make one call at
 * a time (a worker, the clerk, the CLI). Time-outs are per call; UINT64_MAX waits
 * forever. Not thread-safe: one client per thread. */

typedef struct VarlinkClient VarlinkClient;

int varlink_client_connect(const char *address, VarlinkClient **ret);
/* Takes a connected stream socket. */
int varlink_client_new_fd(int fd, VarlinkClient **ret);
VarlinkClient *varlink_client_free(VarlinkClient *c);
int varlink_client_get_fd(VarlinkClient *c);

/* Sends a call. parameters is borrowed (NULL: {}). flags: VARLINK_CLIENT_MORE, ONEWAY. */
#define VARLINK_CLIENT_MORE 1U
#define VARLINK_CLIENT_ONEWAY 2U
int varlink_client_send(VarlinkClient *c, const char *method, json_object *parameters, unsigned flags,
                        uint64_t timeout_usec);

/* Reads the next reply. Returns 0 with *ret_parameters (a new reference, {} if absent),
 * *ret_error (the error name, valid until the next read, NULL for success) and
 * *ret_continues; -ETIMEDOUT, -ECONNRESET (closed or reset), -EBADMSG (not Varlink). */
int varlink_client_read(VarlinkClient *c, uint64_t timeout_usec, json_object **ret_parameters,
                        const char **ret_error, bool *ret_continues);

/* send + read for a simple call. */
int varlink_client_call(VarlinkClient *c, const char *method, json_object *parameters, uint64_t timeout_usec,
                        json_object **ret_parameters, const char **ret_error);

static inline void varlink_client_freep(VarlinkClient **c) {
        if (*c)
                *c = varlink_client_free(*c);
}
