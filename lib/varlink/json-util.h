/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "macro.h"

static inline void json_object_putp(json_object **j) {
        if (*j)
                json_object_put(*j);
}
#define _cleanup_json_ _cleanup_(json_object_putp)

/* Checked construction of JSON values. json_object_new_*() return NULL when memory runs
 * out, and json_object_object_add() would store that NULL as a null member, so a reply
 * would silently lose a field. These helpers take the reference of every value they are
 * given, also when they fail, and return -ENOMEM instead. Values may be passed straight
 * from json_object_new_*():
 *
 *         r = json_build_object(&o,
 *                               "value", json_object_new_string(value),
 *                               "version", json_object_new_uint64(version),
 *                               NULL);
 *         if (r < 0)
 *                 return r;
 *         if (error)
 *                 r = json_object_add(o, "error", json_object_new_string(error));
 */

/* Adds value under key (copied; a member of that name is replaced). NULL value: -ENOMEM. */
int json_object_add(json_object *o, const char *key, json_object *value);

/* Appends value to the array a. NULL value: -ENOMEM. */
int json_array_append(json_object *a, json_object *value);

/* A new array of the n strings of v (copied), or NULL when memory ran out: a value for
 * json_build_object(). */
json_object *json_string_array_new(char *const *v, size_t n);

/* Builds a new object from key/value pairs, ended by a NULL key; no pairs give {}.
 * Keys must be string literals: the object points at them instead of copying them, and
 * takes them as new without looking for an earlier one of the same name (so the pairs
 * name distinct keys), which saves a copy and a lookup per member of every reply. A NULL
 * value (a failed allocation) releases what was built and every later value and gives
 * -ENOMEM; *ret is set only on success. */
int json_build_object(json_object **ret, ...) _sentinel_;
int json_build_object_va(json_object **ret, va_list ap);

/* Writes the JSON string literal of the n bytes at s (valid UTF-8) to dst, quotes
 * included, and returns its length: at most JSON_ESCAPED_MAX(n). Quote, backslash and
 * control characters are escaped, nothing else. */
#define JSON_ESCAPED_MAX(n) (6 * (n) + 2)
/* The length of the longest prefix of s that a JSON string holds as it is: no quote,
 * backslash or control character, and with ascii set nothing from 0x80 on either. */
size_t json_plain_prefix(const char *s, size_t n, bool ascii);
size_t json_escape(char *dst, const char *s, size_t n);
