/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* The client side of org.varlink.certification on mrkv's Varlink client: calls Start,
 * Test01 … Test11 and End on one connection, each with what the previous call
 * returned, and checks every reply against the sequence (types included), Test10's
 * stream of "continues" replies and End's all_ok. Then the service's
 * org.varlink.service interface: GetInfo, GetInterfaceDescription (the description
 * must be the reference's, byte for byte), and the errors for an unknown client id
 * and an unknown method. Prints each step on stdout. Returns 0 if the service
 * passed, -EPROTO if it answered wrongly, another -errno if the connection failed
 * (all logged). */
int cert_client_run(const char *address, uint64_t timeout_usec);
