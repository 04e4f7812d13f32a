/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "varlink-message.h"
#include "varlink-view.h"

/* A Varlink server on sd-event: accepts connections on listening sockets, reads
 * NUL-terminated JSON calls, dispatches them to bound methods and writes replies.
 * Calls on one connection are answered in order; a method may answer later (a
 * deferred reply), and until it does the connection reads no further call, unless it
 * holds the call (varlink_conn_hold()): then the connection goes on with later calls and
 * keeps their answers back until the held one is answered.
 * org.varlink.service.GetInfo and GetInterfaceDescription are built in. */

typedef struct VarlinkServer VarlinkServer;
typedef struct VarlinkConn VarlinkConn;
typedef struct VarlinkHeld VarlinkHeld;

typedef enum VarlinkCallFlags {
        VARLINK_CALL_MORE = 1 << 0,
        VARLINK_CALL_ONEWAY = 1 << 1,
} VarlinkCallFlags;

/* A method. It answers the call once, with varlink_conn_reply*() or varlink_conn_error*()
 * (after any number of varlink_conn_notify*() if the call asked for "more"), either before
 * it returns or later, from another event (a deferred reply). What it returns:
 *
 *   >= 0  fine, answered or not (then the answer is deferred);
 *   < 0   after the call was answered: fine too. The error senders return a negative
 *         errno once the error is queued, as sd_varlink_error() does, so a method ends
 *         with "return varlink_conn_error(c, ...);", and a failed parameter check with
 *                 r = varlink_conn_dispatch(c, parameters, fields, &p);
 *                 if (r < 0)
 *                         return r;
 *   < 0   with the call unanswered: the method failed (out of memory, say), and the
 *         connection is closed, which tells the client nothing about the outcome.
 *
 * The same holds for deferred answers: whoever answers ignores a negative return of the
 * error senders, and an answer that cannot be queued (out of memory) closes the
 * connection, in a method or later, so that no call is left without an answer or a
 * closed connection. The disconnect handler runs then, from within that call. */
typedef int (*VarlinkMethod)(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata);
typedef void (*VarlinkConnHandler)(VarlinkConn *c, void *userdata);
/* A method's handler for plain calls (varlink-view.h), which it reads in place, without
 * json-c: for the calls that make up most of a busy server's work. It returns 0 for a call
 * it leaves to the method (without having answered it), and otherwise as a method does,
 * with 1 in place of ">= 0". */
typedef int (*VarlinkPlainMethod)(VarlinkConn *c, const VarlinkView *call, void *userdata);

/* Bounds on what clients can make the server hold; each is enforced with a log line, and
 * the server goes on serving everyone else. */
typedef struct VarlinkServerLimits {
        /* At the limit the connection idle longest (no call in flight, nothing buffered, not
         * long-lived) is closed to make room for a new one; with none idle, accepting pauses
         * until a connection closes. 0: no limit (accepting still pauses at EMFILE); daemons
         * fit it to RLIMIT_NOFILE (daemon_new()). */
        unsigned max_connections;
        /* Bytes of incomplete messages buffered across all connections: a connection whose
         * incomplete message takes the total over it is closed. 0: no limit. The limit of one
         * connection is the message size limit. */
        size_t max_input;
        /* A connection with no call in flight, nothing buffered and not long-lived is
         * closed after this long; UINT64_MAX: never. µs. */
        uint64_t idle_timeout;
        /* A message must arrive whole within this long of its first byte, or the
         * connection is closed; UINT64_MAX: never. µs. */
        uint64_t message_timeout;
} VarlinkServerLimits;

/* What a daemon serves unless told otherwise (fewer if RLIMIT_NOFILE leaves room for fewer):
 * each connection may hold its output up to the high-water mark, so memory grows with it. */
