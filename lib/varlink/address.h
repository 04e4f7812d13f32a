/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/* A transport address: "unix:/path" (also a bare absolute path), or "tcp:host:port"
 * ("tcp:[::1]:port" for IPv6 literals). */
typedef struct Address {
        int family; /* AF_UNIX, AF_INET or AF_INET6 */
        struct sockaddr_storage sa;
        socklen_t sa_len;
        char *string; /* as given, for messages */
} Address;

int address_parse(const char *s, Address *ret);
void address_done(Address *a);

/* Opens a connected stream socket (blocking connect, then O_NONBLOCK if nonblock). */
int address_connect(const Address *a, bool nonblock);
/* Opens an O_NONBLOCK stream socket connected by deadline (CLOCK_MONOTONIC µs, UINT64_MAX:
 * none), since a blocking connect() over TCP may take minutes; -ETIMEDOUT after it. A
 * Unix socket whose listen backlog is full gives -EAGAIN at once. */
int address_connect_until(const Address *a, uint64_t deadline);
/* Binds and listens; a stale Unix socket file is replaced, its directory created. */
int address_listen(const Address *a);
/* Removes the socket file of a Unix address (no-op for TCP). */
void address_unlink(const Address *a);

/* The default address of a service: $env_var if set, else "unix:DIR/sockname" with DIR
 * $RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR/mrkv or /run/mrkv. The result is malloc'd. */
int address_default(const char *env_var, const char *sockname, char **ret);

#define MRKV_COORDINATOR_ADDRESS_ENV "MRKV_COORDINATOR_ADDRESS"
#define MRKV_COORDINATOR_SOCKET "coordinator.sock"
#define MRKV_KV_ADDRESS_ENV "MRKV_KV_ADDRESS"
#define MRKV_KV_SOCKET "kv.sock"
