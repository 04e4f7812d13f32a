/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "cert-client.h"
#include "cert-values.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "varlink-client.h"

static const char *short_name(const char *method) {
        const char *dot = strrchr(method, '.');
        return dot ? dot + 1 : method;
}

static const char *json_text(json_object *o) {
        return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* Reads one reply to method; an error reply, or one whose "continues" is not
 * continues_expected, is a failure. */
static int read_reply(VarlinkClient *c, const char *method, uint64_t timeout_usec, bool continues_expected,
                      json_object **ret) {
        _cleanup_json_ json_object *p = NULL;
        const char *error;
        bool continues;
        int r;

        r = varlink_client_read(c, timeout_usec, &p, &error, &continues);
        if (r < 0)
                return log_error_errno(r, "%s: no reply: %m", method);
        if (error)
                return log_error_errno(EPROTO, "%s: error reply %s %s", method, error, json_text(p));
        if (continues != continues_expected)
                return log_error_errno(EPROTO, "%s: a reply %s \"continues\", expected %s.", method,
                                       continues ? "with" : "without",
                                       continues_expected ? "with" : "without");
        *ret = TAKE_PTR(p);
        return 0;
}

/* Checks got against a JSON text of the sequence. */
static int expect(const char *method, json_object *got, json_object *wants) {
        if (!wants)
                return log_oom();
        if (!cert_json_equal(got, wants))
                return log_error_errno(EPROTO, "%s: got %s, wants %s", method, json_text(got),
                                       json_text(wants));
        return 0;
}

/* Test10: CERT_N_MORE replies, the strings of which are returned in *ret as Test11's
 * last_more_replies. */
static int read_more(VarlinkClient *c, const char *method, uint64_t timeout_usec, json_object **ret) {
        _cleanup_json_ json_object *strings = json_object_new_array();
        int r;

        if (!strings)
                return log_oom();
        for (unsigned i = 1; i <= CERT_N_MORE; i++) {
                _cleanup_json_ json_object *p = NULL, *wants = cert_more_reply(i);
                json_object *s;

                r = read_reply(c, method, timeout_usec, i < CERT_N_MORE, &p);
                if (r < 0)
                        return r;
                r = expect(method, p, wants);
                if (r < 0)
                        return r;
                printf("  %s reply %u: %s\n", short_name(method), i, json_text(p));
                (void) json_object_object_get_ex(p, "string", &s);
                r = json_array_append(strings, json_object_get(s));
                if (r < 0)
                        return log_oom();
        }
        *ret = TAKE_PTR(strings);
        return 0;
}

/* The parameters of the next call: what the previous reply carried, with client_id. */
static json_object *next_call(CertStepId id, json_object *last, json_object *more_replies,
                              const char *client_id) {
        _cleanup_json_ json_object *p = NULL;

        if (id == CERT_TEST11) {
                if (json_build_object(&p, "last_more_replies", json_object_get(more_replies), NULL) < 0)
                        return NULL;
        } else if (id == CERT_START || id == CERT_TEST01 || id == CERT_END) {
                if (json_build_object(&p, NULL) < 0)
                        return NULL;
        } else if (json_object_deep_copy(last, &p, NULL) < 0)
                return NULL;
        if (id != CERT_START && json_object_add(p, "client_id", json_object_new_string(client_id)) < 0)
                return NULL;
        return TAKE_PTR(p);
}

static int run_sequence(VarlinkClient *c, uint64_t timeout_usec, char **ret_client_id) {
        _cleanup_json_ json_object *last = NULL, *more_replies = NULL;
        _cleanup_free_ char *client_id = NULL;
        int r;

        for (CertStepId id = CERT_START; id < _CERT_STEP_MAX; id++) {
                const CertStep *step = &cert_steps[id];
                _cleanup_json_ json_object *call = NULL, *reply = NULL, *wants = NULL;
                unsigned flags = ((step->flags & CERT_MORE) ? VARLINK_CLIENT_MORE : 0) |
                                 ((step->flags & CERT_ONEWAY) ? VARLINK_CLIENT_ONEWAY : 0);

                call = next_call(id, last, more_replies, client_id);
                if (!call)
                        return log_oom();
                r = varlink_client_send(c, step->method, call, flags, timeout_usec);
                if (r < 0)
                        return log_error_errno(r, "%s: failed to send the call: %m", step->method);

                if (step->flags & CERT_ONEWAY) {
                        printf("%s: sent oneway\n", short_name(step->method));
                        continue;
                }
                if (step->flags & CERT_MORE) {
                        r = read_more(c, step->method, timeout_usec, &more_replies);
                        if (r < 0)
                                return r;
                        continue;
                }

                r = read_reply(c, step->method, timeout_usec, false, &reply);
                if (r < 0)
                        return r;
                if (id == CERT_START) {
                        json_object *v;

                        if (json_object_object_length(reply) != 1 ||
                            !json_object_object_get_ex(reply, "client_id", &v) ||
                            !json_object_is_type(v, json_type_string))
                                return log_error_errno(EPROTO, "%s: got %s, wants {\"client_id\": string}",
                                                       step->method, json_text(reply));
                        client_id = strdup(json_object_get_string(v));
                        if (!client_id)
                                return log_oom();
                } else {
                        wants = cert_json(step->reply);
                        r = expect(step->method, reply, wants);
                        if (r < 0)
                                return r;
                }
                printf("%s: %s\n", short_name(step->method), json_text(reply));
                json_object_put(last);
                last = TAKE_PTR(reply);
        }

        *ret_client_id = TAKE_PTR(client_id);
        return 0;
}

/* A call that must fail with the error name wants_error. */
static int expect_error(VarlinkClient *c, const char *method, json_object *parameters, const char *wants_error,
                        uint64_t timeout_usec) {
        _cleanup_json_ json_object *p = NULL;
        const char *error;
        int r;

        r = varlink_client_call(c, method, parameters, timeout_usec, &p, &error);
        if (r < 0)
                return log_error_errno(r, "%s: no reply: %m", method);
        if (!error || !streq(error, wants_error))
                return log_error_errno(EPROTO, "%s: got %s %s, wants error %s", method, error ?: "reply",
                                       json_text(p), wants_error);
        printf("%s: %s, as it should\n", short_name(method), error);
        return 0;
}

static bool strv_json_contains(json_object *a, const char *s) {
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *e = json_object_array_get_idx(a, i);
                if (json_object_is_type(e, json_type_string) && streq(json_object_get_string(e), s))
                        return true;
        }
        return false;
}

