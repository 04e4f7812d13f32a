/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "address.h"
#include "mrkv/kv.h"
#include "varlink-client.h"

/* What the clerk shares with the other objects of the library (list, watch, keepalive),
 * which make calls through a clerk or open connections of their own like its. */

/* Makes the call, resending on a new connection until some reply arrives. Returns 0 with
 * the reply's parameters and its error name (malloc'd; NULL on success), -ETIMEDOUT once
 * the call's deadline has passed, or another negative errno that resending cannot cure.
 * *ret_unanswered tells whether an earlier attempt may have reached the server without
 * its reply reaching us. */
int clerk_call(mrkv_clerk *c, const char *method, json_object *parameters, json_object **ret_reply,
               char **ret_error, bool *ret_unanswered);

/* Errors any Varlink service may return, mapped to errno; callers handle their own first. */
int generic_error_to_errno(const char *error);

/* Failures that another attempt on a new connection may cure. */
bool error_is_transient(int r);

const Address *clerk_get_address(const mrkv_clerk *c);
uint64_t clerk_get_attempt_timeout(const mrkv_clerk *c);
uint64_t clerk_get_retry_pause(const mrkv_clerk *c);

/* Lowers what a keepalive takes for its lease's expiry (CLOCK_MONOTONIC usec), for a
 * caller that knows when the lease was granted or last renewed. */
void keepalive_set_expiry(mrkv_keepalive *k, uint64_t usec);

/* A new connection to address by deadline (CLOCK_MONOTONIC usec), as a VarlinkClient. */
int clerk_connect(const Address *address, uint64_t deadline, VarlinkClient **ret);
