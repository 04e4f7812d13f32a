/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "cert-values.h"
#include "json-util.h"
#include "org.varlink.certification.varlink.h"

const char *const cert_interface_description = cert_interface_text;

#define BASICS "\"bool\":false,\"int\":2,\"float\":3.141592653589793,\"string\":\"a lot of string\""
#define MAP "{\"foo\":\"Foo\",\"bar\":\"Bar\"}"
#define SET "{\"one\":{},\"two\":{},\"three\":{}}"
/* The values of MyType the reference implementation sends and expects. The optional
 * fields are left null. */
#define MYTYPE                                                                                  \
        "{\"object\":{\"method\":\"org.varlink.certification.Test09\","                         \
        "\"parameters\":{\"map\":" MAP "}},"                                                    \
        "\"enum\":\"two\","                                                                     \
        "\"struct\":{\"first\":1,\"second\":\"2\"},"                                            \
        "\"array\":[\"one\",\"two\",\"three\"],"                                                \
        "\"dictionary\":" MAP ","                                                               \
        "\"stringset\":" SET ","                                                                \
        "\"nullable\":null,"                                                                    \
        "\"nullable_array_struct\":null,"                                                       \
        "\"interface\":{\"foo\":[null,{\"Foo\":\"foo\",\"Bar\":\"bar\"},null,"                  \
        "{\"one\":\"foo\",\"two\":\"bar\"}],"                                                   \
        "\"anon\":{\"foo\":true,\"bar\":false}}}"
#define MORE_REPLIES                                                                            \
        "[\"Reply number 1\",\"Reply number 2\",\"Reply number 3\",\"Reply number 4\","         \
        "\"Reply number 5\",\"Reply number 6\",\"Reply number 7\",\"Reply number 8\","          \
        "\"Reply number 9\",\"Reply number 10\"]"

const CertStep cert_steps[_CERT_STEP_MAX] = {
        [CERT_START] = { CERT_INTERFACE ".Start", "{}", NULL },
        [CERT_TEST01 + 0] = { CERT_INTERFACE ".Test01", "{}", "{\"bool\":true}" },
        [CERT_TEST01 + 1] = { CERT_INTERFACE ".Test02", "{\"bool\":true}", "{\"int\":1}" },
        [CERT_TEST01 + 2] = { CERT_INTERFACE ".Test03", "{\"int\":1}", "{\"float\":1.0}" },
        [CERT_TEST01 + 3] = { CERT_INTERFACE ".Test04", "{\"float\":1.0}", "{\"string\":\"ping\"}" },
        [CERT_TEST01 + 4] = { CERT_INTERFACE ".Test05", "{\"string\":\"ping\"}", "{" BASICS "}" },
        [CERT_TEST01 + 5] = { CERT_INTERFACE ".Test06", "{" BASICS "}", "{\"struct\":{" BASICS "}}" },
        [CERT_TEST01 + 6] = { CERT_INTERFACE ".Test07", "{\"struct\":{" BASICS "}}", "{\"map\":" MAP "}" },
        [CERT_TEST01 + 7] = { CERT_INTERFACE ".Test08", "{\"map\":" MAP "}", "{\"set\":" SET "}" },
        [CERT_TEST01 + 8] = { CERT_INTERFACE ".Test09", "{\"set\":" SET "}", "{\"mytype\":" MYTYPE "}" },
        [CERT_TEST10] = { CERT_INTERFACE ".Test10", "{\"mytype\":" MYTYPE "}", NULL, CERT_MORE },
        [CERT_TEST11] = { CERT_INTERFACE ".Test11", "{\"last_more_replies\":" MORE_REPLIES "}", NULL,
                          CERT_ONEWAY },
        [CERT_END] = { CERT_INTERFACE ".End", "{}", "{\"all_ok\":true}" },
};

json_object *cert_json(const char *text) {
        json_object *o = json_tokener_parse(text);

        /* The texts are constants of this file: only memory can be short. */
        assert(o || !text);
        return o;
}

json_object *cert_call_parameters(CertStepId id, const char *client_id) {
        json_object *p;

        assert(id < _CERT_STEP_MAX);
        p = cert_json(cert_steps[id].call);
        if (p && id != CERT_START &&
            json_object_add(p, "client_id", json_object_new_string(client_id)) < 0) {
                json_object_put(p);
                return NULL;
        }
        return p;
}

json_object *cert_more_reply(unsigned i) {
        char text[64];

        snprintf(text, sizeof(text), "{\"string\":\"Reply number %u\"}", i);
        return cert_json(text);
}

static bool object_equal(json_object *got, json_object *wants) {
        /* got has every non-null field of wants, with the same value, ... */
        json_object_object_foreach(wants, key, value) {
                json_object *g = NULL;

                if (!value)
                        continue;
                if (!json_object_object_get_ex(got, key, &g) || !cert_json_equal(g, value))
                        return false;
        }
        /* ... and no other. */
        json_object_object_foreach(got, gkey, gvalue) {
                json_object *w = NULL;

                if (gvalue && (!json_object_object_get_ex(wants, gkey, &w) || !w))
                        return false;
        }
        return true;
}

bool cert_json_equal(json_object *got, json_object *wants) {
        json_type t = json_object_get_type(wants);

        if (t == json_type_double)
                return (json_object_is_type(got, json_type_double) ||
                        json_object_is_type(got, json_type_int)) &&
                       json_object_get_double(got) == json_object_get_double(wants);
        if (json_object_get_type(got) != t)
                return false;

        switch (t) {
        case json_type_null:
                return true;
        case json_type_boolean:
                return json_object_get_boolean(got) == json_object_get_boolean(wants);
        case json_type_int:
                /* Both ways, so that values beyond INT64_MAX (kept unsigned) compare too. */
                return json_object_get_int64(got) == json_object_get_int64(wants) &&
                       json_object_get_uint64(got) == json_object_get_uint64(wants);
        case json_type_string:
                return json_object_get_string_len(got) == json_object_get_string_len(wants) &&
                       memcmp(json_object_get_string(got), json_object_get_string(wants),
                              (size_t) json_object_get_string_len(wants)) == 0;
        case json_type_array: {
                size_t n = json_object_array_length(wants);

                if (json_object_array_length(got) != n)
                        return false;
                for (size_t i = 0; i < n; i++)
                        if (!cert_json_equal(json_object_array_get_idx(got, i),
                                             json_object_array_get_idx(wants, i)))
                                return false;
                return true;
        }
        case json_type_object:
                return object_equal(got, wants);
        default:
                return false;
        }
}