#define VARLINK_DEFAULT_MAX_CONNECTIONS 4096U
#define VARLINK_DEFAULT_MAX_INPUT ((size_t) 256 * 1024 * 1024)
#define VARLINK_DEFAULT_IDLE_TIMEOUT (300 * USEC_PER_SEC)
#define VARLINK_DEFAULT_MESSAGE_TIMEOUT (30 * USEC_PER_SEC)
#define VARLINK_SERVER_LIMITS_DEFAULT                                   \
        ((VarlinkServerLimits) {                                        \
                .max_connections = VARLINK_DEFAULT_MAX_CONNECTIONS,     \
                .max_input = VARLINK_DEFAULT_MAX_INPUT,                 \
                .idle_timeout = VARLINK_DEFAULT_IDLE_TIMEOUT,           \
                .message_timeout = VARLINK_DEFAULT_MESSAGE_TIMEOUT,     \
        })

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
/* Adds a plain handler to a bound method; -ENOENT if it is not bound. Both must give the
 * same answers: the plain one is only faster. */
int varlink_server_bind_plain(VarlinkServer *s, const char *method, VarlinkPlainMethod func);

void varlink_server_set_disconnect_handler(VarlinkServer *s, VarlinkConnHandler h);
/* Called when a connection's queued output has all been written after it had to wait for
 * the peer to read: a server that pushes messages (notify on a call with "more") holds
 * them back while varlink_conn_output_size() is above 0 and sends the newest then. */
void varlink_server_set_drained_handler(VarlinkServer *s, VarlinkConnHandler h);
void varlink_server_set_max_message_size(VarlinkServer *s, size_t max);
/* A new server has VARLINK_SERVER_LIMITS_DEFAULT. */
void varlink_server_set_limits(VarlinkServer *s, const VarlinkServerLimits *limits);
unsigned varlink_server_n_connections(VarlinkServer *s);
/* Bytes of incomplete messages buffered across all connections. */
size_t varlink_server_input_held(VarlinkServer *s);

/* Serves on an already listening socket (activation or address_listen()); takes the fd. */
int varlink_server_listen_fd(VarlinkServer *s, int fd);
/* Closes every connection, after flushing what can be written without blocking for
 * more than timeout_usec. */
void varlink_server_flush_and_close(VarlinkServer *s, uint64_t timeout_usec);

/* Fills target from the call's parameters with varlink_dispatch(). A bad parameter is
 * answered with org.varlink.service.InvalidParameter naming it, and -EINVAL returned. */
int varlink_conn_dispatch(VarlinkConn *c, json_object *parameters, const VarlinkField fields[],
                          void *target);

/* Answers the call and returns 0. parameters may be NULL ({}); its reference is taken,
 * also on failure. -EBADMSG: no call to answer; -ENOMEM: could not be queued, and the
 * connection was closed. */
int varlink_conn_reply(VarlinkConn *c, json_object *parameters);
/* The same, with the parameters given as fields written straight into the output
 * (strings of valid UTF-8, or unsigned integers), without building JSON objects. */
typedef struct VarlinkReplyField {
        const char *name;
        const char *string;     /* NULL: the field is number */
        size_t string_size;
        uint64_t number;
} VarlinkReplyField;
int varlink_conn_reply_fields(VarlinkConn *c, const VarlinkReplyField fields[], size_t n);
/* An intermediate reply to a call with "more" ("continues": true); the call stays open.
 * -EINVAL (and the call still open) if the call did not ask for more. */
int varlink_conn_notify(VarlinkConn *c, json_object *parameters);
/* Answers the call with an error. Once it is queued, returns a negative errno for it:
 * -EINVAL for InvalidParameter, the errno sd_varlink_error() gives for the other errors
 * of org.varlink.service, -EBADR for any other error. */
int varlink_conn_error(VarlinkConn *c, const char *error, json_object *parameters);
/* InvalidParameter naming parameter, for a value that varlink_conn_dispatch() accepts
 * but the method does not ("kind" that is no task kind); returns -EINVAL once queued. */
