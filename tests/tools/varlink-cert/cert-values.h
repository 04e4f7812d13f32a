/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

/* The certification sequence of org.varlink.certification: Start, Test01 … Test11, End.
 * Each reply is the argument of the next call, so a client that passes on what it
 * received and a service that checks what it is sent test each other. Both sides of
 * mrkv-varlink-cert check against the values here. */

#define CERT_INTERFACE "org.varlink.certification"
#define CERT_ERROR_CLIENT_ID CERT_INTERFACE ".ClientIdError"
#define CERT_ERROR_CERTIFICATION CERT_INTERFACE ".CertificationError"
/* Test10 answers with this many replies, all but the last with "continues". */
#define CERT_N_MORE 10U

typedef enum CertStepFlags {
        CERT_MORE = 1 << 0,   /* called with "more" */
        CERT_ONEWAY = 1 << 1, /* called with "oneway", no reply */
} CertStepFlags;

typedef enum CertStepId {
        CERT_START,
        CERT_TEST01,
        CERT_TEST10 = CERT_TEST01 + 9,
        CERT_TEST11,
        CERT_END,
        _CERT_STEP_MAX,
} CertStepId;

typedef struct CertStep {
        const char *method; /* fully qualified */
        const char *call;   /* the call's parameters as JSON, without client_id */
        const char *reply;  /* the reply's parameters as JSON; NULL for Start (a new client_id),
                             * Test10 (cert_more_reply()) and Test11 (oneway) */
        CertStepFlags flags;
} CertStep;

extern const CertStep cert_steps[_CERT_STEP_MAX];

/* The interface description, as the reference implementation serves it. */
extern const char *const cert_interface_description;

/* Parses one of the JSON texts above (which are known to be valid). */
json_object *cert_json(const char *text);
/* The parameters of the call of step id: cert_steps[id].call with client_id added
 * (none for Start). */
json_object *cert_call_parameters(CertStepId id, const char *client_id);
/* The i-th reply of Test10, from 1: {"string": "Reply number i"}. */
json_object *cert_more_reply(unsigned i);

/* Whether got is the value wants, typed as the interface types it: objects match as
 * sets of fields, a field that is null counts as absent (an absent optional field),
 * arrays element by element, an integer only an integer, a float any number of the
 * same value. NULL is JSON null. */
bool cert_json_equal(json_object *got, json_object *wants);
