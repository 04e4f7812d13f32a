/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json-util.h"

/* Varlink framing shared by server and client: a message is one JSON object followed
 * by a NUL byte. */

#define VARLINK_DEFAULT_MAX_MESSAGE (16U * 1024U * 1024U)

#define VARLINK_ERROR_METHOD_NOT_FOUND "org.varlink.service.MethodNotFound"
#define VARLINK_ERROR_METHOD_NOT_IMPLEMENTED "org.varlink.service.MethodNotImplemented"
#define VARLINK_ERROR_INVALID_PARAMETER "org.varlink.service.InvalidParameter"
#define VARLINK_ERROR_INTERFACE_NOT_FOUND "org.varlink.service.InterfaceNotFound"
#define VARLINK_ERROR_EXPECTED_MORE "org.varlink.service.ExpectedMore"
#define VARLINK_ERROR_PERMISSION_DENIED "org.varlink.service.PermissionDenied"

/* Parses one message (without its NUL). Strict JSON, valid UTF-8, an object at the top,
 * nothing after it. Returns 0 and a new reference, or -EBADMSG. */
int varlink_message_parse(const char *data, size_t size, json_object **ret);
/* The two steps of varlink_message_parse(): the check (0 or -EBADMSG), and the parse of
 * a message the check accepted. */
int varlink_message_check(const char *data, size_t size);
int varlink_message_parse_checked(const char *data, size_t size, json_object **ret);

/* A byte buffer for partial reads and writes. scanned counts the bytes after start that
 * varlink_buffer_next() has already found to hold no NUL: a message that arrives a byte
 * at a time is searched once, not again from its start on every read. */
typedef struct VarlinkBuffer {
        char *data;
        size_t start, end, allocated;
        size_t scanned;
} VarlinkBuffer;

void varlink_buffer_done(VarlinkBuffer *b);
static inline size_t varlink_buffer_size(const VarlinkBuffer *b) {
        return b->end - b->start;
}
/* Makes room for at least n more bytes at the end; returns the write pointer or NULL. */
char *varlink_buffer_reserve(VarlinkBuffer *b, size_t n);
int varlink_buffer_append(VarlinkBuffer *b, const void *data, size_t n);
/* Appends a serialized message and its NUL terminator. */
int varlink_buffer_append_message(VarlinkBuffer *b, json_object *message);
void varlink_buffer_consume(VarlinkBuffer *b, size_t n);

/* Finds the next complete message in b. Returns 1 and its extent (message without the
 * NUL, and the number of bytes to consume), 0 if incomplete, -EMSGSIZE if the buffered
 * incomplete data is already longer than max. Each byte is searched for the NUL once:
 * a call after more bytes arrived goes on where the last one stopped. */
int varlink_buffer_next(VarlinkBuffer *b, size_t max, const char **ret_data, size_t *ret_size);

/* Typed access to call parameters, in the manner of sd_json_dispatch(). */
typedef enum VarlinkFieldType {
        VARLINK_STRING,  /* const char * into the parameters object; no embedded NUL */
        VARLINK_UINT64,  /* uint64_t; non-negative integers only */
        VARLINK_UINT32,  /* uint32_t */
        VARLINK_INT64,   /* int64_t */
        VARLINK_BOOL,    /* bool */
        VARLINK_ARRAY,   /* json_object * (borrowed), a JSON array */
        VARLINK_OBJECT,  /* json_object * (borrowed), a JSON object */
        VARLINK_ANY,     /* json_object * (borrowed), any value */
} VarlinkFieldType;

typedef struct VarlinkField {
        const char *name;
        VarlinkFieldType type;
        size_t offset;  /* where the value is stored in the target struct */
        bool mandatory;
} VarlinkField;

/* Fills target from parameters (NULL is the same as {}). Null values count as absent.
 * Unknown fields, missing mandatory fields and wrong types give -EINVAL and the
 * offending field's name in *ret_bad_field. */
int varlink_dispatch(json_object *parameters, const VarlinkField fields[], void *target,
                     const char **ret_bad_field);