int varlink_conn_error_invalid_parameter(VarlinkConn *c, const char *parameter);

/* The same with the parameters given as json_build_object() pairs, ended by NULL:
 *         return varlink_conn_replyb(c, "value", json_object_new_string(v),
 *                                       "version", json_object_new_uint64(n), NULL);
 * A NULL value (its allocation failed) makes it an answer that cannot be queued: every
 * value is released, the connection closed and -ENOMEM returned. */
int varlink_conn_replyb(VarlinkConn *c, ...) _sentinel_;
int varlink_conn_notifyb(VarlinkConn *c, ...) _sentinel_;
int varlink_conn_errorb(VarlinkConn *c, const char *error, ...) _sentinel_;
/* Closes the connection from the server side; the disconnect handler runs. */
void varlink_conn_close(VarlinkConn *c);

bool varlink_conn_has_pending_call(VarlinkConn *c);

/* A connection holds at most this many calls at once, and calls whose sizes (what the
 * method keeps for each: a Put's key and value, say) add up to at most this much, or one
 * call of any size; at a bound it reads no further call until the oldest is answered
 * (nothing is dropped). The answers of the calls behind held ones wait in the server, up
 * to the output's high-water mark likewise. */
#define VARLINK_HELD_MAX 256U
#define VARLINK_HELD_SIZE_MAX ((size_t) 1024 * 1024)
/* From within a method, for a call without "more": the answer is deferred, and the
 * connection does not wait for it, as it does for other deferred answers, but reads and
 * answers the calls after it meanwhile, keeping their answers back until this one is
 * given (Varlink answers in call order; this is how pipelined calls that wait for
 * something, a log's sync say, share the wait). userdata is the caller's. -ENOMEM, and
 * the call is still the current one. */
int varlink_conn_hold(VarlinkConn *c, void *userdata, size_t size, VarlinkHeld **ret);
/* Answers a held call: the next answer sent on the connection returned (one of
 * varlink_conn_reply*() or varlink_conn_error*(), at once) is h's, and frees h. */
VarlinkConn *varlink_held_answer(VarlinkHeld *h);
void *varlink_held_get_userdata(VarlinkHeld *h);
/* The held calls of c not answered yet, in call order: the first after after (NULL: from
 * the start). A disconnect handler forgets them: they are freed after it returns. */
VarlinkHeld *varlink_conn_next_held(VarlinkConn *c, VarlinkHeld *after);
/* The bytes queued for the peer that it has not read yet. */
size_t varlink_conn_output_size(VarlinkConn *c);
/* The same plus what the socket holds that the peer has not read (SIOCOUTQ: on a Unix
 * socket, what waits in the peer's receive queue): 0 once the peer read everything. */
size_t varlink_conn_unread_size(VarlinkConn *c);
/* A long-lived connection (a registered worker, idle between tasks) is never idle: neither
 * the idle time-out nor the connection limit closes it. */
void varlink_conn_set_long_lived(VarlinkConn *c, bool b);
void *varlink_conn_get_userdata(VarlinkConn *c);
void varlink_conn_set_userdata(VarlinkConn *c, void *userdata);
VarlinkServer *varlink_conn_get_server(VarlinkConn *c);
/* A short description of the peer for log messages ("pid 1234" or "fd 7"). */
const char *varlink_conn_describe(VarlinkConn *c);
/* The peer's uid and gid as SO_PEERCRED gave them when the connection was accepted:
 * who connected, not who writes now. -ENODATA for a socket without credentials. */
int varlink_conn_get_peer_credentials(VarlinkConn *c, uid_t *ret_uid, gid_t *ret_gid);
#ifndef UID_INVALID
#define UID_INVALID ((uid_t) -1)
#endif
/* The same uid, or UID_INVALID where the socket has none. */
uid_t varlink_conn_get_peer_uid(VarlinkConn *c);
