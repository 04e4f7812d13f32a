/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "varlink-message.h"

/* A blocking Varlink client for one connection, for programs that make one call at
 * a time (a worker, the clerk, the CLI), or a few pipelined: calls queued and sent with
 * one write, their replies read in call order, as the server gives them. Time-outs are
 * per call; UINT64_MAX waits forever. Not thread-safe: one client per thread. */

typedef struct VarlinkClient VarlinkClient;

int varlink_client_connect(const char *address, VarlinkClient **ret);
/* Takes a connected stream socket. */
int varlink_client_new_fd(int fd, VarlinkClient **ret);
VarlinkClient *varlink_client_free(VarlinkClient *c);
int varlink_client_get_fd(VarlinkClient *c);

/* Sends a call: queues it and writes everything queued. parameters is borrowed (NULL:
 * {}). flags: VARLINK_CLIENT_MORE, ONEWAY. -ETIMEDOUT if the socket takes not all of it
 * in time, -ECONNRESET if the server is gone. */
#define VARLINK_CLIENT_MORE 1U
#define VARLINK_CLIENT_ONEWAY 2U
int varlink_client_send(VarlinkClient *c, const char *method, json_object *parameters, unsigned flags,
                        uint64_t timeout_usec);
/* Queues a call without writing it: the next send (or flush) writes it with what it
 * writes, so that calls sent back to back leave in one write. At most
 * VARLINK_CLIENT_QUEUE_MAX bytes wait (any one call may be larger): -ENOBUFS beyond. */
#define VARLINK_CLIENT_QUEUE_MAX ((size_t) VARLINK_DEFAULT_MAX_MESSAGE)
int varlink_client_queue(VarlinkClient *c, const char *method, json_object *parameters, unsigned flags);
/* Writes what is queued. */
int varlink_client_flush(VarlinkClient *c, uint64_t timeout_usec);

/* Reads the next reply, of the oldest call not answered yet. Returns 0 with
 * *ret_parameters (a new reference, {} if absent), *ret_error (the error name, valid
 * until the next read, NULL for success) and *ret_continues; -ETIMEDOUT, -ECONNRESET
 * (closed or reset), -EBADMSG (not Varlink). */
int varlink_client_read(VarlinkClient *c, uint64_t timeout_usec, json_object **ret_parameters,
                        const char **ret_error, bool *ret_continues);

/* send + read for a simple call. */
int varlink_client_call(VarlinkClient *c, const char *method, json_object *parameters, uint64_t timeout_usec,
                        json_object **ret_parameters, const char **ret_error);

static inline void varlink_client_freep(VarlinkClient **c) {
        if (*c)
                *c = varlink_client_free(*c);
}
