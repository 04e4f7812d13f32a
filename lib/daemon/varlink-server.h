/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "varlink-message.h"

/* A Varlink server on sd-event: accepts connections on listening sockets, reads
 * NUL-terminated JSON calls, dispatches them to bound methods and writes replies.
 * Calls on one connection are answered in order; a method may answer later (a
 * deferred reply), and until it does the connection reads no further call.
 * org.varlink.service.GetInfo and GetInterfaceDescription are built in. */

typedef struct VarlinkServer VarlinkServer;
typedef struct VarlinkConn VarlinkConn;

typedef enum VarlinkCallFlags {
        VARLINK_CALL_MORE = 1 << 0,
        VARLINK_CALL_ONEWAY = 1 << 1,
} VarlinkCallFlags;

/* A method. It answers with varlink_conn_reply()/varlink_conn_error*() now or later.
 * Returning a negative errno without having answered closes the connection. */
typedef int (*VarlinkMethod)(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata);
typedef void (*VarlinkConnHandler)(VarlinkConn *c, void *userdata);

typedef struct VarlinkServerInfo {
        const char *vendor, *product, *version, *url;
} VarlinkServerInfo;

int varlink_server_new(sd_event *event, const VarlinkServerInfo *info, void *userdata, VarlinkServer **ret);
VarlinkServer *varlink_server_free(VarlinkServer *s);

/* Adds an interface from its description in the Varlink IDL; its name is read from
 * the "interface" line. The text is copied. */
int varlink_server_add_interface(VarlinkServer *s, const char *description);
/* method is the fully qualified name, "org.mrkv.KV.Get". */
int varlink_server_bind(VarlinkServer *s, const char *method, VarlinkMethod func);

void varlink_server_set_disconnect_handler(VarlinkServer *s, VarlinkConnHandler h);
void varlink_server_set_max_message_size(VarlinkServer *s, size_t max);
void varlink_server_set_max_connections(VarlinkServer *s, unsigned max);
unsigned varlink_server_n_connections(VarlinkServer *s);

/* Serves on an already listening socket (activation or address_listen()); takes the fd. */
int varlink_server_listen_fd(VarlinkServer *s, int fd);
/* Closes every connection, after flushing what can be written without blocking for
 * more than timeout_usec. */
void varlink_server_flush_and_close(VarlinkServer *s, uint64_t timeout_usec);

/* Answers the call. parameters may be NULL ({}); its reference is taken. */
int varlink_conn_reply(VarlinkConn *c, json_object *parameters);
/* An intermediate reply to a call with "more" ("continues": true); the call stays open. */
int varlink_conn_notify(VarlinkConn *c, json_object *parameters);
int varlink_conn_error(VarlinkConn *c, const char *error, json_object *parameters);
int varlink_conn_error_invalid_parameter(VarlinkConn *c, const char *parameter);
/* Closes the connection from the server side; the disconnect handler runs. */
void varlink_conn_close(VarlinkConn *c);

bool varlink_conn_has_pending_call(VarlinkConn *c);
void *varlink_conn_get_userdata(VarlinkConn *c);
void varlink_conn_set_userdata(VarlinkConn *c, void *userdata);
VarlinkServer *varlink_conn_get_server(VarlinkConn *c);
/* A short description of the peer for log messages ("pid 1234" or "fd 7"). */
const char *varlink_conn_describe(VarlinkConn *c);