static int check_service_interface(VarlinkClient *c, const char *client_id, uint64_t timeout_usec) {
        _cleanup_json_ json_object *info = NULL, *description = NULL, *args = NULL;
        const char *error;
        json_object *v;
        int r;

        r = varlink_client_call(c, "org.varlink.service.GetInfo", NULL, timeout_usec, &info, &error);
        if (r < 0)
                return log_error_errno(r, "GetInfo: no reply: %m");
        if (error)
                return log_error_errno(EPROTO, "GetInfo: error reply %s", error);
        static const char *const fields[] = { "vendor", "product", "version", "url" };
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (!json_object_object_get_ex(info, fields[i], &v) ||
                    !json_object_is_type(v, json_type_string))
                        return log_error_errno(EPROTO, "GetInfo: '%s' is not a string: %s", fields[i],
                                               json_text(info));
        if (!json_object_object_get_ex(info, "interfaces", &v) || !json_object_is_type(v, json_type_array))
                return log_error_errno(EPROTO, "GetInfo: 'interfaces' is not an array: %s", json_text(info));
        for (size_t i = 0; i < json_object_array_length(v); i++)
                if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_string))
                        return log_error_errno(EPROTO, "GetInfo: 'interfaces' holds a non-string: %s",
                                               json_text(info));
        if (!strv_json_contains(v, "org.varlink.service") || !strv_json_contains(v, CERT_INTERFACE))
                return log_error_errno(EPROTO, "GetInfo: 'interfaces' lacks org.varlink.service or %s: %s",
                                       CERT_INTERFACE, json_text(info));
        printf("GetInfo: %s\n", json_text(info));

        if (json_build_object(&args, "interface", json_object_new_string(CERT_INTERFACE), NULL) < 0)
                return log_oom();
        r = varlink_client_call(c, "org.varlink.service.GetInterfaceDescription", args, timeout_usec,
                                &description, &error);
        if (r < 0)
                return log_error_errno(r, "GetInterfaceDescription: no reply: %m");
        if (error)
                return log_error_errno(EPROTO, "GetInterfaceDescription: error reply %s", error);
        if (!json_object_object_get_ex(description, "description", &v) ||
            !json_object_is_type(v, json_type_string))
                return log_error_errno(EPROTO, "GetInterfaceDescription: no description: %s",
                                       json_text(description));
        if (!streq(json_object_get_string(v), cert_interface_description))
                return log_error_errno(EPROTO,
                                       "GetInterfaceDescription: the description of %s differs from "
                                       "the reference's:\n%s",
                                       CERT_INTERFACE, json_object_get_string(v));
        printf("GetInterfaceDescription: %s, %zu bytes as the reference's\n", CERT_INTERFACE,
               strlen(cert_interface_description));

        /* The client ended: its id is no longer known. */
        json_object_put(TAKE_PTR(args));
        if (json_build_object(&args, "client_id", json_object_new_string(client_id), NULL) < 0)
                return log_oom();
        r = expect_error(c, cert_steps[CERT_TEST01].method, args, CERT_ERROR_CLIENT_ID, timeout_usec);
        if (r < 0)
                return r;
        return expect_error(c, CERT_INTERFACE ".NoSuchMethod", NULL, "org.varlink.service.MethodNotFound",
                            timeout_usec);
}

int cert_client_run(const char *address, uint64_t timeout_usec) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_free_ char *client_id = NULL;
        int r;

        r = varlink_client_connect(address, &c);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to %s: %m", address);

        r = run_sequence(c, timeout_usec, &client_id);
        if (r >= 0)
                r = check_service_interface(c, client_id, timeout_usec);
        fflush(stdout);
        return r;
}
