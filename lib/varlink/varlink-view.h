/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A plain call read in place, without building JSON objects: {"method": ..., "parameters":
 * {...}} and nothing else, whose parameters are at most VARLINK_VIEW_FIELDS_MAX strings
 * without escapes and unsigned integers. Most calls of a busy server look like this (the
 * key/value Get and Put); anything else is for the general path (json-c), which gives
 * the same answer, only slower. */

#define VARLINK_VIEW_FIELDS_MAX 4U

typedef struct VarlinkViewField {
        const char *name;
        size_t name_size;
        const char *value;      /* a string's bytes (no quotes), or an integer's digits */
        size_t value_size;
        bool string;
} VarlinkViewField;

typedef struct VarlinkView {
        const char *method;
        size_t method_size;
        VarlinkViewField fields[VARLINK_VIEW_FIELDS_MAX];
        size_t n_fields;
} VarlinkView;

/* For a message varlink_message_check() accepted: whether it is a plain call, and then
 * its parts, pointing into data. */
bool varlink_view_parse(const char *data, size_t size, VarlinkView *ret);
/* For any message: whether it is a plain call in ASCII (no control characters) that is strict JSON as
 * it stands, i.e. varlink_message_check() accepts it (and varlink_view_parse() reads the
 * same). A server tries this first and checks only the messages it declines: the check
 * would be a second pass over every byte. */
bool varlink_view_parse_unchecked(const char *data, size_t size, VarlinkView *ret);

/* The field of that name, or NULL. */
const VarlinkViewField *varlink_view_field(const VarlinkView *v, const char *name);
/* Whether the view has exactly these fields, strings where string is set (the rest
 * integers), in any order; then stores them in ret[] in the order of names. */
bool varlink_view_match(const VarlinkView *v, const char *const names[], const bool string[], size_t n,
                        const VarlinkViewField *ret[]);
/* An integer field's value, if it fits uint64_t. */
bool varlink_view_uint64(const VarlinkViewField *f, uint64_t *ret);
